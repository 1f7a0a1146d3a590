"""What the gateway asks the hub: does a user exist, is a workspace running, whose token is this."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from mlhub.core.workspace import engine_object_ref
from mlhub.services.hub_client import HubAPIError, HubClient
from mlhub.services.ssh.targets import Target


@dataclass(frozen=True)
class Workspace:
    target: Target
    ready: bool
    pending: str | None
    #: The spawner's handle on the running object: container id or pod name (from its state).
    object_ref: str
    url: str


class NoSuchUser(LookupError):
    pass


class GatewayHub(HubClient):
    """Hub API calls made with the gateway's service token (scopes set in jupyterhub_config.py)."""

    async def user_model(self, name: str) -> dict:
        try:
            _, model = await self.request("GET", f"/users/{quote(name, safe='')}?include_stopped_servers=1")
        except HubAPIError as exc:
            if exc.code == 404:
                raise NoSuchUser(name) from None
            raise
        return model

    async def workspace(self, target: Target) -> Workspace | None:
        """The target's server as the hub knows it, or None when it has no such server."""
        model = await self.user_model(target.user)
        server = (model.get("servers") or {}).get(target.server)
        if server is None:
            return None
        return Workspace(
            target=target,
            ready=bool(server.get("ready")),
            pending=server.get("pending"),
            object_ref=engine_object_ref(server.get("state")),
            url=server.get("url") or "",
        )

    async def token_owner(self, token: str) -> dict | None:
        """The hub's model of whoever owns *token* (with its ``scopes``), or None if invalid."""
        try:
            _, model = await self.request("GET", "/user", token=token)
        except HubAPIError as exc:
            if exc.code in (401, 403):
                return None
            raise
        return model


def token_grants_access(model: dict, target: Target) -> bool:
    """Whether a token (the hub's ``/user`` model of it) may use *target*'s server.

    Only the owner's own tokens count, and only when they carry ``access:servers`` for that
    server (a token limited to, say, ``read:users`` never opens a shell).
    """
    if model.get("kind") != "user" or model.get("name") != target.user:
        return False
    wanted = {
        "access:servers",
        f"access:servers!user={target.user}",
        f"access:servers!server={target.user}/{target.server}",
    }
    return bool(wanted & set(model.get("scopes") or ()))
