"""The Docker side of cleanup: list this hub's labelled objects, remove one.

docker-py is blocking, so every call runs in a thread (never on the event loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import docker
from docker.errors import APIError, NotFound

from mlhub.core.labels import ORIGIN
from mlhub.engines.workspace_disk import disk_of_volume
from mlhub.services.cleanup.model import Resource

#: container states in which it runs, or is about to
ACTIVE_STATES = {"created", "running", "restarting"}


class DockerBackend:
    """Lists and removes containers, volumes and networks carrying ``mlhub.origin``."""

    def __init__(self, client: docker.DockerClient | None = None):
        self.client = client or docker.from_env(timeout=60)

    async def _run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: func(*args, **kwargs))

    async def list_resources(self, hub_name: str) -> list[Resource]:
        api = self.client.api
        flt = {"label": [f"{ORIGIN}={hub_name}"]}
        containers = await self._run(api.containers, all=True, filters=flt)
        volumes = (await self._run(api.volumes, filters=flt)).get("Volumes") or []
        networks = await self._run(api.networks, filters=flt)
        resources = [
            Resource(
                "container",
                c["Names"][0].lstrip("/"),
                c["Id"],
                c.get("Labels") or {},
                created=float(c.get("Created") or 0),
                active=c.get("State") in ACTIVE_STATES,
            )
            for c in containers
        ]
        resources += [Resource("volume", v["Name"], v["Name"], v.get("Labels") or {}) for v in volumes]
        resources += [Resource("network", n["Name"], n["Id"], n.get("Labels") or {}) for n in networks]
        return resources

    async def remove(self, resource: Resource) -> None:
        """Remove one resource; one that is already gone counts as removed."""
        api = self.client.api
        try:
            if resource.kind == "container":
                await self._run(api.remove_container, resource.id, force=True, v=True)
            elif resource.kind == "volume":
                found = await self._run(api.inspect_volume, resource.name)
                await self._run(api.remove_volume, resource.name)
                disk = disk_of_volume(found)
                if disk is not None:  # a capped /workspace: its disk image goes with it
                    await self._run(disk.remove)
            elif resource.kind == "network":
                found = await self._run(api.inspect_network, resource.id)
                for cid in found.get("Containers") or {}:
                    # e.g. the hub's own container, attached to reach the workspaces
                    await self._run(api.disconnect_container_from_network, cid, resource.id, force=True)
                await self._run(api.remove_network, resource.id)
            else:
                raise ValueError(f"unknown resource kind {resource.kind}")
        except NotFound:
            return
        except APIError as exc:
            raise RuntimeError(f"{resource.kind} {resource.name}: {exc.explanation or exc}") from None
