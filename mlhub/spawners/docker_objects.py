"""Pure builders: validated options -> the Docker API arguments for one workspace.

No I/O here: the spawner calls these and hands the result to DockerSpawner, and tests can
check exactly what would be sent to the engine without starting anything.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from docker.types import DeviceRequest

from mlhub.core.fair_defaults import DEFAULT_CAP_DROP
from mlhub.core.options import WorkspaceOptions

NANO = 1_000_000_000


def nano_cpus(cores: float) -> int:
    """Docker's ``NanoCpus`` for *cores* (``--cpus``)."""
    return int(round(cores * NANO))


def device_requests(options: WorkspaceOptions, driver: str = "nvidia") -> list[DeviceRequest]:
    """``--gpus`` as Docker DeviceRequests (empty when no GPU was asked for)."""
    gpus = options.gpus
    if not gpus.wanted:
        return []
    if gpus.device_ids:
        return [DeviceRequest(driver=driver, device_ids=list(gpus.device_ids), capabilities=[["gpu"]])]
    return [DeviceRequest(driver=driver, count=gpus.count, capabilities=[["gpu"]])]


@dataclass(frozen=True)
class Hardening:
    """Per-workspace bounds that are the admin's, not the user's."""

    pids_limit: int | None = None  # None or 0: no limit
    no_new_privileges: bool = True
    cap_drop: tuple[str, ...] = DEFAULT_CAP_DROP
    storage_size: int | None = None  # --storage-opt size (the container's writable layer)

    def host_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.pids_limit:
            config["pids_limit"] = self.pids_limit
        if self.no_new_privileges:
            config["security_opt"] = ["no-new-privileges:true"]
        if self.cap_drop:
            config["cap_drop"] = list(self.cap_drop)
        if self.storage_size:
            config["storage_opt"] = {"size": str(self.storage_size)}
        return config


def merge_host_config(admin: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Ours over the admin's ``extra_host_config``, except lists of options (security_opt,
    cap_drop), which are joined so the admin's own entries stay."""
    merged = dict(admin)
    for key, value in ours.items():
        if key in ("security_opt", "cap_drop") and isinstance(merged.get(key), list):
            merged[key] = [*merged[key], *[v for v in value if v not in merged[key]]]
        else:
            merged[key] = value
    return merged


@dataclass
class ContainerSettings:
    """What MLHub adds to DockerSpawner's container create call."""

    create_kwargs: dict[str, Any] = field(default_factory=dict)
    host_config: dict[str, Any] = field(default_factory=dict)


def container_settings(
    options: WorkspaceOptions,
    labels: dict[str, str],
    volume_name: str | None,
    mount_path: str,
    gpu_driver: str = "nvidia",
    init: bool = True,
    hardening: Hardening | None = None,
) -> ContainerSettings:
    """Container labels and host config (limits, shm, GPUs, workspace volume, the admin's
    process limit, privileges and capabilities) for *options*."""
    host_config: dict[str, Any] = {"init": True} if init else {}
    host_config.update((hardening or Hardening()).host_config())
    if options.cpu_limit is not None:
        host_config["nano_cpus"] = nano_cpus(options.cpu_limit)
    if options.mem_limit is not None:
        host_config["mem_limit"] = options.mem_limit
    if options.shm_size is not None:
        host_config["shm_size"] = options.shm_size
    requests = device_requests(options, gpu_driver)
    if requests:
        host_config["device_requests"] = requests
    if volume_name and options.is_mount_volume:
        host_config["binds"] = {volume_name: {"bind": mount_path, "mode": "rw"}}
    return ContainerSettings(create_kwargs={"labels": dict(labels)}, host_config=host_config)


#: Where Docker engines put their socket; a workspace that mounts it controls the engine.
ENGINE_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


def _holds_engine_socket(source: str, sockets: tuple[str, ...]) -> bool:
    path = posixpath.normpath(source)
    return path.endswith("docker.sock") or any(
        sock == path or sock.startswith(path.rstrip("/") + "/") for sock in sockets
    )


def engine_socket_sources(
    volume_binds: dict[str, Any], mounts: list[Any], host_config: dict[str, Any], docker_host: str = ""
) -> list[str]:
    """Host paths among a workspace's binds and mounts that are the Docker engine's socket or a
    folder holding it (``/var/run``, ``/``), from DockerSpawner's ``volumes`` and ``mounts`` and
    any ``binds``/``mounts`` in ``extra_host_config``."""
    sockets = ENGINE_SOCKETS + ((docker_host[len("unix://") :],) if docker_host.startswith("unix://") else ())
    sources: list[Any] = list(volume_binds)
    binds = host_config.get("binds") or host_config.get("Binds") or []
    if isinstance(binds, dict):
        sources += list(binds)
    else:
        sources += [bind.split(":", 1)[0] for bind in binds if isinstance(bind, str)]
    for mount in [*mounts, *(host_config.get("mounts") or host_config.get("Mounts") or [])]:
        if isinstance(mount, dict) and mount.get("Type", mount.get("type", "bind")) == "bind":
            sources.append(mount.get("Source") or mount.get("source"))
    return sorted(
        {s for s in sources if isinstance(s, str) and s.startswith("/") and _holds_engine_socket(s, sockets)}
    )
