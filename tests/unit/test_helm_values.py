"""mlhub/hub/helm_values.py: the Helm values the hub reads itself, applied to a real traitlets
Config (what jupyterhub_config.py's ``c`` is). Pure: values given as dicts or a temp file."""

from __future__ import annotations

import json

import pytest
from traitlets.config import Config

from mlhub.hub.helm_values import HelmValuesError, apply_values, load_values, parse_values


def mlhub_config() -> Config:
    """The parts of MLHub's own config the Helm values meet."""
    c = Config()
    c.JupyterHub.authenticator_class = "mlhub-native"
    c.Authenticator.allow_all = True
    c.Authenticator.admin_users = {"admin"}
    c.JupyterHub.template_vars = {"mlhub": {"native_auth": True, "ssh_enabled": True}}
    c.KubeSpawner.image = "mlhub/workspace:latest"
    return c


def apply(raw: dict, c: Config | None = None) -> tuple[Config, list[str]]:
    c = c if c is not None else mlhub_config()
    said: list[str] = []
    apply_values(c, parse_values(raw), log=said.append)
    return c, said


def test_hub_config_reaches_c():
    c, said = apply(
        {
            "hub": {
                "config": {
                    "JupyterHub": {"shutdown_on_logout": True},
                    "KubeSpawner": {"image": "registry.example.org/ws:2"},
                    "GitHubOAuthenticator": {"client_id": "id", "allowed_organizations": ["ml"]},
                }
            }
        }
    )
    assert c.JupyterHub.shutdown_on_logout is True
    assert c.KubeSpawner.image == "registry.example.org/ws:2"  # replaces MLHub's value
    assert c.GitHubOAuthenticator.allowed_organizations == ["ml"]
    assert c.JupyterHub.authenticator_class == "mlhub-native"  # untouched settings stay
    assert c.Authenticator.allow_all is True and c.Authenticator.admin_users == {"admin"}
    assert any("hub.config.GitHubOAuthenticator: allowed_organizations, client_id" in s for s in said)


def test_extra_config_snippets_run_in_name_order_after_hub_config():
    c, said = apply(
        {
            "hub": {
                "config": {"JupyterHub": {"template_paths": ["/a"]}},
                "extraConfig": {
                    "20-second": "order.append('20'); c.JupyterHub.template_paths.append('/20')",
                    "10-first": "order = ['10']; c.JupyterHub.template_paths.append('/10')",
                    "30-third": "order.append('30'); c.Spawner.environment = {'ORDER': ','.join(order)}",
                },
            }
        }
    )
    assert c.JupyterHub.template_paths == ["/a", "/10", "/20"]
    assert c.Spawner.environment == {"ORDER": "10,20,30"}  # one namespace, in name order
    assert [s for s in said if "running" in s] == [
        f"[mlhub] Helm: running hub.extraConfig.{n}" for n in ("10-first", "20-second", "30-third")
    ]


def test_workspace_values_reach_the_kube_spawner_config():
    c = mlhub_config()
    c.KubeSpawner.volumes = [{"name": "from-config", "emptyDir": {}}]
    c, said = apply(
        {
            "workspaces": {
                "imagePullSecrets": ["creds"],
                "extraVolumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                "extraVolumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
            }
        },
        c,
    )
    assert c.KubeSpawner.image_pull_secrets == ["creds"]
    assert [v["name"] for v in c.KubeSpawner.volumes] == ["from-config", "data"]
    assert c.KubeSpawner.volume_mounts == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert "[mlhub] Helm: workspaces mount data at /data" in said


def test_another_authenticator_drops_mlhubs_sign_up_settings():
    """allow_all (NativeAuthenticator's authorized accounts) and admin_users={MLHUB_ADMIN_USER}
    would let anyone with a GitHub account in, and make GitHub's "admin" an admin."""
    c, said = apply({"hub": {"config": {"JupyterHub": {"authenticator_class": "github"}}}})
    assert "allow_all" not in c.Authenticator and "admin_users" not in c.Authenticator
    assert c.JupyterHub.template_vars["mlhub"] == {"native_auth": False, "ssh_enabled": True}
    assert any("Authenticator.allow_all" in s for s in said)
    # unless hub.config says so itself
    c, _ = apply(
        {
            "hub": {
                "config": {
                    "JupyterHub": {"authenticator_class": "github"},
                    "Authenticator": {"admin_users": ["ada"]},
                    "GitHubOAuthenticator": {"allow_all": True},
                }
            }
        }
    )
    assert c.Authenticator.admin_users == ["ada"] and "allow_all" not in c.Authenticator
    assert c.GitHubOAuthenticator.allow_all is True


def test_load_values_reads_the_mounted_file(tmp_path):
    (tmp_path / "values.json").write_text(
        json.dumps({"hub": {"config": {"JupyterHub": {"concurrent_spawn_limit": 7}}}})
    )
    c, _ = apply(load_values(tmp_path).raw)
    assert c.JupyterHub.concurrent_spawn_limit == 7
    with pytest.raises(HelmValuesError, match="MLHUB_HELM_VALUES_DIR: cannot read"):
        load_values(tmp_path / "absent")
    (tmp_path / "values.json").write_text("{not json")
    with pytest.raises(HelmValuesError, match="MLHUB_HELM_VALUES_DIR: .* is not JSON"):
        load_values(tmp_path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"hub": {"config": ["JupyterHub"]}}, "hub.config: must be a mapping of Configurable class names"),
        (
            {"hub": {"config": {"jupyterHub": {"a": 1}}}},
            "hub.config.jupyterHub: not a Configurable class name",
        ),
        ({"hub": {"config": {"JupyterHub": "github"}}}, "hub.config.JupyterHub: must be a mapping of"),
        (
            {"hub": {"config": {"JupyterHub": {"bad name": 1}}}},
            "hub.config.JupyterHub.bad name: not a setting",
        ),
        (
            {"hub": {"config": {"JupyterHub": {"services": []}}}},
            "hub.config.JupyterHub.services: not allowed",
        ),
        ({"hub": {"extraConfig": {"x": 1}}}, "hub.extraConfig.x: must be Python source"),
        ({"hub": {"extraConfig": {"x": "def ("}}}, "hub.extraConfig.x: not valid Python"),
        ({"workspaces": {"imagePullSecrets": "creds"}}, "workspaces.imagePullSecrets: must be a list"),
        (
            {"workspaces": {"extraVolumes": [{"name": "dshm"}]}},
            r"workspaces.extraVolumes\[0\].name: 'dshm' is taken",
        ),
        (
            {"workspaces": {"extraVolumeMounts": [{"name": "x", "mountPath": "/x"}]}},
            r"workspaces.extraVolumeMounts\[0\].name: 'x' is not a volume",
        ),
        (
            {
                "workspaces": {
                    "extraVolumes": [{"name": "x", "emptyDir": {}}],
                    "extraVolumeMounts": [{"name": "x", "mountPath": "/workspace/"}],
                }
            },
            r"workspaces.extraVolumeMounts\[0\].mountPath: /workspace/ is MLHub's",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_field_and_change_nothing(raw, message):
    with pytest.raises(HelmValuesError, match=message):
        parse_values(raw)


def test_a_failing_snippet_is_named():
    with pytest.raises(HelmValuesError, match=r"hub.extraConfig.broken: failed: NameError"):
        apply({"hub": {"extraConfig": {"broken": "undefined_name"}}})
