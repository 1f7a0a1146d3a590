"""The few hub REST API calls the cleanup service makes, with its own service token."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from mlhub.core.ownership import parse_time
from mlhub.core.workspace import meta_of_state
from mlhub.services.cleanup.model import HubServer
from mlhub.services.hub_client import HubAPIError, HubClient

__all__ = ["HubAPI", "HubAPIError"]


class HubAPI(HubClient):
    """The cleanup service's calls: list users with their servers' state, delete servers."""

    async def users(self) -> list[dict[str, Any]]:
        """Every user with all servers (also stopped ones) and their state."""
        users: list[dict[str, Any]] = []
        offset = 0
        while True:
            _, page = await self.request("GET", f"/users?include_stopped_servers=1&offset={offset}&limit=200")
            items = page["items"] if isinstance(page, dict) and "items" in page else page
            users += items
            if len(items) < 200:
                return users
            offset += 200

    @staticmethod
    def accounts_of(users: list[dict[str, Any]]) -> dict[str, int | None]:
        """User name -> when the account was created (epoch seconds; None if not given)."""
        accounts: dict[str, int | None] = {}
        for user in users:
            created = parse_time(user.get("created"))
            accounts[user["name"]] = None if created is None else int(created)
        return accounts

    @staticmethod
    def servers_of(users: list[dict[str, Any]]) -> list[HubServer]:
        servers = []
        for user in users:
            for name, model in (user.get("servers") or {}).items():
                meta = meta_of_state(model.get("state"))
                servers.append(
                    HubServer(
                        user=user["name"],
                        name=name,
                        expiration_timestamp=meta.expiration_timestamp if meta else 0,
                        running=bool(model.get("ready") or model.get("pending")),
                    )
                )
        return servers

    async def delete_server(self, user: str, server: str, wait: float = 60) -> None:
        """Stop a server; delete it too when it is a named one. Waits until it is gone."""
        path = (
            f"/users/{quote(user, safe='')}/servers/{quote(server, safe='')}"
            if server
            else f"/users/{quote(user, safe='')}/server"
        )
        try:
            await self.request("DELETE", path, {"remove": True} if server else None)
        except HubAPIError as exc:
            if " 404 " not in str(exc) and "is not running" not in str(exc):
                raise
        deadline = asyncio.get_running_loop().time() + wait
        while asyncio.get_running_loop().time() < deadline:
            _, model = await self.request("GET", f"/users/{quote(user, safe='')}?include_stopped_servers=1")
            found = (model.get("servers") or {}).get(server)
            if found is None or (not server and not (found.get("ready") or found.get("pending"))):
                return
            await asyncio.sleep(0.5)
        raise HubAPIError(f"server {user}/{server} still there after {wait}s")
