"""The per-start plan: validated options + the admin's configuration -> one immutable plan.

``make_plan`` is pure: it reads its arguments and returns a new :class:`StartPlan`; it writes
nothing, so the admin's configuration (the spawner's traits) never changes because of one
start's options, and the same options give an equal plan however often they are applied.
Each engine translates the plan into its own request at one seam
(``mlhub.spawners.docker_objects`` / ``mlhub.spawners.kube_objects``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mlhub.core import labels as L
from mlhub.core.options import WorkspaceOptions
from mlhub.core.parsing import GpuRequest

GPU_RESOURCE = "nvidia.com/gpu"

#: Environment variables the plan decides (the engine's own values for them are dropped).
LIMIT_ENV = ("CPU_LIMIT", "MEM_LIMIT")
GUARANTEE_ENV = ("CPU_GUARANTEE", "MEM_GUARANTEE")


def _frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class AdminConfig:
    """The admin's values a plan needs; a snapshot, never written back."""

    hub_name: str
    install_id: str = ""
    #: Kubernetes: requests = limits x this; None (Docker): no guarantees
    request_ratio: float | None = None
    gpu_node_selector: Mapping[str, str] = field(default_factory=dict)
    gpu_tolerations: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Workspace:
    """Which workspace this start is for, and who made it (from its state)."""

    user: str
    server: str = ""
    created_by: str = ""
    expiration_timestamp: int = 0
    account_created: int | None = None


@dataclass(frozen=True)
class StartPlan:
    """Everything one start of one workspace asks of the engine."""

    options: WorkspaceOptions
    image: str
    #: the user's ``env`` option; the engine's own variables and :attr:`hub_env` win over it
    user_env: Mapping[str, str]
    #: variables the hub sets from the plan (they win over everything)
    hub_env: Mapping[str, str]
    #: variables the engine may set from the admin's traits that the plan decides instead
    replaced_env: tuple[str, ...]
    labels: Mapping[str, str]
    cpu_limit: float | None
    mem_limit: int | None
    cpu_guarantee: float | None
    mem_guarantee: int | None
    gpus: GpuRequest
    shm_size: int | None
    mount_volume: bool
    #: Kubernetes: extra resource limits, node selector and tolerations this start adds
    extra_resource_limits: Mapping[str, str]
    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, Any], ...]

    def environment(self, engine_env: Mapping[str, str]) -> dict[str, str]:
        """The workspace's environment: the user's, then the engine's (without the variables
        the plan decides), then the plan's."""
        env = dict(self.user_env)
        env.update({k: v for k, v in engine_env.items() if k not in self.replaced_env})
        env.update(self.hub_env)
        if "JUPYTER_IMAGE" in engine_env:  # KubeSpawner's second name for it
            env["JUPYTER_IMAGE"] = self.image
        return env


def make_plan(options: WorkspaceOptions, admin: AdminConfig, workspace: Workspace) -> StartPlan:
    """The plan for starting *workspace* with validated *options* under *admin*'s configuration."""
    ratio = admin.request_ratio
    cpu_guarantee = (
        round(options.cpu_limit * ratio, 3) if ratio is not None and options.cpu_limit is not None else None
    )
    mem_guarantee = (
        int(options.mem_limit * ratio) if ratio is not None and options.mem_limit is not None else None
    )
    hub_env: dict[str, str] = {"JUPYTER_IMAGE_SPEC": options.image}
    if options.cpu_limit:
        hub_env["CPU_LIMIT"] = f"{options.cpu_limit:g}"
    if options.mem_limit:
        hub_env["MEM_LIMIT"] = str(options.mem_limit)
    if cpu_guarantee:
        hub_env["CPU_GUARANTEE"] = str(cpu_guarantee)
    if mem_guarantee:
        hub_env["MEM_GUARANTEE"] = str(mem_guarantee)
    hub_env["MLHUB_EXPIRATION_TIMESTAMP"] = str(workspace.expiration_timestamp)
    hub_env["MLHUB_HUB_NAME"] = admin.hub_name
    gpu_count = options.gpus.count if options.gpus.count > 0 and not options.gpus.device_ids else 0
    labels = L.workspace_labels(
        admin.hub_name,
        workspace.user,
        workspace.server,
        workspace.created_by,
        options,
        workspace.expiration_timestamp,
        admin.install_id,
        workspace.account_created,
    )
    return StartPlan(
        options=options,
        image=options.image,
        user_env=_frozen(options.env),
        hub_env=_frozen(hub_env),
        replaced_env=LIMIT_ENV + (GUARANTEE_ENV if ratio is not None else ()),
        labels=_frozen(labels),
        cpu_limit=options.cpu_limit,
        mem_limit=options.mem_limit,
        cpu_guarantee=cpu_guarantee,
        mem_guarantee=mem_guarantee,
        gpus=options.gpus,
        shm_size=options.shm_size,
        mount_volume=options.is_mount_volume,
        extra_resource_limits=_frozen({GPU_RESOURCE: str(gpu_count)} if gpu_count else {}),
        node_selector=_frozen(admin.gpu_node_selector if gpu_count else {}),
        tolerations=tuple(_frozen(t) for t in admin.gpu_tolerations) if gpu_count else (),
    )
