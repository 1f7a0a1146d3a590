"""The Helm chart, rendered by the real Helm v4 engine (helm-python-sdk) and every manifest
validated against the Kubernetes schemas (kubernetes-validate). No cluster needed."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helm_python import Chart, lint

CHART = Path(__file__).resolve().parents[2] / "helm" / "mlhub"
EXAMPLES = sorted((CHART.parent / "examples").glob("*.yaml"))
K8S_VERSION = "1.33"
RELEASE, NAMESPACE = "demo", "ml"
FULL = "demo-mlhub"


def render(values: dict | None = None) -> list[dict]:
    out = Chart.load(CHART).render(values=values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path, text in out.items():
        if path.endswith(".txt"):
            continue
        docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env_of(deployment: dict) -> dict[str, dict]:
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def example(name: str) -> dict:
    return yaml.safe_load((CHART.parent / "examples" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("values_file", [None, *EXAMPLES], ids=lambda p: p.stem if p else "defaults")
def test_renders_lints_and_validates(values_file):
    values = yaml.safe_load(values_file.read_text()) if values_file else {}
    report = lint(CHART, values, strict=False)
    assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 3], report
    docs = render(values)
    assert {"Deployment", "Service", "Secret"} <= {d["kind"] for d in docs}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    # every Service selects the pods of a Deployment in the same render
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in by_kind(docs, "Deployment").values()]
    for service in by_kind(docs, "Service").values():
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pods), service["metadata"]["name"]
    # every secretKeyRef of the chart's own Secret names a key it has
    secret = by_kind(docs, "Secret")[FULL]
    for deployment in by_kind(docs, "Deployment").values():
        for var in env_of(deployment).values():
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref["name"] == FULL:
                assert ref["key"] in secret["data"], var


def test_hub_and_proxy_find_each_other():
    docs = render()
    deployments, services = by_kind(docs, "Deployment"), by_kind(docs, "Service")
    hub, proxy = env_of(deployments[f"{FULL}-hub"]), env_of(deployments[f"{FULL}-proxy"])
    assert hub["EXECUTION_MODE"]["value"] == "k8s" and proxy["EXECUTION_MODE"]["value"] == "k8s"
    assert hub["START_JHUB"]["value"] == "true" and hub["START_CHP"]["value"] == "false"
    assert proxy["START_CHP"]["value"] == "true" and proxy["START_JHUB"]["value"] == "false"
    assert (
        hub["MLHUB_PROXY_API_URL"]["value"] == f"http://{FULL}-proxy-api:8001"
        and f"{FULL}-proxy-api" in services
    )
    assert proxy["MLHUB_HUB_URL"]["value"] == f"http://{FULL}-hub:8081" and f"{FULL}-hub" in services
    assert hub["MLHUB_HUB_CONNECT_HOST"]["value"] == f"{FULL}-hub"
    assert hub["MLHUB_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert hub["CONFIGPROXY_AUTH_TOKEN"]["valueFrom"] == proxy["CONFIGPROXY_AUTH_TOKEN"]["valueFrom"]
    # the labels the spawner's per-user NetworkPolicies admit
    for name, role in ((f"{FULL}-hub", "hub"), (f"{FULL}-proxy", "proxy")):
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert labels["mlhub.origin"] == "mlhub" and labels["mlhub.role"] == role
    assert deployments[f"{FULL}-proxy"]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def _admits(policy: dict, source: dict[str, str], port: int) -> bool:
    """Whether a NetworkPolicy's ingress rules let a pod with labels *source* (same namespace)
    reach *port* of the pods it selects: Kubernetes' rule semantics for podSelector/ports."""
    for rule in policy["spec"].get("ingress", []):
        peers = rule.get("from")
        from_ok = peers is None or any(
            set(peer.get("podSelector", {}).get("matchLabels", {}).items()) <= set(source.items())
            for peer in peers
        )
        ports = rule.get("ports")
        if from_ok and (ports is None or any(p.get("port") == port for p in ports)):
            return True
    return False


def test_network_policies_let_workspaces_reach_the_hub_api_only():
    docs = render()
    policies, deployments = by_kind(docs, "NetworkPolicy"), by_kind(docs, "Deployment")
    pods = {
        role: deployments[f"{FULL}-{role}"]["spec"]["template"]["metadata"]["labels"]
        for role in ("hub", "proxy")
    }
    hub_policy, proxy_policy = policies[f"{FULL}-hub"], policies[f"{FULL}-proxy"]
    for policy, role in ((hub_policy, "hub"), (proxy_policy, "proxy")):
        assert set(policy["spec"]["podSelector"]["matchLabels"].items()) <= set(pods[role].items())
    workspace = {"mlhub.origin": "mlhub", "mlhub.user": "alice", "mlhub.server-name": ""}
    stranger = {"app": "something-else"}
    assert _admits(hub_policy, workspace, 8081)  # jupyterhub-singleuser needs the hub API
    for port in (8091, 8092):  # the cleanup service and the SSH keys web: through the proxy only
        assert _admits(hub_policy, pods["proxy"], port)
        assert not _admits(hub_policy, workspace, port) and not _admits(hub_policy, stranger, port)
    assert _admits(proxy_policy, pods["hub"], 8001)  # the proxy's API: the hub only
    assert not _admits(proxy_policy, workspace, 8001) and not _admits(proxy_policy, stranger, 8001)
    assert _admits(proxy_policy, workspace, 8000) and _admits(proxy_policy, stranger, 8000)  # the public port
    assert _admits(hub_policy, stranger, 2222)  # SSH from anywhere (ssh.enabled)
    assert "NetworkPolicy" not in {d["kind"] for d in render({"networkPolicy": {"enabled": False}})}


def test_role_grants_only_what_the_hub_uses():
    (role,) = by_kind(render(), "Role").values()
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    allowed = {
        ("", r, v)
        for r in ("pods", "persistentvolumeclaims", "services")
        for v in ("get", "list", "watch", "create", "delete")
    }
    allowed |= {("", "events", v) for v in ("get", "list", "watch")}
    allowed |= {("", "pods/exec", "create"), ("", "pods/exec", "get")}
    allowed |= {("networking.k8s.io", "networkpolicies", v) for v in ("get", "list", "create", "delete")}
    assert granted <= allowed
    assert not any(resource == "secrets" for _, resource, _ in granted)
    assert ("", "pods/exec", "create") in granted  # the SSH gateway


def test_ssh_off_removes_service_and_port():
    docs = render(example("ssh-off"))
    assert f"{FULL}-ssh" not in by_kind(docs, "Service")
    hub = by_kind(docs, "Deployment")[f"{FULL}-hub"]
    assert env_of(hub)["START_SSH"]["value"] == "false"
    ports = {p["name"] for p in hub["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert "ssh" not in ports
    assert env_of(hub)["CLEANUP_INTERVAL_SECONDS"]["value"] == "-1"
    ssh_on = render()
    assert by_kind(ssh_on, "Service")[f"{FULL}-ssh"]["spec"]["ports"][0]["port"] == 2222


def test_external_postgres_and_no_hub_volume():
    docs = render(example("external-postgres"))
    hub = by_kind(docs, "Deployment")[f"{FULL}-hub"]
    ref = env_of(hub)["MLHUB_DB_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "mlhub-db", "key": "url"}
    assert by_kind(docs, "PersistentVolumeClaim") == {}
    assert {"name": "data", "emptyDir": {}} in hub["spec"]["template"]["spec"]["volumes"]
    env = env_of(hub)
    assert env["MLHUB_MAX_MEM_LIMIT"]["value"] == "32g" and env["MLHUB_MAX_DAYS_TO_LIVE"]["value"] == "30"
    # inline URL: kept in the chart's Secret, never in plain env
    docs = render({"hub": {"db": {"url": "postgresql://u:p@db/mlhub"}}})
    secret = by_kind(docs, "Secret")[FULL]
    assert base64.b64decode(secret["data"]["db-url"]).decode() == "postgresql://u:p@db/mlhub"
    assert "value" not in env_of(by_kind(docs, "Deployment")[f"{FULL}-hub"])["MLHUB_DB_URL"]


def test_gpu_scheduling_is_passed_as_json():
    env = env_of(by_kind(render(example("gpus")), "Deployment")[f"{FULL}-hub"])
    assert yaml.safe_load(env["MLHUB_GPU_NODE_SELECTOR"]["value"]) == {"accelerator": "nvidia"}
    assert yaml.safe_load(env["MLHUB_GPU_TOLERATIONS"]["value"])[0]["key"] == "nvidia.com/gpu"
    assert env["MLHUB_MAX_GPUS"]["value"] == "2"
    assert env["MLHUB_ALLOWED_IMAGES"]["value"] == "mlhub/workspace:full,mlhub/workspace:minimal"
    assert "MLHUB_MAX_GPUS" not in env_of(by_kind(render(), "Deployment")[f"{FULL}-hub"])  # -1: no limit


def test_tls_ingress_and_tls_at_the_proxy():
    (ingress,) = by_kind(render(example("tls-ingress")), "Ingress").values()
    # per-user origins: the hub's host and every user's subdomain, one certificate for both
    hosts = ["mlhub.example.org", "*.mlhub.example.org"]
    assert ingress["spec"]["tls"] == [{"hosts": hosts, "secretName": "mlhub-example-org-tls"}]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == hosts
    for rule in ingress["spec"]["rules"]:
        assert rule["http"]["paths"][0]["backend"]["service"]["name"] == f"{FULL}-proxy-public"
    docs = render(example("tls-ingress"))
    for pod in ("hub", "proxy"):
        env = env_of(by_kind(docs, "Deployment")[f"{FULL}-{pod}"])
        assert env["MLHUB_PUBLIC_URL"]["value"] == "https://mlhub.example.org"
        assert env["MLHUB_USER_SUBDOMAINS"]["value"] == "true"
    # without an Ingress: where the port-forward of NOTES.txt puts it
    env = env_of(by_kind(render(), "Deployment")[f"{FULL}-hub"])
    assert env["MLHUB_PUBLIC_URL"]["value"] == "http://localhost:8080"
    # turned off: one host, and the hub is told
    off = render(
        {**example("tls-ingress"), "userSubdomains": False, "publicUrl": "https://hub.example.org:8443"}
    )
    (ingress,) = by_kind(off, "Ingress").values()
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == ["mlhub.example.org"]
    env = env_of(by_kind(off, "Deployment")[f"{FULL}-hub"])
    assert env["MLHUB_USER_SUBDOMAINS"]["value"] == "false"
    assert env["MLHUB_PUBLIC_URL"]["value"] == "https://hub.example.org:8443"
    docs = render(example("loadbalancer-ssl"))
    proxy = by_kind(docs, "Deployment")[f"{FULL}-proxy"]
    assert env_of(proxy)["SSL_ENABLED"]["value"] == "true"
    tls = next(v for v in proxy["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == "mlhub-tls"
    assert {i["path"] for i in tls["secret"]["items"]} == {"cert.crt", "cert.key"}
    public = by_kind(docs, "Service")[f"{FULL}-proxy-public"]
    assert public["spec"]["type"] == "LoadBalancer" and public["spec"]["ports"][0]["port"] == 443


def test_secrets_are_generated_unless_given():
    first, second = (by_kind(render(), "Secret")[FULL]["data"] for _ in range(2))
    for key in ("admin-password", "cookie-secret", "proxy-token"):
        assert first[key] != second[key]  # fresh installs get fresh secrets
    assert len(base64.b64decode(first["cookie-secret"]).decode()) == 64  # hex, as JPY_COOKIE_SECRET wants
    given = by_kind(render(example("ssh-off")), "Secret")[FULL]["data"]
    assert base64.b64decode(given["admin-password"]).decode() == "change-me-now"
    assert by_kind(render(), "Secret")[FULL]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"hubName": "Bad_Name"}, "hubName"),
        ({"cleanup": {"intervalSeconds": 0}}, "intervalSeconds"),
        ({"workspaces": {"maxMemLimit": "lots"}}, "maxMemLimit"),
        ({"workspaces": {"volumeSize": "big"}}, "volumeSize"),
        ({"ssh": {"service": {"type": "Public"}}}, "type"),
        ({"workspaces": {"maxGpus": -2}}, "maxGpus"),
        ({"workspaces": {"unknownKnob": 1}}, "unknownKnob"),
        ({"publicUrl": "hub.example.org/jupyter"}, "publicUrl"),
        ({"userSubdomains": "yes"}, "userSubdomains"),
    ],
)
def test_bad_values_are_refused_naming_the_field(values, field):
    with pytest.raises(Exception) as refused:
        Chart.load(CHART).render(values=values, name=RELEASE, namespace=NAMESPACE)
    assert field in str(refused.value)


# --- Values as zero-to-jupyterhub users write them (hub.config, hub.extraConfig, ...) ------

Z2JH_STYLE = {
    "hub": {
        "config": {
            "JupyterHub": {"authenticator_class": "github"},
            "GitHubOAuthenticator": {"client_id": "id", "allowed_organizations": ["ml-team"]},
        },
        "extraConfig": {"10-first": "c.JupyterHub.shutdown_on_logout = True", "20-then": "pass"},
        "extraEnv": {
            "PLAIN": "value",
            "FROM_SECRET": {"valueFrom": {"secretKeyRef": {"name": "oauth", "key": "client-secret"}}},
        },
    },
    "workspaces": {
        "imagePullSecrets": ["registry-creds"],
        "extraVolumes": [
            {"name": "datasets", "persistentVolumeClaim": {"claimName": "datasets", "readOnly": True}},
            {"name": "scratch", "emptyDir": {"sizeLimit": "5Gi"}},
        ],
        "extraVolumeMounts": [
            {"name": "datasets", "mountPath": "/data", "readOnly": True},
            {"name": "scratch", "mountPath": "/scratch"},
        ],
    },
}


def hub_values_of(docs: list[dict]) -> dict:
    """The values document the hub pod mounts (what mlhub/hub/helm_values.py reads)."""
    secret = by_kind(docs, "Secret")[f"{FULL}-hub-values"]
    return yaml.safe_load(base64.b64decode(secret["data"]["values.json"]))


def test_z2jh_style_values_render_valid_manifests():
    report = lint(CHART, Z2JH_STYLE, strict=False)
    assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 3], report
    docs = render(Z2JH_STYLE)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    # the hub pod mounts the values Secret where MLHUB_HELM_VALUES_DIR says
    hub = by_kind(docs, "Deployment")[f"{FULL}-hub"]
    pod = hub["spec"]["template"]["spec"]
    env = env_of(hub)
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "helm-values")
    assert mount["mountPath"] == env["MLHUB_HELM_VALUES_DIR"]["value"] and mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "helm-values")
    assert volume["secret"]["secretName"] == f"{FULL}-hub-values"
    # only the values the hub uses travel, exactly as given
    assert hub_values_of(docs) == {
        "hub": {k: Z2JH_STYLE["hub"][k] for k in ("config", "extraConfig")},
        "workspaces": Z2JH_STYLE["workspaces"],
    }
    # both forms of extraEnv
    assert env["PLAIN"] == {"name": "PLAIN", "value": "value"}
    assert env["FROM_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "oauth", "key": "client-secret"}


def test_each_new_value_renders_alone():
    for values in (
        {"hub": {"config": {"Authenticator": {"admin_users": ["ada"]}}}},
        {"hub": {"extraConfig": {"banner": "c.JupyterHub.template_vars = {}"}}},
        {"hub": {"extraEnv": [{"name": "LISTED", "value": "1"}]}},
        {"workspaces": {"imagePullSecrets": ["creds"]}},
        {"workspaces": {"extraVolumes": [{"name": "cfg", "configMap": {"name": "team-config"}}]}},
    ):
        docs = render(values)
        for doc in docs:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        ((section, given),) = values.items()
        ((key, value),) = given.items()
        if key == "extraEnv":
            assert env_of(by_kind(docs, "Deployment")[f"{FULL}-hub"])["LISTED"]["value"] == "1"
        else:
            assert hub_values_of(docs)[section][key] == value
    # the defaults: an empty document, the hub applies nothing
    assert hub_values_of(render()) == {
        "hub": {"config": {}, "extraConfig": {}},
        "workspaces": {"imagePullSecrets": [], "extraVolumes": [], "extraVolumeMounts": []},
    }


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"hub": {"config": {"jupyterHub": {"admin_access": True}}}}, "jupyterHub"),
        ({"hub": {"config": {"JupyterHub": "github"}}}, "JupyterHub"),
        ({"hub": {"config": {"JupyterHub": {"services": []}}}}, "services"),
        ({"hub": {"config": {"JupyterHub": {"load_roles": []}}}}, "load_roles"),
        ({"hub": {"config": ["JupyterHub"]}}, "config"),
        ({"hub": {"extraConfig": {"snippet": 1}}}, "snippet"),
        ({"hub": {"extraEnv": {"BAD NAME": "x"}}}, "BAD NAME"),
        ({"hub": {"extraEnv": {"N": {"value": "x", "bogus": 1}}}}, "bogus"),
        ({"workspaces": {"imagePullSecrets": "creds"}}, "imagePullSecrets"),
        ({"workspaces": {"imagePullSecrets": ["Not_A_Name"]}}, "imagePullSecrets"),
        ({"workspaces": {"extraVolumes": [{"name": "workspace", "emptyDir": {}}]}}, "extraVolumes"),
        ({"workspaces": {"extraVolumes": [{"emptyDir": {}}]}}, "extraVolumes"),
        ({"workspaces": {"extraVolumeMounts": [{"name": "x"}]}}, "extraVolumeMounts"),
        (
            {
                "workspaces": {
                    "extraVolumes": [{"name": "x", "emptyDir": {}}],
                    "extraVolumeMounts": [{"name": "x", "mountPath": "/workspace"}],
                }
            },
            "mountPath",
        ),
        ({"workspaces": {"extraVolumeMounts": [{"name": "nowhere", "mountPath": "/x"}]}}, "nowhere"),
    ],
)
def test_bad_z2jh_style_values_are_refused_naming_the_field(values, field):
    with pytest.raises(Exception) as refused:
        Chart.load(CHART).render(values=values, name=RELEASE, namespace=NAMESPACE)
    assert field in str(refused.value), str(refused.value)


# --- The values reference (helm/mlhub/README.md) against values.yaml and the schema --------


def documented_values() -> dict[str, object]:
    """Each value in values.yaml under a ``# --`` comment (dotted path -> its default)."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    found: dict[str, object] = {}
    path: list[str] = []
    documented = False
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith("# --")):
            documented = documented and bool(stripped)
            continue
        if stripped.startswith("# --"):
            documented = True
            continue
        key = re.match(r"( *)([A-Za-z][A-Za-z0-9]*):", line)
        if key:
            path = path[: len(key.group(1)) // 2] + [key.group(2)]
            if documented:
                value: object = defaults
                for part in path:
                    value = value[part]  # type: ignore[index]
                found[".".join(path)] = value
        documented = False
    return found


def default_cell(value: object) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value)}`" if not value else ""  # a structure: the README says it in words
    return f"`{value}`" if value != "" else '`""`'


def test_the_values_reference_lists_every_value_with_its_default_and_the_schema_knows_it():
    rows = dict(re.findall(r"^\| `([^`]+)` \|([^|]*)\|", (CHART / "README.md").read_text(), re.M))
    values = documented_values()
    assert "auth.ldap.caCert.key" in values and "hubName" in values
    assert sorted(set(values) - set(rows)) == [], "values.yaml values missing from helm/mlhub/README.md"
    assert sorted(set(rows) - set(values)) == [], "README rows without a documented value in values.yaml"
    assert {name: rows[name].strip() for name in values} == {
        name: default_cell(v) for name, v in values.items()
    }
    schema = json.loads((CHART / "values.schema.json").read_text())
    for name in values:
        node = schema
        for part in name.split("."):
            assert part in node.get("properties", {}), f"values.schema.json has no {name}"
            node = node["properties"][part]
