"""Helm values reaching the hub as on Kubernetes: the chart rendered by real Helm, the hub's
environment and values Secret taken from that render, and the shipped jupyterhub_config.py
loaded by the real ``jupyterhub`` command (``--show-config-json``: the config it would run)."""

from __future__ import annotations

import base64
import json
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


def hub_config_from_chart(values: dict, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the hub's config as the hub pod would: its env from the Deployment (secrets from
    the chart's Secret, the values Secret's file in a directory named as in the pod)."""
    docs = render(values)
    secrets = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "Secret"}
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
    values_dir = tmp_path / "helm-values"
    values_dir.mkdir()
    (values_dir / "values.json").write_bytes(base64.b64decode(secrets[f"{FULL}-hub-values"]["values.json"]))
    assert env["MLHUB_HELM_VALUES_DIR"] == "/etc/mlhub/helm-values"  # where the pod mounts it
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


def test_helm_values_reach_the_hubs_config(tmp_path):
    result = hub_config_from_chart(
        {
            "hub": {
                "config": {
                    "JupyterHub": {"authenticator_class": "dummy", "concurrent_spawn_limit": 7},
                    "DummyAuthenticator": {"password": "not-for-production"},
                    "Authenticator": {"admin_users": ["ada"]},
                },
                "extraConfig": {
                    "20-then": "c.KubeSpawner.environment = {'SEEN': ','.join(seen + ['20'])}",
                    "10-first": "seen = ['10']",
                },
            },
            "workspaces": {
                "imagePullSecrets": ["registry-creds"],
                "extraVolumes": [{"name": "datasets", "persistentVolumeClaim": {"claimName": "datasets"}}],
                "extraVolumeMounts": [{"name": "datasets", "mountPath": "/data", "readOnly": True}],
            },
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout)
    assert config["JupyterHub"]["authenticator_class"] == "dummy"
    assert config["JupyterHub"]["concurrent_spawn_limit"] == 7
    assert config["DummyAuthenticator"]["password"] == "not-for-production"
    assert config["JupyterHub"]["spawner_class"] == "mlhub-kubernetes"  # MLHub's config ran first
    assert config["KubeSpawner"]["image_pull_secrets"] == ["registry-creds"]
    assert config["KubeSpawner"]["volumes"] == [
        {"name": "datasets", "persistentVolumeClaim": {"claimName": "datasets"}}
    ]
    assert config["KubeSpawner"]["volume_mounts"] == [
        {"name": "datasets", "mountPath": "/data", "readOnly": True}
    ]
    assert config["KubeSpawner"]["environment"] == {"SEEN": "10,20"}
    # another authenticator: MLHub's NativeAuthenticator-only settings are gone, hub.config's kept
    assert config["Authenticator"]["admin_users"] == ["ada"] and "allow_all" not in config["Authenticator"]
    assert config["JupyterHub"]["template_vars"]["mlhub"]["native_auth"] is False
    assert "[mlhub] Helm: running hub.extraConfig.10-first" in result.stdout + result.stderr


def test_default_values_change_nothing(tmp_path):
    result = hub_config_from_chart({}, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout)
    assert config["JupyterHub"]["authenticator_class"] == "mlhub-native"
    assert config["Authenticator"]["allow_all"] is True
    assert "image_pull_secrets" not in config["KubeSpawner"] and "volumes" not in config["KubeSpawner"]


def test_a_bad_value_stops_the_hub_naming_it(tmp_path):
    """What the schema cannot see (a snippet's Python) is refused by the hub at start."""
    result = hub_config_from_chart({"hub": {"extraConfig": {"typo": "c.JupyterHub.port = = 1"}}}, tmp_path)
    assert result.returncode != 0
    assert "hub.extraConfig.typo: not valid Python" in result.stderr
