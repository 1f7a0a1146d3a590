"""The workspace container's create request: the admin's bounds on every workspace, and
``create_object``, where this start's plan meets DockerSpawner (the one seam).

A mixin of :class:`mlhub.spawners.docker.MLHubDockerSpawner`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from docker.errors import NotFound
from jupyterhub.traitlets import ByteSpecification
from tornado import web
from traitlets import Bool, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from mlhub.core.fair_defaults import DEFAULT_CAP_DROP, DEFAULT_PIDS_LIMIT
from mlhub.spawners.docker_objects import (
    Hardening,
    container_settings,
    engine_socket_sources,
    merge_host_config,
)


def _deep_merge(dest: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dest.get(key), dict):
            _deep_merge(dest[key], value)
        else:
            dest[key] = value
    return dest


class DockerContainerRequest(LoggingConfigurable):
    """The container create call from this start's plan (a mixin of MLHubDockerSpawner)."""

    use_init = Bool(
        True,
        config=True,
        help="""Run Docker's init (``--init``) as PID 1 of each workspace, so processes left
        by SSH sessions and terminals are reaped instead of lingering as zombies (the single-user
        server does not reap children it did not start).""",
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

    def hardening(self) -> Hardening:
        return Hardening(
            pids_limit=self.pids_limit or None,
            no_new_privileges=self.no_new_privileges,
            cap_drop=tuple(self.cap_drop),
            storage_size=self.container_disk_limit or None,
        )

    def shown_pids_limit(self) -> int | None:
        return self.pids_limit or None

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
        host_config, burst_labels = self.cpu_burst(host_config, admin_host, (await self.host_limits())[0])
        if burst_labels:
            create_kwargs["labels"] = {**create_kwargs["labels"], **burst_labels}
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
