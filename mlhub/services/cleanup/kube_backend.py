"""The Kubernetes side of cleanup: list this hub's labelled pods, services, PVCs and network
policies in the hub's namespace, and delete one.

Where a user name is not a valid label value, the MLHub Kube spawner keeps the exact value in
an annotation of the same key; annotations win over labels here.
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from mlhub.core.labels import ORIGIN
from mlhub.services.cleanup.model import Resource

# kind -> (API class, list method, delete method)
KINDS: dict[str, tuple[str, str, str]] = {
    "pod": ("CoreV1Api", "list_namespaced_pod", "delete_namespaced_pod"),
    "service": ("CoreV1Api", "list_namespaced_service", "delete_namespaced_service"),
    "pvc": (
        "CoreV1Api",
        "list_namespaced_persistent_volume_claim",
        "delete_namespaced_persistent_volume_claim",
    ),
    "networkpolicy": (
        "NetworkingV1Api",
        "list_namespaced_network_policy",
        "delete_namespaced_network_policy",
    ),
}


class KubeBackend:
    """Lists and deletes this hub's objects through the Kubernetes API."""

    def __init__(self, api_client: client.ApiClient, namespace: str):
        self.api_client = api_client
        self.namespace = namespace

    def _api(self, kind: str) -> Any:
        return getattr(client, KINDS[kind][0])(self.api_client)

    async def list_resources(self, hub_name: str) -> list[Resource]:
        resources = []
        for kind, (_, list_method, _) in KINDS.items():
            result = await getattr(self._api(kind), list_method)(
                self.namespace, label_selector=f"{ORIGIN}={hub_name}"
            )
            for item in result.items:
                meta = item.metadata
                labels = {**(meta.labels or {}), **(meta.annotations or {})}
                created = meta.creation_timestamp.timestamp() if meta.creation_timestamp else 0.0
                phase = getattr(getattr(item, "status", None), "phase", None) if kind == "pod" else None
                resources.append(
                    Resource(
                        kind,
                        meta.name,
                        meta.uid or meta.name,
                        labels,
                        created,
                        phase in ("Pending", "Running"),
                    )
                )
        return resources

    async def remove(self, resource: Resource) -> None:
        _, _, delete_method = KINDS[resource.kind]
        try:
            await getattr(self._api(resource.kind), delete_method)(
                resource.name, self.namespace, propagation_policy="Foreground"
            )
        except ApiException as exc:
            if exc.status == 404:
                return
            raise RuntimeError(f"{resource.kind} {resource.name}: {exc.status} {exc.reason}") from None
