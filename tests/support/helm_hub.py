"""The hub as the Helm chart runs it, without a cluster: the chart rendered by real Helm, the
hub's environment and values Secret taken from that render, and the shipped
jupyterhub_config.py loaded by the real ``jupyterhub`` command (``--show-config-json``: the
config it would run, after initializing the hub, database included)."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import yaml
from helm_python import Chart

from devtools.hubprocess import REPO

FULL = "demo-mlhub"


def render(values: dict) -> list[dict]:
    out = Chart.load(REPO / "helm" / "mlhub").render(
        values=values, name="demo", namespace="ml", is_install=True
    )
    return [
        doc
        for path, text in out.items()
        if not path.endswith(".txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def hub_config_from_chart(
    values: dict, tmp_path: Path, cluster: dict[str, dict[str, str]] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the hub's config as the hub pod would: its env from the Deployment (secrets from
    the chart's Secret, the values Secret's file in a directory named as in the pod).
    *cluster*: Secrets and ConfigMaps the admin made in the namespace (name -> key -> text),
    read by the Deployment's secretKeyRefs and mounted where its volumes say, as Kubernetes would."""
    docs = render(values)
    secrets = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "Secret"}
    for name, data in (cluster or {}).items():
        secrets.setdefault(name, {k: base64.b64encode(v.encode()).decode() for k, v in data.items()})
    (hub,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{FULL}-hub"]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    for var in hub["spec"]["template"]["spec"]["containers"][0]["env"]:
        source = var.get("valueFrom", {})
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in source and source["secretKeyRef"]["name"] in secrets:
            ref = source["secretKeyRef"]
            env[var["name"]] = base64.b64decode(secrets[ref["name"]][ref["key"]]).decode()
        elif "fieldRef" in source:
            env[var["name"]] = "ml"  # metadata.namespace
    _mount_cluster_volumes(hub["spec"]["template"]["spec"], cluster or {}, env, tmp_path / "mounts")
    values_dir = tmp_path / "helm-values"
    values_dir.mkdir()
    (values_dir / "values.json").write_bytes(base64.b64decode(secrets[f"{FULL}-hub-values"]["values.json"]))
    assert env["MLHUB_HELM_VALUES_DIR"] == "/etc/mlhub/helm-values"  # where the pod mounts it
    # the hub's volume (/data): the test may have put a database there
    env.update(MLHUB_HELM_VALUES_DIR=str(values_dir), MLHUB_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("jupyterhub")),
            "--show-config-json",
            "-f",
            str(REPO / "jupyterhub_config.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def _mount_cluster_volumes(
    pod: dict, cluster: dict[str, dict[str, str]], env: dict[str, str], root: Path
) -> None:
    """The hub container's mounts of Secrets and ConfigMaps in *cluster*: their items written
    below *root*, and variables naming a file under the mount path pointed there."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in pod["containers"][0]["volumeMounts"]:
        volume = volumes[mount["name"]]
        source = volume.get("secret", {}).get("secretName") or volume.get("configMap", {}).get("name")
        if source not in cluster:
            continue
        spec = volume.get("secret") or volume["configMap"]
        items = spec.get("items") or [{"key": k, "path": k} for k in cluster[source]]
        directory = root / mount["name"]
        directory.mkdir(parents=True)
        for item in items:
            (directory / item["path"]).write_text(cluster[source][item["key"]])
        for name, value in env.items():
            if value.startswith(mount["mountPath"].rstrip("/") + "/"):
                env[name] = str(directory) + value[len(mount["mountPath"].rstrip("/")) :]
