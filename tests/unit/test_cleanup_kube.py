"""The cleanup service's Kubernetes backend, against a LOCAL FAKE Kubernetes API server.

No cluster can run on these machines. The fake below is a few tornado handlers on loopback
that answer list calls with recorded-style manifests and record every request, so the test
checks the real kubernetes_asyncio client's calls: which objects are listed (by label
selector) and deleted, in which order, and that nothing of another hub is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from kubernetes_asyncio import client
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from mlhub.engines.kube import KubeEngine
from mlhub.services.cleanup.model import HubServer
from mlhub.services.cleanup.planner import plan_orphans
from mlhub.services.cleanup.runner import Cleaner

NS = "mlhub"
PATHS = {
    "pods": f"/api/v1/namespaces/{NS}/pods",
    "services": f"/api/v1/namespaces/{NS}/services",
    "persistentvolumeclaims": f"/api/v1/namespaces/{NS}/persistentvolumeclaims",
    "networkpolicies": f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies",
}


def manifest(
    kind: str, name: str, origin: str, user: str, server: str = "", annotations: dict | None = None
) -> dict:
    return {
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": {
                "mlhub.origin": origin,
                "mlhub.user": user.replace("@", "-"),
                "mlhub.server_name": server,
            },
            "annotations": annotations or {},
        },
    }


class FakeKubeAPI:
    """Records requests; answers lists filtered by the label selector like the API server."""

    def __init__(self, objects: dict[str, list[dict]]):
        self.objects = objects
        self.requests: list[tuple[str, str, str]] = []

    def app(self) -> web.Application:
        fake = self

        class Collection(web.RequestHandler):
            def get(self, plural: str) -> None:
                selector = self.get_argument("labelSelector", "")
                fake.requests.append(("GET", plural, selector))
                key, _, value = selector.partition("=")
                items = [o for o in fake.objects.get(plural, []) if o["metadata"]["labels"].get(key) == value]
                self.write({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items})

        class Item(web.RequestHandler):
            def delete(self, plural: str, name: str) -> None:
                body = json.loads(self.request.body or b"{}")
                policy = self.get_argument("propagationPolicy", None) or body.get("propagationPolicy")
                fake.requests.append(("DELETE", plural, f"{name} {policy}"))
                before = len(fake.objects.get(plural, []))
                fake.objects[plural] = [
                    o for o in fake.objects.get(plural, []) if o["metadata"]["name"] != name
                ]
                if len(fake.objects[plural]) == before:
                    self.set_status(404)
                    self.write({"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
                    return
                self.write({"kind": "Status", "status": "Success"})

        routes = []
        for plural, path in PATHS.items():
            routes.append((path.replace(plural, f"({plural})"), Collection))
            routes.append((path.replace(plural, f"({plural})") + "/([^/]+)", Item))
        return web.Application(routes)


class _Hub:
    """The hub's API as the runner sees it: alice exists, bob@example.org was deleted (unit fake)."""

    async def users(self):
        return [{"name": "alice", "servers": {"": {"ready": True}}}]

    @staticmethod
    def servers_of(users):
        return [HubServer("alice", "", 0, True)]


@contextlib.asynccontextmanager
async def served(fake: FakeKubeAPI) -> AsyncIterator[KubeEngine]:
    """The fake API server on a loopback port, and the cleanup's backend talking to it."""
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(fake.app())
    server.add_sockets(sockets)
    config = client.Configuration(host=f"http://127.0.0.1:{sockets[0].getsockname()[1]}")
    try:
        async with client.ApiClient(config) as api_client:
            yield KubeEngine(NS, api_client=api_client)
    finally:
        server.stop()


def test_kube_backend_lists_by_label_and_deletes_only_orphans():
    objects = {
        "pods": [
            manifest("Pod", "hub1-alice", "hub1", "alice"),
            manifest(
                "Pod",
                "hub1-bob-example-org-1a2b3c4d",
                "hub1",
                "bob@example.org",
                annotations={"mlhub.user": "bob@example.org"},
            ),
            manifest("Pod", "hub2-bob", "hub2", "bob@example.org"),
        ],
        "services": [
            manifest(
                "Service",
                "hub1-bob-example-org-1a2b3c4d",
                "hub1",
                "bob@example.org",
                annotations={"mlhub.user": "bob@example.org"},
            )
        ],
        "persistentvolumeclaims": [
            manifest("PersistentVolumeClaim", "hub1-alice-workspace", "hub1", "alice"),
            manifest(
                "PersistentVolumeClaim",
                "hub1-bob-workspace",
                "hub1",
                "bob@example.org",
                annotations={"mlhub.user": "bob@example.org"},
            ),
        ],
        "networkpolicies": [
            manifest(
                "NetworkPolicy",
                "hub1-bob",
                "hub1",
                "bob@example.org",
                annotations={"mlhub.user": "bob@example.org"},
            )
        ],
    }
    fake = FakeKubeAPI(objects)

    async def scenario():
        async with served(fake) as backend:
            resources = await backend.list_resources("hub1")
            dry = plan_orphans("hub1", {"alice"}, _Hub.servers_of(None), resources)
            report = await Cleaner("hub1", _Hub(), backend).run("users")
        return resources, dry, report

    resources, dry, report = asyncio.run(scenario())
    # lists: one per kind, always filtered by this hub's origin label
    lists = [r for r in fake.requests if r[0] == "GET"]
    assert {(r[1], r[2]) for r in lists} == {(p, "mlhub.origin=hub1") for p in PATHS}
    assert {r.name for r in resources} == {
        "hub1-alice",
        "hub1-bob-example-org-1a2b3c4d",
        "hub1-alice-workspace",
        "hub1-bob-workspace",
        "hub1-bob",
    }
    # the exact user name comes from the annotation
    assert {r.user for r in resources if "bob" in r.name} == {"bob@example.org"}
    # deletes: bob's pod and service first, then his PVC, then his network policy; never alice's or hub2's
    deletes = [(r[1], r[2]) for r in fake.requests if r[0] == "DELETE"]
    assert deletes == [
        ("pods", "hub1-bob-example-org-1a2b3c4d Foreground"),
        ("services", "hub1-bob-example-org-1a2b3c4d Foreground"),
        ("persistentvolumeclaims", "hub1-bob-workspace Foreground"),
        ("networkpolicies", "hub1-bob Foreground"),
    ]
    assert report.errors == [] and len(report.removed) == 4
    assert [o["metadata"]["name"] for o in fake.objects["pods"]] == ["hub1-alice", "hub2-bob"]
    assert [o["metadata"]["name"] for o in fake.objects["persistentvolumeclaims"]] == ["hub1-alice-workspace"]


def test_kube_cleanup_leaves_another_installs_objects():
    """Same hub name, another install (``mlhub.install``): its pods and PVCs stay; objects made
    before install ids are reported, not removed; this install's orphans go."""

    def labelled(kind, name, install):
        obj = manifest(kind, name, "hub1", "bob")
        if install:
            obj["metadata"]["labels"]["mlhub.install"] = install
        return obj

    objects = {
        "pods": [labelled("Pod", "hub1-bob", "bbbb2222")],
        "services": [],
        "persistentvolumeclaims": [
            labelled("PersistentVolumeClaim", "hub1-bob-workspace", "aaaa1111"),
            labelled("PersistentVolumeClaim", "hub1-bob--old-workspace", None),
        ],
        "networkpolicies": [labelled("NetworkPolicy", "hub1-bob", "bbbb2222")],
    }
    fake = FakeKubeAPI(objects)

    async def scenario():
        async with served(fake) as backend:
            return await Cleaner("hub1", _Hub(), backend, install_id="aaaa1111").run("users")

    report = asyncio.run(scenario())
    assert [(r[1], r[2]) for r in fake.requests if r[0] == "DELETE"] == [
        ("persistentvolumeclaims", "hub1-bob-workspace Foreground")
    ]
    assert {a["name"]: a["reason"] for a in report.kept}["hub1-bob--old-workspace"].startswith(
        "no mlhub.install label"
    )
    assert [o["metadata"]["name"] for o in fake.objects["pods"]] == ["hub1-bob"]
