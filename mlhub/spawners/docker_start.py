"""A Docker workspace's lifecycle: start (network, volume, container, the watch until it
serves), undoing a failed start, stop and poll while the engine may be away.

A mixin of :class:`mlhub.spawners.docker.MLHubDockerSpawner`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from docker.errors import APIError, ImageNotFound, NotFound
from requests.exceptions import ConnectionError as EngineConnectionError
from requests.exceptions import Timeout as EngineTimeout
from tornado import web
from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from mlhub.core import labels as L
from mlhub.core.keyed_locks import KeyedLocks
from mlhub.core.ownership import Verdict
from mlhub.core.steps import StepClock
from mlhub.engines import docker_network as net


def engine_unreachable(exc: BaseException) -> bool:
    """True when *exc* says the Docker engine did not answer (down, restarting, socket gone)."""
    return isinstance(exc, (EngineConnectionError, EngineTimeout))


#: One gate per hub process (all spawners' starts share the engine host's CPUs).
_BOOT_GATE: asyncio.Semaphore | None = None


#: One boot at a time per user (by name), for the whole hub process.
_USER_BOOTS = KeyedLocks()


class DockerLifecycle(LoggingConfigurable):
    """Start, watch, undo, stop and poll (a mixin of MLHubDockerSpawner)."""

    startup_check_seconds = Float(
        20.0,
        config=True,
        help="""After the container starts, watch it this long for its server to accept
        connections. A container that exits meanwhile (e.g. ``EXECUTE_CODE`` naming a missing
        file) fails the start with HTTP 400 and its last log lines, and the start is undone
        (container, new volume and network removed). After this time JupyterHub's own wait
        (``http_timeout``) goes on. 0: no watch.""",
    )

    concurrent_boots = Int(
        0,
        min=0,
        config=True,
        help="""Workspaces of this hub that may boot at once: from creating the container until
        its server accepts connections (or ``startup_check_seconds`` pass). Further starts wait
        their turn (step ``boot_wait``; the wait counts against ``start_timeout``, not
        ``http_timeout``). Booting servers share the engine host's CPUs: started all at once,
        each boots so slowly that JupyterHub's ``http_timeout`` fails many (100 at once on 2
        cores: 224 of 300 failed in the 2026-11-30 benchmark). A user boots one workspace at
        a time, so one account holds one slot at most. 0: twice the engine's CPUs
        (``docker info``), at least 4.""",
    )

    async def _boot_gate(self) -> asyncio.Semaphore:
        """The hub's one gate on booting workspaces (made at the first start)."""
        global _BOOT_GATE
        if _BOOT_GATE is None:
            size = self.concurrent_boots
            if not size:
                try:
                    cpus = int((await self.docker("info")).get("NCPU") or 0)
                except Exception as exc:  # the engine's own error follows at create
                    self.log.warning("Cannot read the engine's CPUs (%s); assuming 2", exc)
                    cpus = 2
                size = max(4, 2 * cpus)
            if _BOOT_GATE is None:  # another start may have made it meanwhile
                _BOOT_GATE = asyncio.Semaphore(size)
                self.log.info("At most %d workspaces boot at once", size)
        return _BOOT_GATE

    async def get_object(self) -> dict[str, Any] | None:
        """The workspace container, or None; a foreign container of that name is ignored."""
        obj = await super().get_object()
        if obj is None:
            return None
        found = obj.get("Config", {}).get("Labels") or {}
        verdict, why = self._judge(found, obj.get("Created"), server=False)
        if verdict is not Verdict.MINE:
            self.log.warning(
                "Container %s exists but is not %s's workspace on hub %s (%s); not using it",
                self.object_name,
                self.user.name,
                self.hub_name,
                why,
            )
            self.object_id = ""
            return None
        return obj

    async def poll(self) -> int | str | None:
        """DockerSpawner's poll; while the engine does not answer the state is unknown, so
        the server is reported as still running (with live-restore its container is) and the
        next poll after the engine is back decides."""
        try:
            return await super().poll()
        except Exception as exc:
            if not engine_unreachable(exc):
                raise
            self.log.warning(
                "Docker engine does not answer; cannot check %s's workspace %s (%s)",
                self.user.name,
                self.object_name,
                type(exc).__name__,
            )
            return None

    async def stop(self, now: bool = False) -> None:
        """DockerSpawner's stop, timed (steps ``stop`` and ``remove``)."""
        with self.timed_stop("Stopped"):
            await self._stop(now)

    async def _stop(self, now: bool = False) -> None:
        """DockerSpawner's stop. With no container (a failed start already undone, or a
        container removed behind the hub's back) there is only state to clear; DockerSpawner
        would ask the engine to stop container "" and log a traceback for every failed start."""
        if not self.object_id:
            try:
                found = await self.get_object()
            except Exception as exc:
                if not engine_unreachable(exc):
                    raise
                # a start that never got a container id; if it left one, the cleanup
                # service's stale-container rule removes it once the engine is back
                self.log.warning("Docker engine does not answer; %s had no container to stop", self._log_name)
                found = None
            if found is None:
                self.log.info("No container to stop for %s", self._log_name)
                self.clear_state()
                return
        await super().stop(now=now)

    async def start(self) -> tuple[str, int]:
        clock = self.start_clock()  # begun by apply_user_options (step "options")
        self._boot_slot: tuple[asyncio.Semaphore, str] | None = None
        try:
            result = await self._timed_start(clock)
        except BaseException:
            self.finish_start_clock(ok=False)
            raise
        finally:
            self.forget_cpu_burst()  # a container left booting gets its limit at a poll
            self._release_boot_slot()
        self.finish_start_clock(ok=True)
        return result

    async def create_object(self) -> dict[str, Any]:
        with self.start_step("create"):
            return await super().create_object()

    async def start_object(self) -> None:
        with self.start_step("start"):
            await super().start_object()

    async def stop_object(self) -> None:
        with self.stop_step("stop"):
            await super().stop_object()

    async def remove_object(self) -> None:
        with self.stop_step("remove"):
            await super().remove_object()

    async def _timed_start(self, clock: StepClock) -> tuple[str, int]:
        # made by apply_user_options; made here when the admin's own hook replaced it
        with clock.step("options"):
            options = (await self.ensure_plan()).options
        created_network = created_volume = created_disk = False
        owner = L.owner_labels(self.hub_name, self.user.name, self.install_id, self.account_created)
        try:
            with clock.step("image"):
                await self._check_image_present(options.image)
            try:
                with clock.step("network"):
                    await self._check_network()
                    pool = ipaddress.IPv4Network(self.network_pool) if self.network_pool else None
                    created_network = await net.ensure_network(
                        self.docker, self.network_name, owner, pool, self.network_prefix_length
                    )
                    if created_network:
                        self.log.info("Created network %s for %s", self.network_name, self.user.name)
                    if self.hub_container:
                        await net.connect(self.docker, self.network_name, self.hub_container)
                labels = self.workspace_labels()
                disk_cap = None
                if options.is_mount_volume:
                    with clock.step("volume"):
                        self._mlhub_volume = await self.resolve_volume()
                        created_volume, created_disk, disk_cap = await self._prepare_volume(labels)
                    if created_volume:
                        self.log.info("Created volume %s for %s", self.volume_name, self._log_name)
                self._remember_bounds(disk_cap)
            except net.ForeignObjectError as exc:
                raise web.HTTPError(409, str(exc)) from None
            except net.NoFreeSubnet as exc:
                raise web.HTTPError(503, f"No network for {self.user.name}'s workspace: {exc}") from None
            await self._wait_boot_slot(clock)
            result = await super().start()  # create and start are timed by their own methods
        except asyncio.CancelledError:
            # JupyterHub's start_timeout cancelled the start: undo it all the same
            self.log.warning("Start of %s was cancelled (start_timeout); undoing it", self._log_name)
            await asyncio.shield(self._undo_start(created_network, created_volume, created_disk))
            raise
        except Exception as exc:
            await self._undo_start(created_network, created_volume, created_disk)
            raise self._explain(exc) from exc
        # The container runs. A cancellation while watching it (the hub shutting down) leaves it
        # to the restarted hub, which adopts it (so its address and state are stored first, as
        # JupyterHub does when start returns); only an exit during the watch undoes the start.
        self._record_started(result)
        try:
            with clock.step("first_answer"):
                await self._wait_serving_or_exited(result)
        except web.HTTPError:
            await self._undo_start(created_network, created_volume, created_disk)
            raise
        await self.end_cpu_burst()  # booted (or out of watch time): its CPU limit from now
        self._release_boot_slot()  # the next start may go
        self.log.info(
            "Started workspace %s for %s on network %s (expires: %s)",
            self.object_name,
            self.user.name,
            self.network_name,
            self.expiration_timestamp or "never",
        )
        return result

    async def _wait_boot_slot(self, clock: StepClock) -> None:
        """Wait until this user has no other workspace booting and fewer than
        ``concurrent_boots`` of the hub's are: one user's starts (named servers, or images
        that never serve) hold at most one slot, so they cannot keep everyone else waiting."""
        gate = await self._boot_gate()
        owner = self.user.name
        with clock.step("boot_wait"):
            if _USER_BOOTS.busy(owner):
                self.log.info("%s waits for the user's other workspace to boot", self._log_name)
            await _USER_BOOTS.acquire(owner)
            try:
                if gate.locked():
                    self.log.info("%s waits for a boot slot (the hub's are all taken)", self._log_name)
                await gate.acquire()
            except BaseException:
                _USER_BOOTS.release(owner)
                raise
        self._boot_slot = (gate, owner)

    def _release_boot_slot(self) -> None:
        if self._boot_slot is not None:
            gate, owner = self._boot_slot
            self._boot_slot = None
            gate.release()
            _USER_BOOTS.release(owner)

    def _remember_bounds(self, disk_cap: int | None) -> None:
        """Keep the workspace's process limit and /workspace size with its state (for the pages)."""
        if self.mlhub_meta is None:
            return
        bounds = {"pids": self.pids_limit} if self.pids_limit else {}
        if disk_cap:
            bounds["disk"] = disk_cap
        self.mlhub_meta.bounds = bounds

    def _record_started(self, address: tuple[str, int]) -> None:
        if self.server is None or self.orm_spawner is None:
            return
        self.server.ip, self.server.port = address
        self.orm_spawner.state = self.get_state()
        self.user.db.commit()

    async def _wait_serving_or_exited(self, address: tuple[str, int]) -> None:
        """Until the server accepts connections, or the container exits (HTTP 400 naming the
        exit status and the workspace's last log lines); at most ``startup_check_seconds``."""
        ip, port = address
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_check_seconds
        tries = 0
        while loop.time() < deadline:
            tries += 1
            if tries % 5 != 1:  # a connection attempt every 0.1 s, the engine asked every 0.5 s
                if await self._accepts(ip, port):
                    return
                await asyncio.sleep(0.1)
                continue
            try:
                state = (await self.docker("inspect_container", self.object_id))["State"]
            except NotFound:
                raise web.HTTPError(
                    400, f"{self._log_name}'s workspace container was removed while starting"
                ) from None
            except Exception as exc:  # the engine does not answer: JupyterHub's own wait goes on
                self.log.warning("Cannot watch the start of %s: %s", self._log_name, exc)
                return
            if state.get("Status") in ("exited", "dead"):
                logs = await self.docker("logs", self.object_id, stdout=True, stderr=True, tail=5)
                last = [line.strip() for line in logs.decode(errors="replace").splitlines() if line.strip()][
                    -3:
                ]
                self.log.warning(
                    "Workspace %s exited while starting (status %s): %s",
                    self._log_name,
                    state.get("ExitCode"),
                    last,
                )
                raise web.HTTPError(
                    400,
                    f"{self._log_name}'s workspace stopped while starting (exit status {state.get('ExitCode')}): "
                    + (" | ".join(last) or "it wrote nothing")
                    + "; nothing was left behind",
                )
            if await self._accepts(ip, port):
                return
            await asyncio.sleep(0.1)

    @staticmethod
    async def _accepts(ip: str, port: int) -> bool:
        """True if the server at ip:port accepts a connection."""
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout=2)
        except (OSError, asyncio.TimeoutError):
            return False
        writer.close()
        return True

    async def _check_image_present(self, image: str) -> None:
        if self.pull_policy in ("never", "skip"):
            return
        try:
            await self.docker("inspect_image", image)
        except ImageNotFound:
            try:
                await self.pull_image(image)
            except APIError as exc:
                raise web.HTTPError(
                    400,
                    f"image: {image!r} is not on this Docker host and could not be pulled "
                    f"({exc.explanation or exc}); ask the admin to build or pull it",
                ) from None

    def _explain(self, exc: Exception) -> Exception:
        """Turn engine errors users can act on into clear HTTP errors."""
        if isinstance(exc, web.HTTPError):
            return exc
        if engine_unreachable(exc):
            self.log.error(
                "Docker engine does not answer; %s's workspace not started: %s", self.user.name, exc
            )
            return web.HTTPError(
                503,
                f"The Docker engine does not answer, so {self.user.name}'s workspace was not started; "
                "try again in a minute (admins: check that dockerd runs)",
            )
        text = str(getattr(exc, "explanation", "") or exc)
        if "could not select device driver" in text:
            return web.HTTPError(
                400,
                "gpus: this Docker host cannot give containers GPUs (no NVIDIA container "
                "runtime); leave gpus empty",
            )
        if "--storage-opt is supported only" in text:
            self.log.error("The engine cannot cap container layers: %s", text)
            return web.HTTPError(
                500,
                f"{self.user.name}'s workspace was not started: this Docker engine cannot cap the container's "
                f"disk ({text}); admins: unset c.MLHubDockerSpawner.container_disk_limit",
            )
        if "no space left on device" in text.lower():
            self.log.warning("No space left starting %s: %s", self._log_name, text)
            where = (
                f"its /workspace volume {self.volume_name!r} is full"
                if f"/{self.volume_name}/" in text
                else "the Docker host's disk is full"
            )
            return web.HTTPError(
                507,
                f"No space left on device: {where}, so {self.user.name}'s workspace could not start and "
                "nothing was left behind; ask the admin to free space (or give the volume more)",
            )
        if isinstance(exc, APIError) and exc.status_code == 409:
            return web.HTTPError(
                409,
                f"A Docker object named {self.object_name!r} already exists and does not belong "
                f"to this workspace; remove or rename it, then start again ({text})",
            )
        return exc

    async def _undo_start(
        self, created_network: bool, created_volume: bool, created_disk: bool = False
    ) -> None:
        """Remove what this failed start created, so a refused spawn leaves nothing behind."""
        try:
            if self.object_id:
                await self.remove_object()
                self.object_id = ""
            if created_volume:
                await net.remove_volume(self.docker, self.volume_name)
            if created_disk:
                await asyncio.to_thread(self._disk().remove)
            if created_network:
                keep = {self.hub_container} if self.hub_container else set()
                await net.remove_network_if_unused(self.docker, self.network_name, keep)
        except Exception:
            self.log.exception("Could not fully undo the failed start of %s", self._log_name)
