"""Per-user bridge networks and named volumes on the Docker engine.

Each user's workspaces share one bridge network: they reach each other by container name,
while Docker's bridge isolation keeps other users' workspaces out. Functions take an async
``docker(method, *args, **kwargs)`` callable (DockerSpawner's executor wrapper), so no
blocking call runs on the hub's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from docker.errors import APIError, NotFound

from . import labels as L

DockerCall = Callable[..., Awaitable[Any]]

_locks: dict[str, asyncio.Lock] = {}


class ForeignObjectError(RuntimeError):
    """An object with the name MLHub wants exists but was not made by this hub for this user."""


def _lock(name: str) -> asyncio.Lock:
    return _locks.setdefault(name, asyncio.Lock())


def _check_owner(kind: str, name: str, found: dict[str, str] | None, wanted: dict[str, str]) -> None:
    found = found or {}
    for key, value in wanted.items():
        if found.get(key) != value:
            raise ForeignObjectError(
                f"A Docker {kind} named {name!r} already exists but does not belong to "
                f"{wanted.get(L.USER)!r} on hub {wanted.get(L.ORIGIN)!r} "
                f"({key}={found.get(key)!r}); remove or rename it, then start again"
            )


async def ensure_network(docker: DockerCall, name: str, labels: dict[str, str]) -> bool:
    """Create the user's bridge network unless it exists; return True if it was created.

    A network of that name that lacks the owner's labels is refused, never reused.
    """
    async with _lock(name):
        try:
            found = await docker("inspect_network", name)
        except NotFound:
            found = None
        if found is not None:
            _check_owner("network", name, found.get("Labels"), labels)
            return False
        await docker(
            "create_network", name, driver="bridge", labels=labels, check_duplicate=True
        )
        return True


async def connect(docker: DockerCall, network: str, container: str, aliases: list[str] | None = None) -> None:
    """Connect *container* to *network*; already connected is fine."""
    try:
        await docker("connect_container_to_network", container, network, aliases=aliases)
    except APIError as exc:
        if "already exists" not in str(exc) and "already attached" not in str(exc):
            raise


async def remove_network_if_unused(docker: DockerCall, name: str, keep: set[str] = frozenset()) -> bool:
    """Remove *name* if only containers in *keep* (e.g. the hub) remain on it."""
    async with _lock(name):
        try:
            found = await docker("inspect_network", name)
        except NotFound:
            return False
        attached = found.get("Containers") or {}
        others = [cid for cid, info in attached.items() if cid not in keep and info.get("Name") not in keep]
        if others:
            return False
        for cid in attached:
            try:
                await docker("disconnect_container_from_network", cid, name, force=True)
            except APIError:
                pass
        try:
            await docker("remove_network", name)
        except NotFound:
            return False
        return True


async def ensure_volume(docker: DockerCall, name: str, labels: dict[str, str]) -> bool:
    """Create the labelled workspace volume unless it exists; return True if created."""
    try:
        found = await docker("inspect_volume", name)
    except NotFound:
        found = None
    if found is not None:
        _check_owner("volume", name, found.get("Labels"), {k: labels[k] for k in (L.ORIGIN, L.USER, L.SERVER_NAME)})
        return False
    await docker("create_volume", name=name, driver="local", labels=labels)
    return True


async def remove_volume(docker: DockerCall, name: str) -> bool:
    """Remove a volume; a missing one is fine."""
    try:
        await docker("remove_volume", name)
    except NotFound:
        return False
    return True
