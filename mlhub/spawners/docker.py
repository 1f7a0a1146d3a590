"""``MLHubDockerSpawner``: DockerSpawner plus per-user networks, labels, limits, GPUs, expiry.

Entry point ``mlhub-docker``: ``c.JupyterHub.spawner_class = "mlhub-docker"``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
from pathlib import Path
from typing import Any

from docker.errors import APIError, ImageNotFound, NotFound
from dockerspawner import DockerSpawner
from jupyterhub.traitlets import ByteSpecification
from requests.exceptions import ConnectionError as EngineConnectionError
from requests.exceptions import Timeout as EngineTimeout
from tornado import web
from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode, default, validate

from mlhub.core import labels as L
from mlhub.core.fair_defaults import DEFAULT_CAP_DROP, DEFAULT_PIDS_LIMIT, DEFAULT_WORKSPACE_DISK_LIMIT
from mlhub.core.names import user_network_name, workspace_name, workspace_volume_name
from mlhub.core.ownership import Verdict, judge, moved_aside_name, parse_time
from mlhub.engines import docker_network as net
from mlhub.engines.workspace_disk import DiskError, WorkspaceDisk, disk_of_volume, unsupported_reason
from mlhub.spawners.base import MLHubSpawner
from mlhub.spawners.docker_objects import (
    Hardening,
    container_settings,
    engine_socket_sources,
    merge_host_config,
)

DEFAULT_IMAGE = "mlhub/workspace:latest"


def engine_unreachable(exc: BaseException) -> bool:
    """True when *exc* says the Docker engine did not answer (down, restarting, socket gone)."""
    return isinstance(exc, (EngineConnectionError, EngineTimeout))


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _deep_merge(dest: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dest.get(key), dict):
            _deep_merge(dest[key], value)
        else:
            dest[key] = value
    return dest


class MLHubDockerSpawner(MLHubSpawner, DockerSpawner):
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

    use_init = Bool(
        True,
        config=True,
        help="""Run Docker's init (``--init``) as PID 1 of each workspace, so processes left
        by SSH sessions and terminals are reaped instead of lingering as zombies (the single-user
        server does not reap children it did not start).""",
    )

    hub_container = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Name or id of the container the hub runs in, when it runs in a container
        on the same engine. It is connected to each user's network so the hub and proxy reach
        the workspaces. None (default): the hub runs on the host and reaches workspaces
        directly. The default config detects it.""",
    )

    startup_check_seconds = Float(
        20.0,
        config=True,
        help="""After the container starts, watch it this long for its server to accept
        connections. A container that exits meanwhile (e.g. ``EXECUTE_CODE`` naming a missing
        file) fails the start with HTTP 400 and its last log lines, and the start is undone
        (container, new volume and network removed). After this time JupyterHub's own wait
        (``http_timeout``) goes on. 0: no watch.""",
    )

    allow_engine_socket = Bool(
        False,
        config=True,
        help="""Let workspaces mount the Docker engine's socket (or a folder holding it) through
        ``volumes``, ``mounts`` or ``extra_host_config``. Whoever has the socket controls every
        container on the engine and is root on the host, so by default such a workspace is not
        started and the spawn fails naming the mount. Set True only for workspaces that are
        meant to drive the engine and whose users you would give root.""",
    )

    gpu_driver = Unicode(
        "nvidia",
        config=True,
        help="Docker device driver used for GPU requests (``--gpus``).",
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

    remove_volume_on_delete = Bool(
        False,
        config=True,
        help="""Remove a server's ``/workspace`` volume when the server is deleted (not
        when it is only stopped). Off by default: data outlives its server until the admin
        or the cleanup service removes it.""",
    )

    volume_driver = Unicode(
        "local",
        config=True,
        help="""Docker volume driver of the per-server ``/workspace`` volumes (``local``, or a
        plugin such as an NFS or quota driver installed on the engine).""",
    )
    volume_driver_options = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""Driver options for new ``/workspace`` volumes, as ``docker volume create
        --opt`` takes them. With the ``local`` driver, e.g. a size-capped tmpfs:
        ``{"type": "tmpfs", "device": "tmpfs", "o": "size=2g"}``, or an NFS export:
        ``{"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/export/mlhub"}``. Existing
        volumes keep the options they were created with.""",
    )

    # --- the admin's bounds on every workspace --------------------------------------------

    pids_limit = Int(
        DEFAULT_PIDS_LIMIT,
        min=0,
        config=True,
        help="""Most processes and threads one workspace may run (Docker's ``--pids-limit``);
        a fork bomb stops here instead of filling the host's process table. 0: no limit.""",
    )
    no_new_privileges = Bool(
        True,
        config=True,
        help="""Run workspaces with ``no-new-privileges``: setuid/setgid programs and file
        capabilities grant nothing, so a user cannot become root inside. Switch off only for
        images whose users must ``sudo`` (the workspace image built with ENABLE_SUDO=true).""",
    )
    cap_drop = List(
        Unicode(),
        list(DEFAULT_CAP_DROP),
        config=True,
        help="""Linux capabilities removed from workspaces (on top of what Docker already
        withholds). The default keeps what images that start as root and then drop to their
        user need; ``["ALL"]`` suits images that run as a plain user from the start.""",
    )
    container_disk_limit = ByteSpecification(
        None,
        allow_none=True,
        config=True,
        help="""Size of each workspace's writable container layer (everything outside its
        volumes), as ``--storage-opt size``. Only engines with overlay2 on xfs with project
        quotas (or btrfs, zfs, devicemapper) support it; on others the spawn fails naming this
        setting. Default: no cap (see docs/decisions/workspace-disk-limit.md).""",
    )
    workspace_disk_limit = ByteSpecification(
        DEFAULT_WORKSPACE_DISK_LIMIT,
        allow_none=True,
        config=True,
        help="""Size of each new ``/workspace`` volume (e.g. '10G'): a sparse ext4 image in
        ``workspace_disk_dir``, loop-mounted by the hub; writes past it fail with "No space left
        on device" inside the workspace. Needs the hub on the engine's host as root; applies
        to the ``local`` driver without ``volume_driver_options``. 0 or None: no cap. Existing
        volumes keep their size.""",
    )
    workspace_disk_dir = Unicode(
        "workspace-disks",
        config=True,
        help="""Folder of the ``/workspace`` disk images and their mount points (relative:
        to the hub's working directory). The default config puts it in MLHUB_DATA_DIR.""",
    )

    def hardening(self) -> Hardening:
        return Hardening(
            pids_limit=self.pids_limit or None,
            no_new_privileges=self.no_new_privileges,
            cap_drop=tuple(self.cap_drop),
            storage_size=self.container_disk_limit or None,
        )

    def shown_pids_limit(self) -> int | None:
        return self.pids_limit or None

    def shown_disk_limit(self) -> int | None:
        return self.workspace_disk_limit if self._caps_new_volumes() else None

    # why this hub cannot cap /workspace (None: it can); looked at once per hub process
    _disk_cap_problem: str | None = None
    _disk_cap_checked = False

    def _caps_new_volumes(self) -> bool:
        if not (
            self.workspace_disk_limit and self.volume_driver == "local" and not self.volume_driver_options
        ):
            return False
        cls = type(self)
        if not cls._disk_cap_checked:
            cls._disk_cap_checked = True
            cls._disk_cap_problem = unsupported_reason(in_container=bool(self.hub_container))
            if cls._disk_cap_problem:
                self.log.warning(
                    "workspace_disk_limit is not enforced: %s; /workspace volumes get no size cap",
                    cls._disk_cap_problem,
                )
        return cls._disk_cap_problem is None

    def _disk(self) -> WorkspaceDisk:
        return WorkspaceDisk(Path(os.path.abspath(self.workspace_disk_dir)), self.volume_name)

    async def _prepare_volume(self, labels: dict[str, str]) -> tuple[bool, bool, int | None]:
        """Create the workspace volume unless it exists (capped: on a new disk image) and mount
        the disk image of a capped one; (volume created, disk image created, its cap or None)."""
        try:
            found = await self.docker("inspect_volume", self.volume_name)
        except NotFound:
            found = None
        disk_created = False
        cap: int | None = None
        options = dict(self.volume_driver_options)
        if found is None and self._caps_new_volumes():
            disk = self._disk()
            try:
                await asyncio.to_thread(disk.create, self.workspace_disk_limit)
            except DiskError as exc:
                self.log.error("Could not make the %s disk for %s: %s", self.volume_name, self._log_name, exc)
                raise web.HTTPError(
                    500,
                    f"{self.user.name}'s /workspace volume could not be created with its size cap ({exc}); "
                    "admins: see the hub's log, or set MLHUB_WORKSPACE_DISK_LIMIT=0",
                ) from None
            disk_created = True
            cap = self.workspace_disk_limit
            options = disk.driver_options()
            labels = {**labels, L.PREFIX + "disk_limit": str(self.workspace_disk_limit)}
            self.log.info("Made a %s disk image for volume %s", self.workspace_disk_limit, self.volume_name)
        try:
            created = await net.ensure_volume(
                self.docker, self.volume_name, labels, self.volume_driver, options
            )
        except BaseException:
            if disk_created:
                await asyncio.to_thread(self._disk().remove)
            raise
        if found is not None:
            existing = disk_of_volume(found)
            if existing is not None:
                cap = _int_or_none((found.get("Labels") or {}).get(L.PREFIX + "disk_limit"))
            if existing is not None and not existing.is_mounted():
                try:
                    await asyncio.to_thread(existing.ensure_mounted)
                except DiskError as exc:
                    self.log.error(
                        "Could not mount the disk of %s for %s: %s", self.volume_name, self._log_name, exc
                    )
                    raise web.HTTPError(
                        500,
                        f"{self.user.name}'s /workspace disk image could not be mounted ({exc}); "
                        "the workspace was not started. Admins: see the hub's log",
                    ) from None
                self.log.info("Mounted the disk image of volume %s again", self.volume_name)
        return created, disk_created, cap

    @validate("volume_driver")
    def _validate_volume_driver(self, proposal: Any) -> str:
        value = proposal["value"]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*", value):
            raise TraitError(
                f"volume_driver must be a Docker volume driver name such as 'local' (got {value!r})"
            )
        return value

    @validate("volume_driver_options")
    def _validate_volume_driver_options(self, proposal: Any) -> dict[str, str]:
        value = proposal["value"]
        for key in value:
            if not key.strip() or "=" in key:
                raise TraitError(
                    f"volume_driver_options: option names must be non-empty and without '=' (got {key!r})"
                )
        return value

    # --- engine facts and limits --------------------------------------------------------

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

    def default_image(self) -> str:
        return self.image

    def allowed_image_map(self) -> dict[str, str]:
        allowed = self._get_allowed_images()
        if allowed == "*":
            return {self.image: self.image}
        return dict(allowed) if allowed else {self.image: self.image}

    def allows_custom_image(self) -> bool:
        # DockerSpawner's allowed_images = "*" means any image, as allow_custom_image does
        return self.allow_custom_image or self._get_allowed_images() == "*"

    async def check_allowed(self, image: str) -> str:
        # Images are checked (and aliases resolved) by the MLHub validator before start, into
        # this start's plan. DockerSpawner.start assigns what this returns to ``self.image``:
        # the admin's image, so the trait keeps its configured value.
        if self.mlhub_plan is not None:
            return self.image
        return await super().check_allowed(image)

    def plan_image(self) -> str:
        """The image of this start: the plan's, or the configured one before any plan."""
        return self.mlhub_plan.image if self.mlhub_plan is not None else self.image

    async def pull_image(self, image: str) -> None:
        # DockerSpawner.start pulls ``self.image`` (the admin's); this start runs the plan's
        if self.mlhub_plan is not None and image == self.image:
            image = self.mlhub_plan.image
        await super().pull_image(image)

    async def get_command(self) -> list[str]:
        if self.cmd:
            return [*self.cmd, *self.get_args()]
        image_info = await self.docker("inspect_image", self.plan_image())
        return [*image_info["Config"]["Cmd"], *self.get_args()]

    def template_namespace(self) -> dict[str, Any]:
        ns = super().template_namespace()
        ns["imagename"] = self.plan_image().replace("/", "-").replace(":", "-")
        return ns

    # --- names --------------------------------------------------------------------------

    #: the volume this start resolved (the usual name, or the moved-aside one)
    _mlhub_volume: str = ""

    @property
    def volume_name(self) -> str:
        return self._mlhub_volume or workspace_volume_name(self.hub_name, self.user.name, self.name)

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

    async def _inspect_volume(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.docker("inspect_volume", name)
        except NotFound:
            return None

    async def resolve_volume(self) -> str:
        """The name of this server's ``/workspace`` volume for this account.

        Usually ``<hub>-<user>[--<server>]-workspace``. When an earlier account with this user
        name left a volume under that name (kept by the admin's choice, or not yet removed),
        this account's volume is ``<usual>-<account created>`` instead: the old data is never
        mounted. Raises ForeignObjectError for another hub's or install's volume.
        """
        usual = workspace_volume_name(self.hub_name, self.user.name, self.name)
        aside = moved_aside_name(usual, self.account_created) if self.account_created is not None else ""
        if aside and (found := await self._inspect_volume(aside)) is not None:
            verdict, why = self._judge(found.get("Labels"), found.get("CreatedAt"))
            if verdict is Verdict.MINE:
                return aside
            raise net.ForeignObjectError(
                f"A Docker volume named {aside!r} exists but is not {self.user.name}'s ({why}); remove or rename it, then start again"
            )
        found = await self._inspect_volume(usual)
        if found is None:
            return usual
        verdict, why = self._judge(found.get("Labels"), found.get("CreatedAt"))
        if verdict is Verdict.MINE:
            return usual
        if verdict is Verdict.EARLIER_ACCOUNT and aside:
            self.log.warning(
                "Volume %s was %s; not mounting it for the current account %s: using %s",
                usual,
                why,
                self.user.name,
                aside,
            )
            return aside
        raise net.ForeignObjectError(
            f"A Docker volume named {usual!r} exists but is not {self.user.name}'s ({why}); remove or rename it, then start again"
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

    # --- lifecycle ----------------------------------------------------------------------

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
        # made by apply_user_options; made here when the admin's own hook replaced it
        options = (await self.ensure_plan()).options
        created_network = created_volume = created_disk = False
        owner = L.owner_labels(self.hub_name, self.user.name, self.install_id, self.account_created)
        try:
            await self._check_image_present(options.image)
            try:
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
                    self._mlhub_volume = await self.resolve_volume()
                    created_volume, created_disk, disk_cap = await self._prepare_volume(labels)
                    if created_volume:
                        self.log.info("Created volume %s for %s", self.volume_name, self._log_name)
                self._remember_bounds(disk_cap)
            except net.ForeignObjectError as exc:
                raise web.HTTPError(409, str(exc)) from None
            except net.NoFreeSubnet as exc:
                raise web.HTTPError(503, f"No network for {self.user.name}'s workspace: {exc}") from None
            result = await super().start()
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
            await self._wait_serving_or_exited(result)
        except web.HTTPError:
            await self._undo_start(created_network, created_volume, created_disk)
            raise
        self.log.info(
            "Started workspace %s for %s on network %s (expires: %s)",
            self.object_name,
            self.user.name,
            self.network_name,
            self.expiration_timestamp or "never",
        )
        return result

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
        while loop.time() < deadline:
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
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout=2)
                writer.close()
                return
            except (OSError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.5)

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

    async def create_object(self) -> dict[str, Any]:
        """Create the workspace container from this start's plan (made from ``user_options``
        when called on its own): DockerSpawner's arguments (name, environment, command, its
        volumes, links and mounts, the admin's ``extra_create_kwargs``/``extra_host_config``
        in any of their forms), then the plan's image, labels, limits, GPUs and volume."""
        plan = await self.ensure_plan()
        settings = container_settings(
            plan.options,
            dict(plan.labels),
            self.volume_name,
            self.workspace_mount_path,
            self.gpu_driver,
            self.use_init,
            self.hardening(),
        )
        admin_create = self._render_templates(await self._evaluated(self.extra_create_kwargs))
        admin_host = self._render_templates(await self._evaluated(self.extra_host_config))
        create_kwargs: dict[str, Any] = {
            "image": plan.image,
            "environment": self.get_env(),
            "volumes": self.volume_mount_points,
            "name": self.container_name,
            "command": await self.get_command(),
            "ports": {f"{self.port}/tcp": None},
        }
        _deep_merge(create_kwargs, admin_create)
        _deep_merge(create_kwargs, settings.create_kwargs)
        # The plan's limits replace DockerSpawner's: NanoCpus (not its cpu_quota from the
        # admin's cpu_limit) and the plan's memory. No auto-remove: a container that exits on
        # its own keeps its logs until the hub removes it (stop, or an undone start says why it
        # exited), and removals are never "in progress" when the next start creates a
        # container of the same name.
        host_config: dict[str, Any] = {
            "binds": self.volume_binds,
            "links": self.links,
            "mounts": self.mount_binds,
        }
        if not self.use_internal_ip:
            host_config["port_bindings"] = {self.port: (self.host_ip,)}
        _deep_merge(host_config, admin_host)
        _deep_merge(
            host_config, {**merge_host_config(admin_host, settings.host_config), "auto_remove": False}
        )
        host_config.setdefault("network_mode", self.network_name)
        self._refuse_engine_socket(host_config)
        await self._wait_removal_finished()
        self.log.debug("Creating %s with host config %s", self.object_name, host_config)
        create_kwargs.setdefault("host_config", {}).update(self.client.create_host_config(**host_config))
        return await self.docker("create_container", **create_kwargs)

    def _refuse_engine_socket(self, host_config: dict[str, Any]) -> None:
        found = engine_socket_sources(
            self.volume_binds, self.mount_binds, host_config, os.environ.get("DOCKER_HOST", "")
        )
        if not found:
            return
        if self.allow_engine_socket:
            self.log.warning(
                "Workspace %s mounts the Docker engine's socket (%s): allowed by config",
                self._log_name,
                ", ".join(found),
            )
            return
        self.log.error(
            "Refused to start %s: the config mounts the Docker engine's socket (%s)",
            self._log_name,
            ", ".join(found),
        )
        raise web.HTTPError(
            500,
            f"{self.user.name}'s workspace was not started: the hub's configuration mounts the Docker "
            f"engine's socket into it ({', '.join(found)}), which would give its user control of every "
            "container and root on the host. Admins: remove that mount, or set "
            "c.MLHubDockerSpawner.allow_engine_socket = True if it is meant.",
        )

    async def _evaluated(self, value: Any) -> dict[str, Any]:
        value = self._eval_if_callable(value)
        if hasattr(value, "__await__"):
            value = await value
        return dict(value or {})

    async def delete_forever(self) -> None:
        """The server is deleted: drop its volume if configured, and the user's network
        once no other workspace of the user uses it. JupyterHub deletes the default server
        only with its account (it refuses to delete it alone): then the account's volumes go
        too, or stay, as ``deleted_user_volumes`` says."""
        await self._wait_container_gone()
        if self.remove_volume_on_delete:
            try:
                self._mlhub_volume = await self.resolve_volume()
            except net.ForeignObjectError:
                self._mlhub_volume = ""
            else:
                await self._remove_volume_and_disk(self.volume_name)
        if not self.name:
            await self._forget_account()
        keep = {self.hub_container} if self.hub_container else set()
        users_containers = await self.docker(
            "containers",
            all=True,
            filters={"label": [f"{L.ORIGIN}={self.hub_name}", f"{L.USER}={self.user.name}"]},
        )
        if users_containers:
            return
        if await net.remove_network_if_unused(self.docker, self.network_name, keep):
            self.log.info("Removed network %s: %s has no workspace left", self.network_name, self.user.name)

    async def _forget_account(self) -> None:
        """The account is being deleted: remove its volumes (``deleted_user_volumes=remove``)
        or log that they are kept. Only this account's (``mlhub.user_created``), never an
        earlier or later account's of that name, another install's or another hub's."""
        active = [s._log_name for s in self.user.spawners.values() if s is not self and s.active]
        if active:
            self.log.warning(
                "%s is being deleted with servers still running (%s); its volumes are left to the "
                "cleanup service's users run",
                self.user.name,
                ", ".join(active),
            )
            return
        found = await self.docker(
            "volumes", filters={"label": [f"{L.ORIGIN}={self.hub_name}", f"{L.USER}={self.user.name}"]}
        )
        for volume in (found or {}).get("Volumes") or []:
            verdict, _why = self._judge(volume.get("Labels"), volume.get("CreatedAt"), server=False)
            if verdict is not Verdict.MINE:
                continue
            name = volume["Name"]
            if self.deleted_user_volumes == "keep":
                self.log.info(
                    "Kept volume %s of deleted account %s (deleted_user_volumes=keep)", name, self.user.name
                )
                continue
            try:
                await self._remove_volume_and_disk(name, reason=f"deleted account {self.user.name}")
            except APIError as exc:
                self.log.warning(
                    "Could not remove volume %s of deleted account %s (%s); the cleanup service's users run retries",
                    name,
                    self.user.name,
                    exc.explanation or exc,
                )

    async def _remove_volume_and_disk(self, name: str, reason: str = "") -> None:
        """Remove the volume *name* and, for a capped one, its disk image."""
        reason = reason or f"deleted server {self._log_name}"
        try:
            found = await self.docker("inspect_volume", name)
        except NotFound:
            found = None
        disk = disk_of_volume(found) if found else None
        if found and await net.remove_volume(self.docker, name):
            self.log.info("Removed volume %s of %s", name, reason)
        if disk is not None:
            await asyncio.to_thread(disk.remove)
            self.log.info("Removed the disk image %s of %s", disk.image, reason)

    async def _wait_removal_finished(self, timeout: float = 15) -> None:
        """A container of this name that the engine is still removing (a leftover just removed,
        or an older auto-removed one) would make the create fail with 409: wait for it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                info = await self.docker("inspect_container", self.object_name)
            except NotFound:
                return
            if info.get("State", {}).get("Status") != "removing":
                return
            await asyncio.sleep(0.2)

    async def _wait_container_gone(self, timeout: float = 15) -> None:
        """Docker removes auto-remove containers shortly after they stop; wait for that."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                await self.docker("inspect_container", self.object_name)
            except NotFound:
                return
            await asyncio.sleep(0.2)
