"""``MLHubDockerSpawner``: DockerSpawner plus per-user networks, labels, limits, GPUs, expiry.

Entry point ``mlhub-docker``: ``c.JupyterHub.spawner_class = "mlhub-docker"``.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from docker.errors import NotFound
from dockerspawner import DockerSpawner
from traitlets import Bool, Int, TraitError, Unicode, default, validate

from mlhub.core.names import user_network_name, workspace_name
from mlhub.core.ownership import Verdict, judge, parse_time
from mlhub.engines import docker_network as net
from mlhub.spawners.base import MLHubSpawner
from mlhub.spawners.docker_cpu_burst import DockerCpuBurst
from mlhub.spawners.docker_create import DockerContainerRequest
from mlhub.spawners.docker_start import DockerLifecycle, engine_unreachable
from mlhub.spawners.docker_volumes import DockerVolumes

DEFAULT_IMAGE = "mlhub/workspace:latest"


__all__ = ["DEFAULT_IMAGE", "MLHubDockerSpawner", "engine_unreachable"]


class MLHubDockerSpawner(
    DockerCpuBurst, DockerLifecycle, DockerContainerRequest, DockerVolumes, MLHubSpawner, DockerSpawner
):
    """Spawns each workspace as a container on the user's own bridge network."""

    # Engine facts are the same for every spawner of the hub; ask the engine once.
    _host_info: dict[str, Any] | None = None

    @default("image")
    def _default_image(self) -> str:
        return DEFAULT_IMAGE

    @default("prefix")
    def _default_prefix(self) -> str:
        return self.hub_name

    @default("remove")
    def _default_remove(self) -> bool:
        # A stopped workspace's container is removed; its data lives in the volume.
        return True

    @default("network_name")
    def _default_network_name(self) -> str:
        return user_network_name(self.hub_name, self.user.name)

    @default("use_internal_ip")
    def _default_use_internal_ip(self) -> bool:
        return True

    @default("object_name")
    def _default_object_name(self) -> str:
        return workspace_name(self.hub_name, self.user.name, self.name)

    def _object_name_default(self) -> str:
        # DockerSpawner re-renders the name when the image changes; keep ours.
        return workspace_name(self.hub_name, self.user.name, self.name)

    hub_container = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Name or id of the container the hub runs in, when it runs in a container
        on the same engine. It is connected to each user's network so the hub and proxy reach
        the workspaces. None (default): the hub runs on the host and reaches workspaces
        directly. The default config detects it.""",
    )

    gpu_runtime_check = Bool(
        True,
        config=True,
        help="""Refuse GPU requests with a clear error when ``docker info`` lists no
        ``nvidia`` runtime, instead of creating a container that cannot start.""",
    )

    network_pool = Unicode(
        "172.30.0.0/15",
        config=True,
        help="""IPv4 range from which each user's bridge network gets its own subnet of
        ``network_prefix_length`` (the default /15 of /24s serves 512 users per engine).
        Docker's default address pools hold only about 30 bridge networks, too few for a
        class; choose a range unused on your LAN. Empty: let Docker choose (about 30 users).""",
    )

    engine_threads = Int(
        8,
        min=1,
        config=True,
        help="""Threads that make the blocking Docker engine calls of all spawners of the hub
        (DockerSpawner uses one, so concurrent starts queue behind each other's calls; a start
        makes about a dozen). 8 lets several starts overlap while keeping the engine, which does
        the real work, from being flooded; docker-py's connection pool is made at least as
        large (``client_kwargs['max_pool_size']``).""",
    )

    @property
    def executor(self) -> ThreadPoolExecutor:
        """One pool of ``engine_threads`` threads for the hub's engine calls (DockerSpawner: 1)."""
        cls = type(self)
        if cls._executor is None:
            cls._executor = ThreadPoolExecutor(self.engine_threads, thread_name_prefix="mlhub-engine")
        return cls._executor

    @property
    def client(self) -> Any:
        """DockerSpawner's client, with a connection pool no smaller than the thread pool."""
        cls = type(self)
        admin = self.client_kwargs
        wanted = max(self.engine_threads, int(admin.get("max_pool_size") or 0))
        if cls._client is not None or admin.get("max_pool_size") == wanted:
            return DockerSpawner.client.fget(self)  # type: ignore[attr-defined]
        # DockerSpawner builds the one client from the trait: lend it the pool size for that,
        # then give the admin's setting back (a start never writes the admin's settings)
        self.client_kwargs = {**admin, "max_pool_size": wanted}
        try:
            return DockerSpawner.client.fget(self)  # type: ignore[attr-defined]
        finally:
            self.client_kwargs = admin

    network_prefix_length = Int(
        24,
        min=16,
        max=29,
        config=True,
        help="Size of each user's subnet: /24 leaves room for 254 workspaces per user.",
    )

    @validate("network_pool")
    def _validate_network_pool(self, proposal: Any) -> str:
        value = proposal["value"]
        if value:
            try:
                ipaddress.IPv4Network(value)
            except ValueError as exc:
                raise TraitError(
                    f"network_pool {value!r} is not an IPv4 network such as 172.30.0.0/15: {exc}"
                ) from None
        return value

    async def _engine_info(self) -> dict[str, Any]:
        cls = type(self)
        if cls._host_info is None:
            cls._host_info = await self.docker("info")
        return cls._host_info

    async def host_limits(self) -> tuple[float | None, int | None, int | None]:
        info = await self._engine_info()
        gpus = self.max_gpus
        if gpus is None and self.gpu_runtime_check and "nvidia" not in (info.get("Runtimes") or {}):
            gpus = 0
        memory = int(info.get("MemTotal") or 0) // 1024**2 * 1024**2  # whole MiB: readable limits
        return float(info.get("NCPU") or 0) or None, memory or None, gpus

    def _judge(self, labels: dict[str, str] | None, created: Any, server: bool = True) -> tuple[Verdict, str]:
        return judge(
            labels,
            self.hub_name,
            self.user.name,
            self.install_id,
            self.account_created,
            parse_time(created),
            self.name if server else None,
        )

    async def _check_network(self) -> None:
        """An earlier account's network of this user name is replaced when nothing uses it."""
        try:
            found = await self.docker("inspect_network", self.network_name)
        except NotFound:
            return
        verdict, why = self._judge(found.get("Labels"), found.get("Created"), server=False)
        if verdict is Verdict.EARLIER_ACCOUNT:
            keep = {self.hub_container} if self.hub_container else set()
            if await net.remove_network_if_unused(self.docker, self.network_name, keep):
                self.log.info("Removed network %s: it was %s", self.network_name, why)
                return
            raise net.ForeignObjectError(
                f"The network {self.network_name!r} was {why} and its containers still run; "
                "the cleanup service's users run removes them (admins: run it now), then start again"
            )
        if verdict is Verdict.FOREIGN:
            raise net.ForeignObjectError(
                f"A Docker network named {self.network_name!r} already exists but is not {self.user.name}'s "
                f"({why}); remove or rename it, then start again"
            )
