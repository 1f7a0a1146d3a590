"""What the Kubernetes spawner adds to KubeSpawner's pod, and the per-user NetworkPolicy.

Pure functions: options and names in, plain dicts (Kubernetes JSON) out, so every option's
effect is checked against the Kubernetes schemas without a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mlhub.core import labels as L
from mlhub.core.names import safe_slug
from mlhub.core.options import WorkspaceOptions
from mlhub.core.plan import StartPlan

GPU_RESOURCE = "nvidia.com/gpu"
#: Labels that are not names: a user's slug selects their pods (``mlhub.user`` may be an
#: e-mail address, which is no valid label value), the role marks the hub's own pods.
USER_SLUG = L.PREFIX + "user_slug"
ROLE = L.PREFIX + "role"
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")


class KubeOptionsError(ValueError):
    """Options valid in general that Kubernetes cannot honour; the message names the field."""


def is_label_value(value: str) -> bool:
    return bool(_LABEL_VALUE.match(value))


def split_metadata(values: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations): every value is an annotation; valid ones are labels too."""
    return {k: v for k, v in values.items() if is_label_value(v)}, dict(values)


def check_options(options: WorkspaceOptions) -> None:
    """Refuse what a Kubernetes cluster cannot do, before any API call."""
    gpus = options.gpus
    if gpus.device_ids:
        raise KubeOptionsError(
            "gpus: on Kubernetes ask for a number of GPUs; the scheduler picks the devices"
        )
    if gpus.count == -1:
        raise KubeOptionsError("gpus: on Kubernetes 'all' is not possible; ask for a number of GPUs")


def quantity(n_bytes: int) -> str:
    """Bytes as a Kubernetes quantity (exact: Gi/Mi/Ki when divisible, else plain bytes)."""
    for suffix, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n_bytes % size == 0:
            return f"{n_bytes // size}{suffix}"
    return str(n_bytes)


@dataclass
class PodAdditions:
    """What MLHub sets on KubeSpawner for one workspace."""

    cpu_limit: float | None = None
    cpu_guarantee: float | None = None
    mem_limit: int | None = None
    mem_guarantee: int | None = None
    extra_resource_limits: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    pvc: bool = False


def pod_additions(
    options: WorkspaceOptions,
    pvc_name: str,
    mount_path: str,
    request_ratio: float = 1.0,
    gpu_node_selector: dict[str, str] | None = None,
    gpu_tolerations: list[dict[str, Any]] | None = None,
) -> PodAdditions:
    """Limits as limits and requests (requests = limit × *request_ratio*), GPUs, /dev/shm, volume."""
    check_options(options)
    add = PodAdditions()
    if options.cpu_limit is not None:
        add.cpu_limit = options.cpu_limit
        add.cpu_guarantee = round(options.cpu_limit * request_ratio, 3)
    if options.mem_limit is not None:
        add.mem_limit = options.mem_limit
        add.mem_guarantee = int(options.mem_limit * request_ratio)
    if options.gpus.count > 0:
        add.extra_resource_limits[GPU_RESOURCE] = str(options.gpus.count)
        add.node_selector.update(gpu_node_selector or {})
        add.tolerations += list(gpu_tolerations or [])
    if options.shm_size is not None:
        add.volumes.append(
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": quantity(options.shm_size)}}
        )
        add.volume_mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    if options.is_mount_volume:
        add.pvc = True
        add.volumes.append({"name": "workspace", "persistentVolumeClaim": {"claimName": pvc_name}})
        add.volume_mounts.append({"name": "workspace", "mountPath": mount_path})
    return add


def user_selector(hub_name: str, user_name: str) -> dict[str, str]:
    return {L.ORIGIN: hub_name, USER_SLUG: safe_slug(user_name)}


def network_policy(
    hub_name: str, user_name: str, name: str, namespace: str, install_id: str = ""
) -> dict[str, Any]:
    """One user's isolation: their pods talk to each other, the hub and proxy reach them, and
    they reach the hub, DNS and the internet, but no other pod or private address."""
    mine = {"podSelector": {"matchLabels": user_selector(hub_name, user_name)}}
    hub_pods = {
        "podSelector": {
            "matchLabels": {L.ORIGIN: hub_name},
            "matchExpressions": [{"key": ROLE, "operator": "In", "values": ["hub", "proxy"]}],
        }
    }
    owner = L.owner_labels(hub_name, user_name, install_id)
    labels, annotations = split_metadata({**owner, USER_SLUG: safe_slug(user_name)})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "podSelector": {"matchLabels": user_selector(hub_name, user_name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [mine, hub_pods]}],
            "egress": [
                {"to": [mine, hub_pods]},
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}]},
            ],
        },
    }


def plan_volumes(
    plan: StartPlan, pvc_name: str, mount_path: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volume mounts) of *plan*: /dev/shm and the ``/workspace`` PVC."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if plan.shm_size is not None:
        volumes.append(
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": quantity(plan.shm_size)}}
        )
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    if plan.mount_volume:
        volumes.append({"name": "workspace", "persistentVolumeClaim": {"claimName": pvc_name}})
        mounts.append({"name": "workspace", "mountPath": mount_path})
    return volumes, mounts


def patch_pod(
    pod: Any,
    plan: StartPlan,
    pvc_name: str,
    mount_path: str,
    labels: dict[str, str],
    annotations: dict[str, str],
) -> None:
    """Patch KubeSpawner's V1Pod (built from the admin's settings) with *plan*: image,
    limits and requests, GPUs with their node selector and tolerations, /dev/shm, the
    workspace PVC, labels. The plan's values replace the admin's for what it decides
    (cpu, memory, the ``dshm``/``workspace`` volumes); the admin's other entries stay."""
    from kubernetes_asyncio.client.models import V1Toleration, V1Volume, V1VolumeMount
    from kubespawner.utils import get_k8s_model

    check_options(plan.options)
    container = pod.spec.containers[0]
    container.image = plan.image
    resources = container.resources
    limits = {k: v for k, v in (resources.limits or {}).items() if k not in ("cpu", "memory")}
    requests = {k: v for k, v in (resources.requests or {}).items() if k not in ("cpu", "memory")}
    if plan.cpu_limit is not None:
        limits["cpu"] = plan.cpu_limit
    if plan.mem_limit is not None:
        limits["memory"] = plan.mem_limit
    if plan.cpu_guarantee is not None:
        requests["cpu"] = plan.cpu_guarantee
    if plan.mem_guarantee is not None:
        requests["memory"] = plan.mem_guarantee
    limits.update(plan.extra_resource_limits)
    resources.limits = limits or None
    resources.requests = requests or None
    if plan.node_selector:
        pod.spec.node_selector = {**(pod.spec.node_selector or {}), **plan.node_selector}
    if plan.tolerations:
        present = list(pod.spec.tolerations or [])
        for toleration in plan.tolerations:
            model = get_k8s_model(V1Toleration, dict(toleration))
            if model not in present:
                present.append(model)
        pod.spec.tolerations = present
    volumes, mounts = plan_volumes(plan, pvc_name, mount_path)
    ours = ("dshm", "workspace")
    pod.spec.volumes = [v for v in pod.spec.volumes or [] if v.name not in ours] + [
        get_k8s_model(V1Volume, v) for v in volumes
    ] or None
    container.volume_mounts = [m for m in container.volume_mounts or [] if m.name not in ours] + [
        get_k8s_model(V1VolumeMount, m) for m in mounts
    ] or None
    pod.metadata.labels = {**(pod.metadata.labels or {}), **labels}
    pod.metadata.annotations = {**(pod.metadata.annotations or {}), **annotations}
