"""One public port for HTTP(S) and SSH: the first bytes of a connection decide where it goes.

Run by the hub as the managed service ``port-mux`` when MLHUB_SSH_SHARED_PORT is on
(docs/decisions/ssh-on-one-port.md). It listens on the hub's public port; the proxy then
listens on 127.0.0.1:MLHUB_PROXY_INTERNAL_PORT and the SSH gateway on its own port.

- An SSH client speaks first with ``SSH-2.0-...``: the connection goes to the gateway.
- Anything else (a TLS ClientHello starts with 0x16, plain HTTP with a method) goes to the proxy.
- A client that says nothing for ``peek_timeout`` seconds can only be an SSH client waiting for
  the server's banner (TLS and HTTP clients always speak first): it goes to the gateway.

At most 4 bytes are looked at; they are forwarded unchanged, nothing is decrypted.

The proxy and the gateway would see every client as the mux (127.0.0.1), which would merge all
clients into one for the hub's per-address login limit. So each client address is mapped to
its own loopback address (``127.x.y.z``, a keyed hash of it) and the mux connects from there:
per-address limits keep working, and the mux logs which client had which loopback address.

Environment (set by jupyterhub_config.py): MLHUB_MUX_IP, MLHUB_MUX_PORT (where to listen),
MLHUB_MUX_HTTPS_UPSTREAM and MLHUB_MUX_SSH_UPSTREAM (``host:port``), MLHUB_MUX_MAX_CONNECTIONS.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import secrets
import sys
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from mlhub.core.lifetime import watch_hub

log = logging.getLogger("mlhub.port_mux")

SSH_PREFIX = b"SSH-"
#: Bytes looked at before deciding (the length of SSH_PREFIX).
PEEK_MAX = len(SSH_PREFIX)
CHUNK = 65536


@dataclass(frozen=True)
class Limits:
    #: connections open at once; more are closed at once (and logged)
    max_connections: int = 1024
    #: connections open at once from one client address
    max_per_client: int = 256
    #: seconds a new connection may stay silent before it is taken for an SSH client
    peek_timeout: float = 5.0
    #: seconds without a byte in either direction before a connection is closed
    idle_timeout: float = 3600.0
    #: seconds to reach the proxy or the gateway
    connect_timeout: float = 10.0


def classify(first: bytes) -> str | None:
    """``"ssh"``, ``"proxy"``, or None while *first* could still become ``SSH-``."""
    if not first:
        return None
    if first[:PEEK_MAX] == SSH_PREFIX:
        return "ssh"
    if SSH_PREFIX.startswith(first):
        return None
    return "proxy"


def loopback_alias(client_ip: str, key: bytes) -> str:
    """The loopback address the mux connects from for *client_ip*: ``127.a.b.c`` with a in
    1-254, c in 1-254 (a keyed hash: the same client always gets the same one, different
    clients almost never share one, and nobody outside can choose a collision)."""
    digest = hashlib.blake2b(client_ip.encode(), digest_size=3, key=key).digest()
    return f"127.{1 + digest[0] % 254}.{digest[1]}.{1 + digest[2] % 254}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_address(text: str, name: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{name}: must be host:port (got {text!r})")
    return host.strip("[]"), int(port)


class _Idle(Exception):
    pass


class PortMux:
    """Accepts connections and splices each to the proxy or the SSH gateway."""

    def __init__(
        self,
        proxy: tuple[str, int],
        ssh: tuple[str, int],
        limits: Limits = Limits(),
        alias_key: bytes | None = None,
    ) -> None:
        self.upstreams = {"proxy": proxy, "ssh": ssh}
        self.limits = limits
        self.alias_key = alias_key or secrets.token_bytes(16)
        self.active = 0
        self.per_client: Counter[str] = Counter()
        self._aliases_work = True
        #: clients whose loopback address was logged (bounded: the oldest are forgotten)
        self._announced: OrderedDict[str, None] = OrderedDict()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        client = str(peer[0])
        if self.active >= self.limits.max_connections:
            log.warning("Refused a connection from %s: %d connections open", client, self.active)
            writer.close()
            return
        if self.per_client[client] >= self.limits.max_per_client:
            log.warning("Refused a connection from %s: it has %d open", client, self.per_client[client])
            writer.close()
            return
        self.active += 1
        self.per_client[client] += 1
        try:
            await self._serve(client, reader, writer)
        except ConnectionError as exc:  # a client or upstream that hung up: nothing to report
            log.debug("Connection from %s ended: %r", client, exc)
        except Exception as exc:  # one connection's trouble never stops the mux
            log.warning("Connection from %s ended with an error: %r", client, exc)
        finally:
            self.active -= 1
            self.per_client[client] -= 1
            if self.per_client[client] <= 0:
                del self.per_client[client]
            writer.close()

    async def _peek(self, reader: asyncio.StreamReader) -> tuple[str | None, bytes]:
        """(where to, the bytes read); (None, b"") when the client left without a byte."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.peek_timeout
        first = b""
        while (kind := classify(first)) is None:
            try:
                chunk = await asyncio.wait_for(
                    reader.read(PEEK_MAX - len(first)), max(0.0, deadline - loop.time())
                )
            except asyncio.TimeoutError:
                return "ssh", first  # silent: an SSH client waiting for the server's banner
            if not chunk:
                return (None, b"") if not first else ("proxy", first)
            first += chunk
        return kind, first

    async def _connect(
        self, kind: str, client: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
        host, port = self.upstreams[kind]
        alias = ""
        if self._aliases_work and is_loopback(host) and host != "::1":
            alias = loopback_alias(client, self.alias_key)
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, local_addr=(alias, 0)),
                    self.limits.connect_timeout,
                )
                self._announce(client, alias)
                return reader, writer, alias
            except OSError as exc:
                if getattr(exc, "errno", None) not in (99, 49):  # EADDRNOTAVAIL (Linux, BSD)
                    raise
                self._aliases_work = False
                log.warning(
                    "Cannot connect from loopback aliases (%s): the proxy and the gateway see every "
                    "client as 127.0.0.1 (per-address login limits then count all clients together)",
                    exc,
                )
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), self.limits.connect_timeout
        )
        return reader, writer, ""

    def _announce(self, client: str, alias: str) -> None:
        """Log once per client which loopback address the hub and the gateway see it as."""
        if client in self._announced:
            self._announced.move_to_end(client)
            return
        self._announced[client] = None
        if len(self._announced) > 10000:
            self._announced.popitem(last=False)
        log.info("Client %s is seen by the proxy, the hub and the gateway as %s", client, alias)

    async def _serve(self, client: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind, first = await self._peek(reader)
        if kind is None:
            return
        try:
            up_reader, up_writer, alias = await self._connect(kind, client)
        except (OSError, asyncio.TimeoutError) as exc:
            log.warning("Cannot reach the %s at %s:%d for %s: %r", kind, *self.upstreams[kind], client, exc)
            return
        (log.info if kind == "ssh" else log.debug)(
            "%s connection from %s (as %s)", kind.upper(), client, alias or "the mux"
        )
        try:
            if first:
                up_writer.write(first)
            await self._splice(reader, writer, up_reader, up_writer)
        except _Idle:
            log.info("Closed an idle %s connection of %s", kind, client)
        finally:
            up_writer.close()

    async def _splice(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        loop = asyncio.get_running_loop()
        last = [loop.time()]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while True:
                try:
                    data = await asyncio.wait_for(src.read(CHUNK), self.limits.idle_timeout)
                except asyncio.TimeoutError:
                    if loop.time() - last[0] < self.limits.idle_timeout:
                        continue  # the other direction is busy
                    raise _Idle() from None
                if not data:
                    if dst.can_write_eof():
                        dst.write_eof()
                    return
                last[0] = loop.time()
                dst.write(data)
                await dst.drain()

        tasks = [
            asyncio.ensure_future(pump(reader, up_writer)),
            asyncio.ensure_future(pump(up_reader, writer)),
        ]
        try:
            for done in asyncio.as_completed(tasks):
                await done  # both directions ended (EOF), or one failed: stop both
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True)
class MuxConfig:
    ip: str
    port: int
    proxy: tuple[str, int]
    ssh: tuple[str, int]
    max_connections: int


def read_config(environ: Mapping[str, str]) -> MuxConfig:
    errors = []
    port = 0
    try:
        port = int(environ.get("MLHUB_MUX_PORT", ""))
        if not 1 <= port <= 65535:
            raise ValueError
    except ValueError:
        errors.append(f"MLHUB_MUX_PORT: must be a port number (got {environ.get('MLHUB_MUX_PORT')!r})")
    addresses = {}
    for name in ("MLHUB_MUX_HTTPS_UPSTREAM", "MLHUB_MUX_SSH_UPSTREAM"):
        try:
            addresses[name] = parse_address(environ.get(name, ""), name)
        except ValueError as exc:
            errors.append(str(exc))
    try:
        max_connections = int(environ.get("MLHUB_MUX_MAX_CONNECTIONS") or "1024")
        if max_connections < 1:
            raise ValueError
    except ValueError:
        errors.append("MLHUB_MUX_MAX_CONNECTIONS: must be a whole number >= 1")
        max_connections = 0
    if errors:
        raise ValueError("\n".join(errors))
    return MuxConfig(
        ip=environ.get("MLHUB_MUX_IP", ""),
        port=port,
        proxy=addresses["MLHUB_MUX_HTTPS_UPSTREAM"],
        ssh=addresses["MLHUB_MUX_SSH_UPSTREAM"],
        max_connections=max_connections,
    )


async def serve(config: MuxConfig) -> None:
    mux = PortMux(config.proxy, config.ssh, Limits(max_connections=config.max_connections))
    server = await asyncio.start_server(mux.handle, config.ip or None, config.port, reuse_address=True)
    log.info(
        "Port %d: SSH clients to the gateway at %s:%d, everything else to the proxy at %s:%d",
        config.port,
        *config.ssh,
        *config.proxy,
    )
    async with server:
        # ends with the hub (also one killed with kill -9), so a hub started again gets the port
        await asyncio.gather(server.serve_forever(), watch_hub("port-mux"))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s port-mux] %(message)s")
    try:
        config = read_config(os.environ)
    except ValueError as exc:
        sys.exit(f"port mux cannot start:\n{exc}")
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
