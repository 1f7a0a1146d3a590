"""The boot CPU burst: a workspace boots without its CPU limit, at a low CPU weight, and gets
its limit when its boot slot ends (its server answers, or ``startup_check_seconds`` pass).

A workspace's default limit (half a core) makes the single-user server's own start take about
twice as long as at full CPU, although the host's cores are mostly idle. Booting is bounded
already: one boot per user, ``concurrent_boots`` per hub, ``startup_check_seconds`` each; the
low weight (``boot_cpu_shares``) makes a booting workspace yield to running ones when the cores
are busy. See docs/decisions/boot-cpu-burst.md.

A mixin of :class:`mlhub.spawners.docker.MLHubDockerSpawner`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from docker.errors import NotFound
from traitlets import Bool, Int
from traitlets.config import LoggingConfigurable

from mlhub.core import labels as L
from mlhub.spawners.docker_objects import NANO

#: The engine's CPU weight of a container that sets none (cgroup v1 ``cpu.shares``).
RUNNING_CPU_SHARES = 1024

#: ``extra_host_config`` keys by which an admin sets CPU scheduling; the burst then stays off.
ADMIN_CPU_KEYS = ("nano_cpus", "cpu_quota", "cpu_period", "cpu_shares", "cpuset_cpus", "cpu_rt_runtime")


def set_cpu(client: Any, container: str, nano_cpus: int, cpu_shares: int) -> None:
    """Set a running container's CPU limit and weight (``docker update --cpus --cpu-shares``).
    docker-py's ``update_container`` has no ``NanoCpus``, and a quota set instead would
    conflict with the ``NanoCpus`` a workspace is created with, so the engine's update endpoint
    is called as docker-py calls it."""
    response = client._post_json(
        client._url("/containers/{0}/update", container),
        data={"NanoCpus": nano_cpus, "CpuShares": cpu_shares},
    )
    client._result(response, True)


class DockerCpuBurst(LoggingConfigurable):
    """Creates a booting workspace without its CPU limit; sets it when the boot slot ends."""

    boot_cpu_burst = Bool(
        True,
        config=True,
        help="""Let a workspace boot without its CPU limit, at CPU weight ``boot_cpu_shares``,
        and set its limit when its server first answers (or ``startup_check_seconds`` pass).
        At the default half core the single-user server starts about twice as slowly as at
        full CPU. Booting is bounded by ``concurrent_boots``, one boot per user and
        ``startup_check_seconds``. Off by itself when ``extra_host_config`` sets CPU
        scheduling, or ``startup_check_seconds`` is 0. False: the limit holds from the start.""",
    )

    boot_cpu_shares = Int(
        256,
        min=2,
        max=RUNNING_CPU_SHARES,
        config=True,
        help="""CPU weight (``--cpu-shares``, 2-1024) of a workspace while it boots without its
        limit; running workspaces have 1024. With 256, a booting workspace gets a fifth of a
        core that a running one also wants, and any CPU nobody else uses.""",
    )

    #: the NanoCpus to set when this start's boot ends; None when no burst is under way
    _burst_nano_cpus: int | None = None
    #: the container as the last ``get_object`` saw it (the poll reads its CPU settings)
    _inspected: dict[str, Any] | None = None

    def cpu_burst_host_config(
        self, host_config: dict[str, Any], admin_host: dict[str, Any]
    ) -> dict[str, Any]:
        """*host_config* for creating the container: without ``nano_cpus`` and at the boot
        weight when the burst applies (remembering the limit for :meth:`end_cpu_burst`). Only
        a start holding a boot slot bursts: ``create_object`` called on its own (as in
        DockerSpawner's tests) has no end of a boot to set the limit at."""
        self._burst_nano_cpus = None
        nano_cpus = host_config.get("nano_cpus")
        booting = getattr(self, "_boot_slot", None) is not None
        if not (self.boot_cpu_burst and booting and nano_cpus and self.startup_check_seconds > 0):
            return host_config
        if any(key in admin_host for key in ADMIN_CPU_KEYS):
            return host_config
        self._burst_nano_cpus = int(nano_cpus)
        burst = {key: value for key, value in host_config.items() if key != "nano_cpus"}
        burst["cpu_shares"] = self.boot_cpu_shares
        return burst

    def forget_cpu_burst(self) -> None:
        """This start ended without a booted container (failed, undone or cancelled)."""
        self._burst_nano_cpus = None

    async def end_cpu_burst(self) -> None:
        """Give the booted workspace its CPU limit and the running weight. On an engine error
        the container keeps booting settings until a poll sets them (:meth:`poll`)."""
        nano_cpus, self._burst_nano_cpus = self._burst_nano_cpus, None
        if nano_cpus is None or not self.object_id:
            return
        await self._apply_cpu_limit(nano_cpus, "booted")

    async def _apply_cpu_limit(self, nano_cpus: int, why: str) -> None:
        try:
            await asyncio.wrap_future(
                self.executor.submit(set_cpu, self.client, self.object_id, nano_cpus, RUNNING_CPU_SHARES)
            )
        except NotFound:
            return
        except Exception as exc:
            self.log.error(
                "Could not set the CPU limit (%g) of %s's workspace %s: %s; the next poll retries",
                nano_cpus / NANO,
                self.user.name,
                self.object_name,
                exc,
            )
            return
        self.log.info(
            "%s's workspace %s %s: CPU limit %g set", self.user.name, self.object_name, why, nano_cpus / NANO
        )

    async def get_object(self) -> dict[str, Any] | None:
        self._inspected = None  # an engine that does not answer leaves nothing to judge
        self._inspected = obj = await super().get_object()  # type: ignore[misc]
        return obj

    async def poll(self) -> int | str | None:
        """DockerSpawner's poll; a running workspace still at its boot settings (left by a
        hub that stopped while it booted, or an engine error) gets its CPU limit here."""
        status = await super().poll()  # type: ignore[misc]
        if status is None and self._burst_nano_cpus is None:
            nano_cpus = boot_leftover(self._inspected, self.boot_cpu_shares)
            if nano_cpus:
                await self._apply_cpu_limit(nano_cpus, "was left booting without its CPU limit")
        return status


def boot_leftover(container: dict[str, Any] | None, boot_cpu_shares: int) -> int | None:
    """The NanoCpus an inspected workspace container should have but lacks: it was created for
    a burst (no CPU limit, the boot weight) and its label names its limit. None otherwise."""
    if not container:
        return None
    host = container.get("HostConfig") or {}
    if host.get("NanoCpus") or host.get("CpuQuota") or host.get("CpuShares") != boot_cpu_shares:
        return None
    label = ((container.get("Config") or {}).get("Labels") or {}).get(L.CPU_LIMIT, "")
    try:
        cpus = float(label)
    except ValueError:
        return None
    return int(round(cpus * NANO)) if cpus > 0 else None
