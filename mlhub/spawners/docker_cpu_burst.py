"""The boot CPU burst: a workspace whose CPU limit is below ``boot_cpu_limit`` boots at that
higher limit and gets its own when its boot slot ends (its server answers, or
``startup_check_seconds`` pass).

A workspace's default limit (half a core on a 2-core host) makes the single-user server's own
start take about twice as long as at a full core, although the host's cores are mostly idle.
The boot limit is a hard limit too, so a user who restarts a workspace in a loop gets at most
``boot_cpu_limit`` cores, never the host. See docs/decisions/boot-cpu-burst.md.

A mixin of :class:`mlhub.spawners.docker.MLHubDockerSpawner`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from docker.errors import NotFound
from traitlets import Bool, Float
from traitlets.config import LoggingConfigurable

from mlhub.core import labels as L
from mlhub.spawners.docker_objects import NANO, nano_cpus

#: ``extra_host_config`` keys by which an admin sets CPU scheduling; the burst then stays off.
ADMIN_CPU_KEYS = ("nano_cpus", "cpu_quota", "cpu_period", "cpu_shares", "cpuset_cpus", "cpu_rt_runtime")


def set_cpu_limit(client: Any, container: str, nano_cpus: int) -> None:
    """Set a running container's CPU limit (``docker update --cpus``). docker-py's
    ``update_container`` has no ``NanoCpus`` (a quota set instead would conflict with the
    ``NanoCpus`` the container was created with), so the engine's update endpoint is called as
    ``update_container`` calls it."""
    response = client._post_json(
        client._url("/containers/{0}/update", container), data={"NanoCpus": nano_cpus}
    )
    client._result(response, True)


def _nano(label: str | None) -> int | None:
    try:
        cores = float(label or "")
    except ValueError:
        return None
    return nano_cpus(cores) if cores > 0 else None


def boot_leftover(container: dict[str, Any] | None) -> int | None:
    """The NanoCpus an inspected workspace container should have but lacks: it still runs at
    the boot limit its ``mlhub.boot_cpu_limit`` label names, and ``mlhub.cpu_limit`` names its
    own. None otherwise (also when the admin changed its CPU by hand since)."""
    if not container:
        return None
    labels = (container.get("Config") or {}).get("Labels") or {}
    boot, limit = _nano(labels.get(L.BOOT_CPU_LIMIT)), _nano(labels.get(L.CPU_LIMIT))
    current = (container.get("HostConfig") or {}).get("NanoCpus")
    if boot is None or limit is None or current != boot or current == limit:
        return None
    return limit


class DockerCpuBurst(LoggingConfigurable):
    """Creates a booting workspace at ``boot_cpu_limit``; sets its own limit when the boot
    slot ends."""

    boot_cpu_burst = Bool(
        True,
        config=True,
        help="""Let a workspace whose CPU limit is below ``boot_cpu_limit`` boot at that limit,
        and set its own when its server first answers (or ``startup_check_seconds`` pass). At
        half a core, the single-user server starts about twice as slowly as at a full core.
        Booting is bounded by ``concurrent_boots``, one boot per user and
        ``startup_check_seconds``. Off by itself when ``extra_host_config`` sets CPU
        scheduling, or ``startup_check_seconds`` is 0. False: the limit holds from the start.""",
    )

    boot_cpu_limit = Float(
        1.0,
        min=0.01,
        config=True,
        help="""CPU cores a booting workspace may use when its own limit is lower (never more
        than the host's cores). The single-user server starts in one process, so more than
        one core gains little. It is a hard limit: a user who restarts a workspace over and
        over gets at most this much CPU.""",
    )

    #: the NanoCpus to set when this start's boot ends; None when no burst is under way
    _burst_nano_cpus: int | None = None
    #: the container as the last ``get_object`` saw it (the poll reads its CPU settings)
    _inspected: dict[str, Any] | None = None

    def cpu_burst(
        self, host_config: dict[str, Any], admin_host: dict[str, Any], host_cpus: float | None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """*host_config* for creating the container and the labels to add: the boot limit and
        its label when the burst applies (remembering the own limit for :meth:`end_cpu_burst`).
        Only a start holding a boot slot bursts: ``create_object`` called on its own (as in
        DockerSpawner's tests) has no end of a boot to set the limit at."""
        self._burst_nano_cpus = None
        own = host_config.get("nano_cpus")
        booting = getattr(self, "_boot_slot", None) is not None
        if not (self.boot_cpu_burst and booting and own and self.startup_check_seconds > 0):
            return host_config, {}
        if any(key in admin_host for key in ADMIN_CPU_KEYS):
            return host_config, {}
        boot_cores = min(self.boot_cpu_limit, host_cpus) if host_cpus else self.boot_cpu_limit
        boot = nano_cpus(boot_cores)
        if boot <= own:
            return host_config, {}
        self._burst_nano_cpus = int(own)
        return {**host_config, "nano_cpus": boot}, {L.BOOT_CPU_LIMIT: f"{boot / NANO:g}"}

    def forget_cpu_burst(self) -> None:
        """This start ended without a booted container (failed, undone or cancelled)."""
        self._burst_nano_cpus = None

    async def end_cpu_burst(self) -> None:
        """Give the booted workspace its own CPU limit. On an engine error it keeps the boot
        limit until a poll sets it (:meth:`poll`)."""
        nano_cpus, self._burst_nano_cpus = self._burst_nano_cpus, None
        if nano_cpus is None or not self.object_id:
            return
        await self._apply_cpu_limit(nano_cpus, "booted")

    async def _apply_cpu_limit(self, nano_cpus: int, why: str) -> None:
        try:
            await asyncio.wrap_future(
                self.executor.submit(set_cpu_limit, self.client, self.object_id, nano_cpus)
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
        """DockerSpawner's poll; a running workspace still at its boot limit (left by a hub
        that stopped while it booted, or an engine error) gets its own limit here."""
        status = await super().poll()  # type: ignore[misc]
        if status is None and self._burst_nano_cpus is None:
            nano_cpus = boot_leftover(self._inspected)
            if nano_cpus:
                await self._apply_cpu_limit(nano_cpus, "was left at its boot CPU limit")
        return status
