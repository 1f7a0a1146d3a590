"""MLHub's Kubernetes spawner: KubeSpawner plus MLHub's options, limits, labels and isolation.

Entry point ``mlhub-kubernetes``: ``c.JupyterHub.spawner_class = "mlhub-kubernetes"``.
Options are validated by the same code as on Docker (``MLHubSpawner``); what only Kubernetes
refuses (GPU device ids, "all" GPUs) is refused right after, still before any API call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from tornado import web
from traitlets import Bool, Dict, Float, List, Unicode, default

from mlhub.core.fair_defaults import DEFAULT_CAP_DROP
from mlhub.core.names import safe_slug, user_network_name, workspace_name, workspace_volume_name
from mlhub.core.options import WorkspaceOptions
from mlhub.core.ownership import Verdict, judge, moved_aside_name
from mlhub.core.plan import AdminConfig
from mlhub.spawners import kube_objects as K
from mlhub.spawners.base import MLHubSpawner


def _escape_braces(value: str) -> str:
    """KubeSpawner expands ``{username}`` in labels; user-typed braces must stay literal."""
    return value.replace("{", "{{").replace("}", "}}")


class MLHubKubeSpawner(MLHubSpawner, KubeSpawner):
    """One workspace = one pod (plus a PVC for ``/workspace``), with MLHub's labels."""

    allowed_images = List(
        Unicode(),
        config=True,
        help="""Images users may choose in the options form and API (the default image is always
        allowed). Empty: only the default image (``KubeSpawner.image``).""",
    )
    resource_request_ratio = Float(
        1.0,
        min=0.01,
        max=1.0,
        config=True,
        help="""Requests as a share of the limits: CPU and memory requests are the workspace's
        limits times this (1.0: guaranteed, the scheduler reserves the full limit).""",
    )
    gpu_node_selector = Dict(
        {},
        config=True,
        help="Node selector added to pods that ask for GPUs, e.g. ``{'accelerator': 'nvidia'}``.",
    )
    gpu_tolerations = List(
        Dict(),
        config=True,
        help="""Tolerations added to pods that ask for GPUs, e.g. ``[{'key': 'nvidia.com/gpu',
        'operator': 'Exists', 'effect': 'NoSchedule'}]``.""",
    )
    network_policy_enabled = Bool(
        True,
        config=True,
        help="""Create a NetworkPolicy per user that isolates their pods from other users' pods
        and private addresses (switch off only on clusters without a policy controller).""",
    )

    @default("pod_name_template")
    def _default_pod_name_template(self) -> str:
        return _escape_braces(workspace_name(self.hub_name, self.user.name, self.name))

    @default("pvc_name_template")
    def _default_pvc_name_template(self) -> str:
        return _escape_braces(workspace_volume_name(self.hub_name, self.user.name, self.name))

    @default("delete_pvc")
    def _default_delete_pvc(self) -> bool:
        # as on Docker: deleting a server keeps its volume; the cleanup service removes orphans
        return False

    @default("container_security_context")
    def _default_container_security_context(self) -> dict[str, Any]:
        # as on Docker: no new privileges (KubeSpawner's allow_privilege_escalation=False sets
        # allowPrivilegeEscalation) and the same capabilities dropped; the process limit is
        # the kubelet's podPidsLimit, outside the pod spec
        return {"capabilities": {"drop": list(DEFAULT_CAP_DROP)}}

    @default("storage_capacity")
    def _default_storage_capacity(self) -> str:
        return "10Gi"

    # --- limits and options -------------------------------------------------------------

    def default_image(self) -> str:
        return self.image

    def allowed_image_map(self) -> dict[str, str]:
        images = [self.image, *[i for i in self.allowed_images if i != self.image]]
        return {image: image for image in images}

    def check_engine_options(self, options: WorkspaceOptions) -> None:
        try:
            K.check_options(options)
        except K.KubeOptionsError as exc:
            raise web.HTTPError(400, f"Invalid workspace options: {exc}", reason="Invalid options") from None

    def plan_admin_config(self) -> AdminConfig:
        return AdminConfig(
            hub_name=self.hub_name,
            install_id=self.install_id,
            request_ratio=self.resource_request_ratio,
            gpu_node_selector=dict(self.gpu_node_selector),
            gpu_tolerations=tuple(self.gpu_tolerations),
        )

    # --- the one seam: the plan patches KubeSpawner's pod and PVC -------------------------

    @property
    def storage_pvc_ensure(self) -> bool:  # type: ignore[override]
        """MLHub decides it per start: a PVC exactly when the plan mounts ``/workspace``."""
        return self.mlhub_plan is not None and self.mlhub_plan.mount_volume

    def _plan_metadata(self) -> tuple[dict[str, str], dict[str, str]]:
        assert self.mlhub_plan is not None
        return K.split_metadata({**self.mlhub_plan.labels, K.USER_SLUG: safe_slug(self.user.name)})

    async def get_pod_manifest(self) -> Any:
        """KubeSpawner's pod from the admin's settings, patched with this start's plan."""
        plan = await self.ensure_plan()
        pod = await super().get_pod_manifest()
        labels, annotations = self._plan_metadata()
        K.patch_pod(pod, plan, self.pvc_name, self.workspace_mount_path, labels, annotations)
        return pod

    def get_pvc_manifest(self) -> Any:
        pvc = super().get_pvc_manifest()
        if self.mlhub_plan is not None:
            labels, annotations = self._plan_metadata()
            pvc.metadata.labels = {**(pvc.metadata.labels or {}), **labels}
            pvc.metadata.annotations = {**(pvc.metadata.annotations or {}), **annotations}
        return pvc

    async def load_user_options(self) -> None:
        # MLHub's options were applied by apply_user_options; KubeSpawner's profiles are not used.
        return None

    # --- isolation ----------------------------------------------------------------------

    @property
    def network_policy_name(self) -> str:
        return user_network_name(self.hub_name, self.user.name)

    def network_policy_manifest(self) -> dict[str, Any]:
        return K.network_policy(
            self.hub_name, self.user.name, self.network_policy_name, self.namespace, self.install_id
        )

    async def ensure_network_policy(self) -> None:
        """Create the user's NetworkPolicy if it is not there yet (shared by their servers)."""
        if not self.network_policy_enabled:
            return
        from kubespawner.clients import shared_client

        api = shared_client("NetworkingV1Api")
        try:
            await asyncio.wait_for(
                api.create_namespaced_network_policy(self.namespace, self.network_policy_manifest()),
                self.k8s_api_request_timeout,
            )
            self.log.info(
                "Created NetworkPolicy %s isolating %s's pods", self.network_policy_name, self.user.name
            )
        except ApiException as exc:
            if exc.status != 409:
                raise

    # --- ownership ----------------------------------------------------------------------

    async def _read_pvc(self, name: str) -> Any:
        try:
            return await asyncio.wait_for(
                self.api.read_namespaced_persistent_volume_claim(name, self.namespace),
                self.k8s_api_request_timeout,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _judge_pvc(self, pvc: Any) -> tuple[Verdict, str]:
        meta = pvc.metadata
        labels = {**(meta.labels or {}), **(meta.annotations or {})}
        created = meta.creation_timestamp.timestamp() if meta.creation_timestamp else None
        return judge(
            labels, self.hub_name, self.user.name, self.install_id, self.account_created, created, self.name
        )

    async def resolve_pvc(self) -> None:
        """As on Docker: when an earlier account with this user name left its PVC under the
        usual name, this account's PVC is ``<usual>-<account created>``; the old one is never
        mounted."""
        created = self.account_created
        if not self.storage_pvc_ensure or created is None or self.pvc_name.endswith(f"-{created}"):
            return
        aside = moved_aside_name(self.pvc_name, created)
        found = await self._read_pvc(aside)
        if found is None or self._judge_pvc(found)[0] is not Verdict.MINE:
            found = await self._read_pvc(self.pvc_name)
            if found is None:
                return
            verdict, why = self._judge_pvc(found)
            if verdict is not Verdict.EARLIER_ACCOUNT:
                return
            self.log.warning(
                "PVC %s was %s; not mounting it for %s: using %s", self.pvc_name, why, self.user.name, aside
            )
        self.pvc_name = aside

    async def _start(self) -> Any:
        """KubeSpawner's start, timed: ``volume`` (the PVC to use), ``network`` (the network
        policy), ``start`` (KubeSpawner's own: PVC, pod, until it runs) and ``options``."""
        clock = self.start_clock()
        try:
            with clock.step("volume"):
                await self.resolve_pvc()
            with clock.step("network"):
                await self.ensure_network_policy()
            with clock.step("start"):
                result = await super()._start()
        except BaseException:
            self.finish_start_clock(ok=False)
            raise
        self.finish_start_clock(ok=True)
        return result

    async def stop(self, now: bool = False) -> None:
        """KubeSpawner's stop (pod deletion until it is gone), timed as the ``stop`` step."""
        with self.timed_stop("Stopped"), self.stop_step("stop"):
            await super().stop(now=now)
