"""Per-user bridge networks and named volumes on the Docker engine.

Each user's workspaces share one bridge network: they reach each other by container name,
while Docker's bridge isolation keeps other users' workspaces out. Functions take an async
``docker(method, *args, **kwargs)`` callable (DockerSpawner's executor wrapper), so no
blocking call runs on the hub's event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from docker.errors import APIError, NotFound
from docker.types import IPAMConfig, IPAMPool

from mlhub.core import labels as L
from mlhub.core.keyed_locks import KeyedLocks

DockerCall = Callable[..., Awaitable[Any]]

#: One create-or-check at a time per network name, for the whole hub process.
_LOCKS = KeyedLocks()


class ForeignObjectError(RuntimeError):
    """An object with the name MLHub wants exists but was not made by this hub for this user."""


def default_bridge_gateway(bridge: dict[str, Any]) -> str:
    """This host's address on Docker's default bridge, from ``docker network inspect bridge``:
    its gateway, which Docker 20.10 may omit; then the subnet's first address, where Docker puts
    it."""
    ipam = bridge["IPAM"]["Config"][0]
    return ipam.get("Gateway") or str(next(ipaddress.ip_network(ipam["Subnet"]).hosts()))


def _check_owner(kind: str, name: str, found: dict[str, str] | None, wanted: dict[str, str]) -> None:
    found = found or {}
    for key, value in wanted.items():
        if found.get(key) != value:
            raise ForeignObjectError(
                f"A Docker {kind} named {name!r} already exists but does not belong to "
                f"{wanted.get(L.USER)!r} on hub {wanted.get(L.ORIGIN)!r} "
                f"({key}={found.get(key)!r}); remove or rename it, then start again"
            )


Subnet = ipaddress.IPv4Network
#: Subnets this process is creating a network on, or made one on in the last CLAIM_SECONDS
#: (a listing that began before the create may not show it), with when each was claimed.
_creating: dict[Subnet, float] = {}
CLAIM_SECONDS = 60.0


class NoFreeSubnet(RuntimeError):
    """Every subnet of the pool is taken."""


def free_subnets(taken: Iterable[Subnet], pool: Subnet, prefix: int, limit: int = 0) -> list[Subnet]:
    """The /prefix subnets of *pool* that overlap none of *taken*, lowest first (*limit*: at most)."""
    taken = [t for t in taken if t.overlaps(pool)]
    out = []
    for candidate in pool.subnets(new_prefix=prefix):
        if not any(candidate.overlaps(t) for t in taken):
            out.append(candidate)
            if limit and len(out) >= limit:
                break
    return out


def free_subnet(taken: Iterable[Subnet], pool: Subnet, prefix: int) -> Subnet | None:
    """The first /prefix subnet of *pool* that overlaps none of *taken*."""
    found = free_subnets(taken, pool, prefix, limit=1)
    return found[0] if found else None


#: Attempts at a subnet before giving up; each looks at the engine's networks afresh.
SUBNET_ATTEMPTS = 20
#: A new network takes one of the lowest this many free subnets at random, so hubs and
#: processes creating networks at the same moment rarely pick the same one.
SUBNET_SPREAD = 32


async def _taken_subnets(docker: DockerCall) -> list[Subnet]:
    subnets = []
    for network in await docker("networks"):
        for config in (network.get("IPAM") or {}).get("Config") or []:
            try:
                subnet = ipaddress.ip_network(config.get("Subnet", ""), strict=False)
            except ValueError:
                continue
            if isinstance(subnet, ipaddress.IPv4Network):
                subnets.append(subnet)
    return subnets


async def ensure_network(
    docker: DockerCall,
    name: str,
    labels: dict[str, str],
    pool: Subnet | None = None,
    prefix: int = 24,
) -> bool:
    """Create the user's bridge network unless it exists; return True if it was created.

    With a *pool*, the network gets the first free /prefix subnet of it (Docker's default
    pools hold only about 30 bridge networks; a /15 pool of /24s holds 512). A network of
    that name that lacks the owner's hub and user labels is refused, never reused.
    """
    async with _LOCKS.hold(name):
        try:
            found = await docker("inspect_network", name)
        except NotFound:
            found = None
        if found is not None:
            # which account and install: judged by the caller (mlhub.core.ownership)
            _check_owner("network", name, found.get("Labels"), {k: labels[k] for k in (L.ORIGIN, L.USER)})
            return False
        if pool is None:
            await docker("create_network", name, driver="bridge", labels=labels, check_duplicate=True)
            return True
        for attempt in range(SUBNET_ATTEMPTS):
            # no lock is held across engine calls: networks of different users are created at
            # the same time; the subnets this process is creating are kept out of every choice
            taken = await _taken_subnets(docker)
            now = time.monotonic()
            for old in [net for net, at in _creating.items() if now - at > CLAIM_SECONDS]:
                del _creating[old]
            candidates = free_subnets([*taken, *_creating], pool, prefix, SUBNET_SPREAD)
            if not candidates:
                raise NoFreeSubnet(
                    f"no free /{prefix} subnet left in the network pool {pool} "
                    "(MLHubDockerSpawner.network_pool); remove unused networks or widen the pool"
                )
            subnet = random.choice(candidates)
            _creating[subnet] = now
            try:
                await docker(
                    "create_network",
                    name,
                    driver="bridge",
                    labels=labels,
                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]),
                    check_duplicate=True,
                )
            except APIError as exc:
                _creating.pop(subnet, None)
                if "overlap" not in str(exc).lower():
                    raise
            except BaseException:
                _creating.pop(subnet, None)
                raise
            else:
                return True  # the subnet stays claimed for CLAIM_SECONDS
            # another hub or process took it between our look and our create: look again,
            # after a short random pause so the racers do not meet again
            await asyncio.sleep(random.uniform(0, 0.05 * (attempt + 1)))
        raise NoFreeSubnet(
            f"could not get a free subnet in {pool} after {SUBNET_ATTEMPTS} attempts: other hubs "
            "on this engine took each one first; try again"
        )


async def connect(docker: DockerCall, network: str, container: str, aliases: list[str] | None = None) -> None:
    """Connect *container* to *network*; already connected is fine."""
    try:
        await docker("connect_container_to_network", container, network, aliases=aliases)
    except APIError as exc:
        if "already exists" not in str(exc) and "already attached" not in str(exc):
            raise


async def remove_network_if_unused(docker: DockerCall, name: str, keep: set[str] = frozenset()) -> bool:
    """Remove *name* if only containers in *keep* (e.g. the hub) remain on it."""
    async with _LOCKS.hold(name):
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


async def ensure_volume(
    docker: DockerCall,
    name: str,
    labels: dict[str, str],
    driver: str = "local",
    driver_opts: dict[str, str] | None = None,
) -> bool:
    """Create the labelled workspace volume unless it exists; return True if created."""
    try:
        found = await docker("inspect_volume", name)
    except NotFound:
        found = None
    if found is not None:
        _check_owner(
            "volume", name, found.get("Labels"), {k: labels[k] for k in (L.ORIGIN, L.USER, L.SERVER_NAME)}
        )
        return False
    await docker("create_volume", name=name, driver=driver, driver_opts=driver_opts or None, labels=labels)
    return True


async def remove_volume(docker: DockerCall, name: str) -> bool:
    """Remove a volume; a missing one is fine."""
    try:
        await docker("remove_volume", name)
    except NotFound:
        return False
    return True
