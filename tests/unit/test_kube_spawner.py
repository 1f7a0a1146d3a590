"""MLHubKubeSpawner: the manifests it would send, validated against the Kubernetes schemas.

No cluster can run on these machines. The spawner's Kubernetes client talks to a LOCAL FAKE
API server (a few tornado handlers on loopback that record requests), so the tests check what
the real kubernetes_asyncio client would send, and that refused options send nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets.config import Config

from mlhub.core.names import safe_slug
from mlhub.spawners.kube_objects import GPU_RESOURCE, USER_SLUG

K8S_VERSION = "1.33"
NS = "mlhub-test"


class FakeKubeAPI:
    def __init__(self):
        self.requests: list[tuple[str, str, dict]] = []
        self.existing: set[str] = set()
        #: GET answers by path (anything else: 200 with an empty body, or 404 if listed in missing)
        self.objects: dict[str, dict] = {}
        self.missing: set[str] = set()

    def app(self) -> web.Application:
        fake = self

        class Any_(web.RequestHandler):
            def _record(self, method: str) -> None:
                body = json.loads(self.request.body or b"{}")
                fake.requests.append((method, self.request.path, body))
                name = (body.get("metadata") or {}).get("name", "")
                if method == "POST" and name in fake.existing:
                    self.set_status(409)
                    self.write(
                        {"kind": "Status", "status": "Failure", "reason": "AlreadyExists", "code": 409}
                    )
                    return
                fake.existing.add(name)
                self.set_status(201 if method == "POST" else 200)
                self.write(body or {"kind": "List", "items": [], "metadata": {}})

            def get(self, _path: str) -> None:
                path = self.request.path
                if path in fake.objects or path in fake.missing:
                    fake.requests.append(("GET", path, {}))
                    if path in fake.missing:
                        self.set_status(404)
                        self.write({"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
                    else:
                        self.write(fake.objects[path])
                    return
                self._record("GET")

            def post(self, _path: str) -> None:
                self._record("POST")

            def delete(self, _path: str) -> None:
                self._record("DELETE")

        return web.Application([(r"/(.*)", Any_)])


@pytest.fixture(scope="module")
def fake_api(tmp_path_factory, monkeypatch_module):
    fake = FakeKubeAPI()
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                "contexts": [
                    {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": NS}}
                ],
            }
        )
    )
    # kubernetes_asyncio reads $KUBECONFIG once, at import
    monkeypatch_module.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch_module.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    fake.sockets, fake.port = sockets, port
    return fake


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def run_with_api(fake: FakeKubeAPI, coro_factory):
    """Run a coroutine with the fake API server serving on the same loop."""

    async def main():
        server = HTTPServer(fake.app())
        server.add_sockets(fake.sockets or bind_sockets(fake.port, "127.0.0.1"))
        fake.sockets = None  # HTTPServer.stop closes them; the next run binds the port again
        try:
            return await coro_factory()
        finally:
            server.stop()

    return asyncio.run(main())


def make_spawner(user_name: str = "alice", server: str = "gpu", **config):
    from mlhub.spawners.kube import MLHubKubeSpawner

    c = Config()
    c.MLHubSpawner.hub_name = "kubehub"
    c.MLHubSpawner.max_days_to_live = 30
    c.KubeSpawner.namespace = NS
    c.KubeSpawner.image = "mlhub/workspace:latest"
    c.MLHubKubeSpawner.allowed_images = [
        "mlhub/workspace:latest",
        "quay.io/jupyter/scipy-notebook:2025-01-01",
    ]
    c.MLHubKubeSpawner.gpu_node_selector = {"accelerator": "nvidia"}
    c.MLHubKubeSpawner.gpu_tolerations = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    c.MLHubKubeSpawner.max_cpu_limit = 8
    c.MLHubKubeSpawner.max_mem_limit = 64 << 30
    c.MLHubKubeSpawner.max_gpus = 4
    for key, value in config.items():
        setattr(c.MLHubKubeSpawner, key, value)
    user = SimpleNamespace(
        name=user_name, admin=False, url=f"/user/{user_name}/", id=1, escaped_name=user_name
    )
    hub = SimpleNamespace(
        public_host="", url="http://hub:8081/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api"
    )
    orm_spawner = SimpleNamespace(name=server, user_options={}, display_name=None, server=None)
    spawner = MLHubKubeSpawner(_mock=True, user=user, hub=hub, orm_spawner=orm_spawner, config=c)
    return spawner


def serialize(obj) -> dict:
    return ApiClient().sanitize_for_serialization(obj)


def validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


async def _manifests(user: str, server: str, options: dict, **config):
    spawner = make_spawner(user, server, **config)
    await spawner.mlhub_apply_user_options(options)
    pod = serialize(await spawner.get_pod_manifest())
    pvc = serialize(spawner.get_pvc_manifest()) if spawner.storage_pvc_ensure else None
    return spawner, pod, pvc


def manifests(fake, user="alice", server="gpu", options=None, **config):
    return run_with_api(fake, lambda: _manifests(user, server, options or {}, **config))


def container(pod: dict) -> dict:
    return pod["spec"]["containers"][0]


def test_every_option_lands_in_a_valid_pod(fake_api):
    options = {
        "image": "quay.io/jupyter/scipy-notebook:2025-01-01",
        "cpu_limit": 1.5,
        "mem_limit": "2g",
        "gpus": "2",
        "shm_size": "1g",
        "env": "PROJECT=x",
        "is_mount_volume": True,
        "days_to_live": 2,
    }
    before = time.time()
    spawner, pod, pvc = manifests(fake_api, options=options)
    validate(pod)
    validate(pvc)
    c = container(pod)
    assert c["image"] == options["image"]
    assert c["resources"]["limits"] == {"cpu": 1.5, "memory": 2 << 30, GPU_RESOURCE: "2"}
    assert c["resources"]["requests"] == {"cpu": 1.5, "memory": 2 << 30}
    assert pod["spec"]["nodeSelector"] == {"accelerator": "nvidia"}
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    assert (
        volumes["workspace"]["persistentVolumeClaim"]["claimName"]
        == spawner.pvc_name
        == pvc["metadata"]["name"]
    )
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["dshm"] == "/dev/shm" and mounts["workspace"] == "/workspace"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["PROJECT"] == "x" and env["CPU_LIMIT"] == "1.5"
    labels = pod["metadata"]["labels"]
    assert labels["mlhub.origin"] == "kubehub" and labels["mlhub.user"] == "alice"
    assert labels["mlhub.server_name"] == "gpu" and labels[USER_SLUG] == safe_slug("alice")
    expiry = int(labels["mlhub.expiration_timestamp_seconds"])
    assert before + 2 * 86400 - 5 <= expiry <= time.time() + 2 * 86400 + 5
    assert spawner.get_state()["mlhub"]["expiration_timestamp"] == expiry
    assert pvc["metadata"]["labels"]["mlhub.origin"] == "kubehub"
    assert pod["metadata"]["name"] == "kubehub-alice--gpu"
    assert fake_api.requests == []  # building manifests calls nothing


def test_defaults_and_no_volume(fake_api):
    spawner, pod, pvc = manifests(fake_api, server="", options={"is_mount_volume": False})
    validate(pod)
    assert pvc is None and not spawner.storage_pvc_ensure
    c = container(pod)
    # fair defaults from the admin's maximum (8 cores, 64g): 1 core, 2 GiB (was: no limits)
    assert c["resources"]["limits"] == {"cpu": 1.0, "memory": 2 << 30}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"NET_RAW", "MKNOD", "SETFCAP"} <= set(c["securityContext"]["capabilities"]["drop"])
    assert "workspace" not in {v["name"] for v in pod["spec"].get("volumes") or []}
    assert "nodeSelector" not in pod["spec"]  # no GPU: no GPU node selector


def test_requests_follow_the_ratio(fake_api):
    _, pod, _ = manifests(fake_api, options={"cpu_limit": 2, "mem_limit": "4g"}, resource_request_ratio=0.25)
    validate(pod)
    assert container(pod)["resources"]["requests"] == {"cpu": 0.5, "memory": 1 << 30}


def test_user_names_that_are_no_label_values_go_to_annotations(fake_api):
    user = "first.last+ml@example.org"
    _, pod, pvc = manifests(fake_api, user=user, server="box", options={})
    validate(pod)
    validate(pvc)
    assert "mlhub.user" not in pod["metadata"]["labels"]
    assert pod["metadata"]["annotations"]["mlhub.user"] == user
    assert pod["metadata"]["labels"][USER_SLUG] == safe_slug(user)
    assert pvc["metadata"]["annotations"]["mlhub.user"] == user


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"gpus": "all"}, "gpus: 'all' is not allowed"),
        ({"gpus": "0,2"}, "gpus: on Kubernetes ask for a number"),
        ({"cpu_limit": 64}, "cpu_limit"),
        ({"mem_limit": "lots"}, "mem_limit"),
        ({"image": "evil/image"}, "image"),
        ({"days_to_live": 90}, "days_to_live"),
    ],
)
def test_bad_options_are_refused_before_any_api_call(fake_api, options, field):
    from tornado.web import HTTPError

    async def attempt():
        spawner = make_spawner()
        with pytest.raises(HTTPError) as refused:
            await spawner.mlhub_apply_user_options(options)
        return spawner, refused.value

    fake_api.requests.clear()
    spawner, error = run_with_api(fake_api, attempt)
    assert error.status_code == 400 and field in error.log_message
    assert spawner.mlhub_meta is None  # nothing changed
    assert fake_api.requests == []


def test_all_gpus_is_refused_on_kubernetes_even_without_a_gpu_limit(fake_api):
    from tornado.web import HTTPError

    async def attempt():
        spawner = make_spawner(max_gpus=None)
        with pytest.raises(HTTPError) as refused:
            await spawner.mlhub_apply_user_options({"gpus": "all"})
        return refused.value

    assert "gpus: on Kubernetes 'all' is not possible" in run_with_api(fake_api, attempt).log_message


def test_network_policy_isolates_each_user(fake_api):
    async def create_twice():
        spawner = make_spawner("bob", "")
        await spawner.mlhub_apply_user_options({})
        await spawner.ensure_network_policy()
        await spawner.ensure_network_policy()  # the second finds it there (409) and is fine
        return spawner

    fake_api.requests.clear()
    spawner = run_with_api(fake_api, create_twice)
    posts = [r for r in fake_api.requests if r[0] == "POST"]
    assert [p[1] for p in posts] == [f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies"] * 2
    policy = posts[0][2]
    validate(policy)
    assert policy == spawner.network_policy_manifest()
    mine = {"mlhub.origin": "kubehub", USER_SLUG: safe_slug("bob")}
    assert policy["spec"]["podSelector"]["matchLabels"] == mine
    sources = policy["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": mine}} in sources
    hub_source = next(s for s in sources if "matchExpressions" in s["podSelector"])
    assert hub_source["podSelector"]["matchExpressions"][0]["values"] == ["hub", "proxy"]
    internet = policy["spec"]["egress"][2]["to"][0]["ipBlock"]
    assert internet["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in internet["except"]


def test_an_earlier_accounts_pvc_is_never_mounted(fake_api):
    """A PVC under the usual name made for an earlier account named carl (another
    ``mlhub.user_created``) is left alone; the current carl gets ``<usual>-<account created>``."""
    from datetime import datetime, timezone

    usual = "kubehub-carl-workspace"
    path = f"/api/v1/namespaces/{NS}/persistentvolumeclaims/"
    labels = {
        "mlhub.origin": "kubehub",
        "mlhub.user": "carl",
        "mlhub.server_name": "",
        "mlhub.user_created": "1000",
    }
    fake_api.objects[path + usual] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": usual, "namespace": NS, "labels": labels},
    }
    fake_api.missing.add(path + usual + "-2000")

    async def resolve(created: int):
        spawner = make_spawner("carl", "", install_id="abcd1234")
        spawner.user.created = datetime.fromtimestamp(created, timezone.utc)
        await spawner.mlhub_apply_user_options({})
        await spawner.resolve_pvc()
        return (
            spawner.pvc_name,
            serialize(await spawner.get_pod_manifest()),
            serialize(spawner.get_pvc_manifest()),
        )

    name, pod, pvc = run_with_api(fake_api, lambda: resolve(2000))
    assert name == usual + "-2000" and pvc["metadata"]["name"] == name
    validate(pvc)
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == [name]
    for manifest in (pod, pvc):
        assert manifest["metadata"]["labels"]["mlhub.install"] == "abcd1234"
        assert manifest["metadata"]["labels"]["mlhub.user_created"] == "2000"
    # the account that made it keeps it
    name, _pod, _pvc = run_with_api(fake_api, lambda: resolve(1000))
    assert name == usual


def test_helm_workspace_values_land_in_the_pod(fake_api):
    """workspaces.imagePullSecrets / extraVolumes / extraVolumeMounts, as mlhub/hub/helm_values.py
    puts them in the config, next to MLHub's own workspace volume and /dev/shm."""
    from mlhub.hub.helm_values import apply_values, parse_values

    c = Config()
    apply_values(
        c,
        parse_values(
            {
                "workspaces": {
                    "imagePullSecrets": ["registry-creds"],
                    "extraVolumes": [
                        {"name": "datasets", "persistentVolumeClaim": {"claimName": "datasets"}}
                    ],
                    "extraVolumeMounts": [{"name": "datasets", "mountPath": "/data", "readOnly": True}],
                }
            }
        ),
        log=lambda _: None,
    )
    _, pod, _ = manifests(
        fake_api, options={"shm_size": "1g", "is_mount_volume": True}, **dict(c.KubeSpawner)
    )
    validate(pod)
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-creds"}]
    assert {v["name"] for v in pod["spec"]["volumes"]} == {"datasets", "dshm", "workspace"}
    mounts = {m["name"]: m for m in container(pod)["volumeMounts"]}
    assert mounts["datasets"] == {"name": "datasets", "mountPath": "/data", "readOnly": True}
    assert mounts["workspace"]["mountPath"] == "/workspace" and mounts["dshm"]["mountPath"] == "/dev/shm"


def _admin_settings(spawner) -> dict:
    # repr: a deep, comparable snapshot (some settings are callables)
    return {name: repr(getattr(spawner, name)) for name in sorted(spawner.traits(config=True))}


def test_one_spawner_gpus_two_two_then_none(fake_api):
    """Issue 20: one spawner object given gpus=2, gpus=2, then gpus="" asked for 2 GPUs at the
    end and carried the GPU toleration twice; options now go into a per-start plan."""
    toleration = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}

    async def sequence():
        spawner = make_spawner()
        admin = _admin_settings(spawner)
        pods = []
        for gpus in ("2", "2", ""):
            await spawner.mlhub_apply_user_options({"gpus": gpus})
            pods.append(serialize(await spawner.get_pod_manifest()))
            assert _admin_settings(spawner) == admin  # no trait changed by this start
        return pods

    first, second, last = run_with_api(fake_api, sequence)
    for pod in (first, second, last):
        validate(pod)
    assert first["spec"] == second["spec"]
    assert container(second)["resources"]["limits"][GPU_RESOURCE] == "2"
    assert second["spec"]["tolerations"].count(toleration) == 1
    assert second["spec"]["nodeSelector"] == {"accelerator": "nvidia"}
    assert GPU_RESOURCE not in container(last)["resources"]["limits"]
    assert toleration not in (last["spec"].get("tolerations") or [])
    assert "nodeSelector" not in last["spec"]


def test_admin_volumes_and_labels_stay_with_the_plan(fake_api):
    """The admin's own volumes, tolerations and labels are kept; the plan adds its own."""
    admin_volume = {"name": "data", "emptyDir": {}}
    admin_toleration = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    _, pod, _ = manifests(
        fake_api,
        options={"shm_size": "256m", "gpus": "1"},
        volumes=[admin_volume],
        volume_mounts=[{"name": "data", "mountPath": "/data"}],
        tolerations=[admin_toleration],
        extra_labels={"team": "ml"},
    )
    validate(pod)
    names = [v["name"] for v in pod["spec"]["volumes"]]
    assert names.count("data") == 1 and names.count("dshm") == 1 and names.count("workspace") == 1
    assert admin_toleration in pod["spec"]["tolerations"]
    assert pod["metadata"]["labels"]["team"] == "ml" and pod["metadata"]["labels"]["mlhub.user"] == "alice"
