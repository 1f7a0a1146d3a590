"""The ``/workspace`` volume of a Docker workspace: its settings, the size-capped disk image,
which volume belongs to this account, and removing volumes when servers or accounts go.

A mixin of :class:`mlhub.spawners.docker.MLHubDockerSpawner` (it uses DockerSpawner's ``docker``).
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from docker.errors import APIError, NotFound
from jupyterhub.traitlets import ByteSpecification
from tornado import web
from traitlets import Bool, Dict, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from mlhub.core import labels as L
from mlhub.core.fair_defaults import DEFAULT_WORKSPACE_DISK_LIMIT
from mlhub.core.names import workspace_volume_name
from mlhub.core.ownership import Verdict, moved_aside_name
from mlhub.engines import docker_network as net
from mlhub.engines.workspace_disk import DiskError, WorkspaceDisk, disk_of_volume, unsupported_reason


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


class DockerVolumes(LoggingConfigurable):
    """Per-server ``/workspace`` volumes (a mixin of MLHubDockerSpawner)."""

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

    #: the volume this start resolved (the usual name, or the moved-aside one)
    _mlhub_volume: str = ""

    @property
    def volume_name(self) -> str:
        return self._mlhub_volume or workspace_volume_name(self.hub_name, self.user.name, self.name)

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

    async def delete_forever(self) -> None:
        """The server is deleted: drop its volume if configured, and the user's network
        once no other workspace of the user uses it. JupyterHub deletes the default server
        only with its account (it refuses to delete it alone): then the account's volumes go
        too, or stay, as ``deleted_user_volumes`` says."""
        with self.timed_stop("Deleted"):
            await self._delete_forever()

    async def _delete_forever(self) -> None:
        await self._wait_container_gone()
        with self.stop_step("volume"):  # timed also when the volume is kept
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
        with self.stop_step("network"):
            users_containers = await self.docker(
                "containers",
                all=True,
                filters={"label": [f"{L.ORIGIN}={self.hub_name}", f"{L.USER}={self.user.name}"]},
            )
            if users_containers:
                return
            if await net.remove_network_if_unused(self.docker, self.network_name, keep):
                self.log.info(
                    "Removed network %s: %s has no workspace left", self.network_name, self.user.name
                )

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

    async def _wait_container_gone(self, timeout: float = 15) -> None:
        """Docker removes auto-remove containers shortly after they stop; wait for that."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                await self.docker("inspect_container", self.object_name)
            except NotFound:
                return
            await asyncio.sleep(0.2)
