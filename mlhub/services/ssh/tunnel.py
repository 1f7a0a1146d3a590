"""SSH over a WebSocket, for networks where only HTTP(S) reaches the hub (an Ingress).

``GET /services/ssh/tunnel`` upgraded to a WebSocket, with a hub API token of a user in the
``Authorization`` header (``token <t>`` or ``Bearer <t>``; never in the URL, never a cookie:
a web page cannot set that header, so no other site can open a tunnel with a visitor's
session). Binary messages are spliced to the gateway's own SSH port, where the usual SSH login
(the user's key, or a token as password) decides which workspace, if any, the bytes reach: the
tunnel only lets hub users talk to the gateway, it authorizes nothing itself.

The client is ``mlhub-ssh-tunnel`` (mlhub/services/ssh/tunnel_client.py), used as ssh's
ProxyCommand.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from tornado import web, websocket

from mlhub.services.base import JSONErrors

log = logging.getLogger("mlhub.services.ssh")

#: Tunnels one user may have open at once, and all users together.
MAX_PER_USER = 20
MAX_TOTAL = 500
#: Largest message accepted from a client (the client sends at most 64 KiB at a time).
MAX_MESSAGE = 1024 * 1024
CHUNK = 65536


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: token <t>`` or ``Bearer <t>`` header, else ''."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() in ("token", "bearer") else ""


def may_use_service(model: dict[str, Any], service: str) -> bool:
    """Whether a token (the hub's ``/user`` model of it) is a user's with access to *service*."""
    scopes = set(model.get("scopes") or ())
    return model.get("kind") == "user" and bool(
        {"access:services", f"access:services!service={service}"} & scopes
    )


class TunnelHandler(websocket.WebSocketHandler, JSONErrors):
    open_tunnels: Counter[str] = Counter()

    def initialize(self, ctx: Any) -> None:
        self.ctx = ctx
        self.user = ""
        self.writer: asyncio.StreamWriter | None = None
        self.pump: asyncio.Task[None] | None = None
        self.counted = False

    @property
    def max_message_size(self) -> int:
        return MAX_MESSAGE

    @property
    def ping_interval(self) -> float:
        return 30.0  # keeps Ingress and load balancer idle timeouts from cutting quiet sessions

    def client(self) -> str:
        forwarded = self.request.headers.get("X-Forwarded-For", "")
        return forwarded.split(",")[-1].strip() or self.request.remote_ip or "?"

    async def prepare(self) -> None:
        token = bearer_token(self.request.headers.get("Authorization", ""))
        if not token:
            log.info("SSH tunnel from %s refused: no token", self.client())
            raise web.HTTPError(
                401, "send a hub API token of yours in the Authorization header: 'token <your token>'"
            )
        model = await self.ctx.hub.token_owner(token)
        if model is None:
            log.info("SSH tunnel from %s refused: not a valid hub API token", self.client())
            raise web.HTTPError(401, "that is not a valid hub API token")
        if not may_use_service(model, self.ctx.service_name):
            log.info(
                "SSH tunnel for %r from %s refused: token without access", model.get("name"), self.client()
            )
            raise web.HTTPError(
                403, f"the token must be a user's with access to the {self.ctx.service_name} service"
            )
        self.user = model["name"]
        if self.open_tunnels[self.user] >= MAX_PER_USER or sum(self.open_tunnels.values()) >= MAX_TOTAL:
            log.warning("SSH tunnel for %s from %s refused: too many open", self.user, self.client())
            raise web.HTTPError(429, f"too many SSH tunnels open (at most {MAX_PER_USER} per user)")

    async def open(self, *args: Any) -> None:
        self.open_tunnels[self.user] += 1
        self.counted = True
        host, port = self.ctx.tunnel_upstream
        try:
            reader, self.writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, asyncio.TimeoutError) as exc:
            log.warning(
                "SSH tunnel for %s: cannot reach the gateway at %s:%d: %r", self.user, host, port, exc
            )
            self.close(1011, "the SSH gateway is not reachable")
            return
        log.info("SSH tunnel for %s from %s opened", self.user, self.client())
        self.pump = asyncio.ensure_future(self._to_client(reader))

    async def _to_client(self, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self.write_message(data, binary=True)
        except (websocket.WebSocketClosedError, OSError):
            pass
        finally:
            self.close()

    async def on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.close(1003, "send binary messages only")
            return
        if self.writer is None:
            return
        try:
            self.writer.write(message)
            await self.writer.drain()
        except OSError:
            self.close()

    def on_close(self) -> None:
        if self.counted:
            self.counted = False
            self.open_tunnels[self.user] -= 1
            if self.open_tunnels[self.user] <= 0:
                del self.open_tunnels[self.user]
            log.info("SSH tunnel for %s closed", self.user)
        if self.writer is not None:
            self.writer.close()
        if self.pump is not None:
            self.pump.cancel()
