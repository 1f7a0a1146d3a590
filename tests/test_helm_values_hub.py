"""Helm values reaching the hub as on Kubernetes: the chart rendered by real Helm, the hub's
environment and values Secret taken from that render, and the shipped jupyterhub_config.py
loaded by the real ``jupyterhub`` command (``--show-config-json``: the config it would run)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
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


# --- auth.* (docs/decisions/helm-auth-values.md): the chart's variables, the hub's checks -----


@pytest.fixture
def oidc_issuer() -> Iterator[str]:
    """An OpenID issuer's discovery document, served on 127.0.0.1 (what the hub reads at start)."""

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer = f"http://127.0.0.1:{self.server.server_port}/realms/lab"
            if self.path != "/realms/lab/.well-known/openid-configuration":
                self.send_error(404)
                return
            body = json.dumps(
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{issuer}/auth",
                    "token_endpoint": f"{issuer}/token",
                    "userinfo_endpoint": f"{issuer}/userinfo",
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/realms/lab"
    server.shutdown()
    server.server_close()


def example(name: str) -> dict:
    return yaml.safe_load((REPO / "helm" / "examples" / f"{name}.yaml").read_text())


def test_the_oidc_example_makes_the_hub_use_the_provider(tmp_path, oidc_issuer):
    """helm/examples/auth-oidc.yaml (its issuer here on 127.0.0.1), the client secret from the
    admin's Secret: the hub's config is OAuthenticator's, set from the chart's values."""
    values = example("auth-oidc")
    values["auth"]["oidc"]["issuer"] = oidc_issuer
    result = hub_config_from_chart(
        values, tmp_path, cluster={"mlhub-auth": {"oauth-client-secret": "from-the-admins-secret"}}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout)
    assert config["JupyterHub"]["authenticator_class"] == "mlhub.hub.oauth.MLHubGenericOAuthenticator"
    oidc = config["GenericOAuthenticator"]
    assert (oidc["client_id"], oidc["client_secret"]) == ("mlhub", "from-the-admins-secret")
    assert oidc["authorize_url"] == f"{oidc_issuer}/auth"  # discovered at start
    assert (oidc["token_url"], oidc["userdata_url"]) == (f"{oidc_issuer}/token", f"{oidc_issuer}/userinfo")
    assert oidc["oauth_callback_url"] == "https://mlhub.example.org/hub/oauth_callback"
    assert oidc["scope"] == ["openid", "profile", "email", "groups"]
    assert oidc["username_claim"] == "preferred_username"
    assert oidc["auth_state_groups_key"] == "oauth_user.groups"
    # (--show-config-json shows a set as its repr)
    assert (oidc["allowed_groups"], oidc["admin_groups"]) == ("{'ml-users'}", "{'ml-admins'}")
    assert oidc["allow_all"] is False and oidc["admin_users"] == "set()"
    assert config["JupyterHub"]["template_vars"]["mlhub"]["native_auth"] is False


def test_the_ldap_example_makes_the_hub_use_the_directory(tmp_path):
    """helm/examples/auth-ldap.yaml with the admin's Secret (search password) and ConfigMap
    (the CA certificate, mounted as a file): LDAPAuthenticator's config, the CA checked."""
    pem = "-----BEGIN CERTIFICATE-----\nMIIB...campus CA...\n-----END CERTIFICATE-----\n"
    result = hub_config_from_chart(
        example("auth-ldap"),
        tmp_path,
        cluster={"mlhub-auth": {"ldap-search-password": "s3arch-pw"}, "campus-ca": {"ca.crt": pem}},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout)
    assert config["JupyterHub"]["authenticator_class"] == "mlhub.hub.ldap_auth.MLHubLDAPAuthenticator"
    ldap = config["LDAPAuthenticator"]
    assert ldap["server_address"] == "ldap.example.org" and ldap["tls_strategy"] == "on_connect"
    assert "server_port" not in ldap  # LDAPAuthenticator's own default for ldaps, 636
    ca_file = ldap["tls_kwargs"]["ca_certs_file"]
    assert ca_file.endswith("/ca.crt") and open(ca_file).read() == pem  # the ConfigMap's file
    assert ldap["tls_kwargs"]["validate"] == 2  # ssl.CERT_REQUIRED
    assert ldap["lookup_dn"] is True and ldap["user_search_base"] == "ou=people,dc=example,dc=org"
    assert ldap["lookup_dn_search_user"] == "cn=mlhub,ou=services,dc=example,dc=org"
    assert ldap["lookup_dn_search_password"] == "s3arch-pw"
    assert ldap["allowed_groups"] == ["cn=ml-users,ou=groups,dc=example,dc=org"]
    assert ldap["admin_users"] == "{'ada'}"
    assert config["MLHubLDAPAuthenticator"]["admin_groups"] == ["cn=ml-admins,ou=groups,dc=example,dc=org"]


def test_a_bad_auth_setting_stops_the_hub_naming_the_variable(tmp_path):
    """What the schema cannot see is the hub's to refuse: an OIDC provider without a client
    id, and one that lets nobody in (the inline secret is never echoed)."""
    values = {
        "auth": {
            "type": "oidc",
            "oauth": {"clientSecret": "inline-s3cret"},
            "oidc": {
                "authorizeUrl": "https://login.example.org/auth",
                "tokenUrl": "https://login.example.org/token",
                "userdataUrl": "https://login.example.org/userinfo",
            },
        }
    }
    result = hub_config_from_chart(values, tmp_path)
    assert result.returncode != 0
    assert "MLHUB_OAUTH_CLIENT_ID" in result.stderr and "MLHUB_AUTH_ALLOW_ALL" in result.stderr
    assert "inline-s3cret" not in result.stderr + result.stdout
