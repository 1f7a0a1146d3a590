"""Helm values reaching the hub as on Kubernetes: the chart rendered by real Helm, the hub's
environment and values Secret taken from that render, and the shipped jupyterhub_config.py
loaded by the real ``jupyterhub`` command (``--show-config-json``: the config it would run)."""

from __future__ import annotations

import json

import yaml

from devtools.hubprocess import REPO
from tests.support.helm_hub import hub_config_from_chart


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


def test_the_z2jh_style_example_runs_in_the_hub(tmp_path):
    values = yaml.safe_load((REPO / "helm" / "examples" / "z2jh-style.yaml").read_text())
    result = hub_config_from_chart(values, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout)
    assert config["JupyterHub"]["concurrent_spawn_limit"] == 20
    assert config["Authenticator"]["admin_users"] == ["admin", "ada"]
    assert config["JupyterHub"]["template_vars"]["announcement"] == ""  # TEAM_BANNER unset here
    assert config["KubeSpawner"]["image"] == "registry.example.org/ml/workspace:2026.11"
    assert config["KubeSpawner"]["image_pull_secrets"] == ["registry-example-org"]
    assert config["KubeSpawner"]["volume_mounts"][0]["mountPath"] == "/datasets"


def test_an_authenticator_chosen_in_the_admins_own_config_inherits_no_sign_up_settings(tmp_path):
    """MLHUB_USER_CONFIG choosing another authenticator: the sign-up's allow_all (every account
    NativeAuthenticator authorized) and admin_users (MLHUB_ADMIN_USER) must not carry over, or
    anyone with an account at the identity provider logs in, and its "admin" is an admin."""
    own = tmp_path / "own_config.py"
    own.write_text("c.JupyterHub.authenticator_class = 'dummy'\n")
    result = hub_config_from_chart({"hub": {"extraEnv": {"MLHUB_USER_CONFIG": str(own)}}}, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout)
    assert config["JupyterHub"]["authenticator_class"] == "dummy"
    assert "allow_all" not in config.get("Authenticator", {})
    assert "admin_users" not in config.get("Authenticator", {})
    assert "MLHUB_USER_CONFIG chose authenticator 'dummy'" in result.stdout + result.stderr
