"""The chart's auth.* values: rendered by the real Helm v4 engine (helm-python-sdk), every
manifest validated against the Kubernetes schemas, and the hub's environment they make read by
the hub's own identity settings loader (mlhub/core/identity_settings.py). The real ``jupyterhub``
on that environment: tests/test_helm_values_hub.py. docs/decisions/helm-auth-values.md"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helm_python import Chart, lint

from mlhub.core.identity_settings import IDENTITY_VARIABLES, IdentitySettings, read_identity_settings

CHART = Path(__file__).resolve().parents[2] / "helm" / "mlhub"
K8S_VERSION = "1.33"
FULL = "demo-mlhub"
SECRET_VARIABLES = {"MLHUB_OAUTH_CLIENT_SECRET", "MLHUB_LDAP_SEARCH_PASSWORD"}
CLIENT_SECRET, SEARCH_PASSWORD = "oauth-s3cret-value", "ldap-s3cret-value"

#: one working set of values per authenticator
BY_TYPE: dict[str, dict] = {
    "github": {
        "type": "github",
        "oauth": {"clientId": "Iv1.abc", "clientSecret": CLIENT_SECRET, "allowedGroups": ["ml-team"]},
        "github": {"url": "https://github.example.org"},
    },
    "gitlab": {
        "type": "gitlab",
        "allowAll": True,
        "oauth": {"clientId": "gl-app", "clientSecret": CLIENT_SECRET},
        "gitlab": {"url": "https://gitlab.example.org"},
    },
    "oidc": {
        "type": "oidc",
        "adminUsers": ["ada", "grace"],
        "oauth": {
            "clientId": "mlhub",
            "clientSecret": CLIENT_SECRET,
            "callbackUrl": "https://mlhub.example.org/hub/oauth_callback",
            "allowedGroups": ["ml-users", "ml-staff"],
            "adminGroups": ["ml-admins"],
        },
        "oidc": {
            "issuer": "https://login.example.org/realms/lab",
            "scopes": ["openid", "profile", "groups"],
            "usernameClaim": "sub",
            "groupsClaim": "realm_access.roles",
        },
    },
    "ldap": {
        "type": "ldap",
        "ldap": {
            "server": "ldap.example.org",
            "port": 636,
            "tls": "ldaps",
            "caCert": {"secretName": "campus-ca"},
            "userSearchBase": "ou=people,dc=example,dc=org",
            "userAttribute": "sAMAccountName",
            "searchUser": "cn=hub,ou=services,dc=example,dc=org",
            "searchPassword": SEARCH_PASSWORD,
            "allowedGroups": [
                "cn=hub-users,ou=groups,dc=example,dc=org",
                "cn=staff,ou=groups,dc=example,dc=org",
            ],
            "adminGroups": ["cn=hub-admins,ou=groups,dc=example,dc=org"],
        },
    },
}


def render(values: dict) -> list[dict]:
    out = Chart.load(CHART).render(values=values, name="demo", namespace="ml", is_install=True)
    return [
        doc
        for path, text in out.items()
        if not path.endswith(".txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def hub_of(docs: list[dict]) -> dict:
    (hub,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{FULL}-hub"]
    return hub


def env_list(docs: list[dict]) -> list[dict]:
    return hub_of(docs)["spec"]["template"]["spec"]["containers"][0]["env"]


def resolved_env(docs: list[dict], cluster: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The hub container's variables as Kubernetes would set them: secretKeyRefs read from the
    rendered Secrets or from *cluster* (Secrets the admin made: name -> key -> value)."""
    secrets = {
        d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
        for d in docs
        if d["kind"] == "Secret"
    }
    secrets.update(cluster or {})
    env = {}
    for var in env_list(docs):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def identity_of(env: dict[str, str]) -> tuple[IdentitySettings, dict[str, str]]:
    errors: dict[str, str] = {}
    return read_identity_settings(env, errors), errors


def test_the_default_is_native_and_passes_nothing():
    docs = render({})
    names = {var["name"] for var in env_list(docs)}
    assert not names & set(IDENTITY_VARIABLES)
    identity, errors = identity_of(resolved_env(docs))
    assert identity.authenticator == "native" and errors == {}
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == FULL)
    assert not {"oauth-client-secret", "ldap-search-password"} & set(secret["data"])


@pytest.mark.parametrize("kind", sorted(BY_TYPE))
def test_each_authenticator_renders_valid_manifests_the_hub_accepts(kind):
    values = {"auth": BY_TYPE[kind]}
    report = lint(CHART, values, strict=False)
    assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 3], report
    docs = render(values)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    env = resolved_env(docs)
    if kind == "ldap":  # the CA file is mounted from the Secret in the pod
        assert env["MLHUB_LDAP_CA_FILE"] == "/etc/mlhub/ldap-ca/ca.crt"
        env.pop("MLHUB_LDAP_CA_FILE")
    identity, errors = identity_of(env)
    assert errors == {}
    assert identity.authenticator == kind
    given = BY_TYPE[kind]
    if kind in ("github", "gitlab", "oidc"):
        oauth = given["oauth"]
        assert identity.oauth_client_id == oauth["clientId"] and identity.oauth_client_secret == CLIENT_SECRET
        assert identity.oauth_allowed_groups == tuple(oauth.get("allowedGroups", ()))
        assert identity.oauth_admin_groups == tuple(oauth.get("adminGroups", ()))
        assert identity.oauth_callback_url == oauth.get("callbackUrl", "")
    assert identity.allow_all is given.get("allowAll", False)
    assert identity.admin_users == tuple(given.get("adminUsers", ()))
    if kind == "github":
        assert identity.github_url == "https://github.example.org"
    if kind == "gitlab":
        assert identity.gitlab_url == "https://gitlab.example.org"
    if kind == "oidc":
        assert identity.oidc_issuer == "https://login.example.org/realms/lab"
        assert identity.oidc_scopes == ("openid", "profile", "groups")
        assert (identity.oidc_username_claim, identity.oidc_groups_claim) == ("sub", "realm_access.roles")
    if kind == "ldap":
        ldap = given["ldap"]
        assert (identity.ldap_server, identity.ldap_port, identity.ldap_tls) == (
            "ldap.example.org",
            636,
            "on_connect",
        )
        assert identity.ldap_user_search_base == ldap["userSearchBase"]
        assert identity.ldap_user_attribute == "sAMAccountName"
        assert identity.ldap_search_user == ldap["searchUser"]
        assert identity.ldap_search_password == SEARCH_PASSWORD
        assert identity.ldap_allowed_groups == tuple(ldap["allowedGroups"])
        assert identity.ldap_admin_groups == tuple(ldap["adminGroups"])


@pytest.mark.parametrize("kind", sorted(BY_TYPE))
def test_secrets_reach_the_hub_only_by_secret_key_ref(kind):
    docs = render({"auth": BY_TYPE[kind]})
    for var in env_list(docs):
        if var["name"] in SECRET_VARIABLES:
            assert set(var) == {"name", "valueFrom"}, var
            assert var["valueFrom"]["secretKeyRef"]["name"] == FULL
    # the secret values appear nowhere in plain text: not in the Deployment, not in the values
    # Secret the hub mounts, not anywhere but the release's Secret (base64, as Kubernetes keeps it)
    for doc in docs:
        if doc["kind"] == "Secret" and doc["metadata"]["name"] == FULL:
            continue
        text = yaml.safe_dump(doc)
        decoded = " ".join(
            base64.b64decode(v).decode() for v in (doc.get("data") or {}).values() if doc["kind"] == "Secret"
        )
        for secret in (CLIENT_SECRET, SEARCH_PASSWORD):
            assert secret not in text and secret not in decoded, doc["metadata"]["name"]
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == FULL)
    key = "ldap-search-password" if kind == "ldap" else "oauth-client-secret"
    assert base64.b64decode(secret["data"][key]).decode() in (CLIENT_SECRET, SEARCH_PASSWORD)


def test_an_existing_secret_is_used_when_set():
    values = {
        "auth": {
            **BY_TYPE["oidc"],
            "existingSecret": "mlhub-auth",
            "oauth": {**BY_TYPE["oidc"]["oauth"], "clientSecret": ""},
        }
    }
    docs = render(values)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    env = {var["name"]: var for var in env_list(docs)}
    assert env["MLHUB_OAUTH_CLIENT_SECRET"] == {
        "name": "MLHUB_OAUTH_CLIENT_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "mlhub-auth", "key": "oauth-client-secret"}},
    }
    assert "MLHUB_LDAP_SEARCH_PASSWORD" not in env  # the key of another authenticator is not read
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == FULL)
    assert "oauth-client-secret" not in secret["data"]
    identity, errors = identity_of(
        resolved_env(docs, cluster={"mlhub-auth": {"oauth-client-secret": "from-the-admins-secret"}})
    )
    assert errors == {} and identity.oauth_client_secret == "from-the-admins-secret"
    # ldap: the search password from the same Secret, only with a search user
    ldap = {**BY_TYPE["ldap"]["ldap"], "searchPassword": ""}
    env = {
        var["name"]: var
        for var in env_list(render({"auth": {"type": "ldap", "existingSecret": "mlhub-auth", "ldap": ldap}}))
    }
    assert env["MLHUB_LDAP_SEARCH_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "mlhub-auth",
        "key": "ldap-search-password",
    }
    assert "MLHUB_OAUTH_CLIENT_SECRET" not in env
    ldap.pop("searchUser")
    env = {
        var["name"]
        for var in env_list(render({"auth": {"type": "ldap", "existingSecret": "mlhub-auth", "ldap": ldap}}))
    }
    assert "MLHUB_LDAP_SEARCH_PASSWORD" not in env  # anonymous look-ups


def test_the_ldap_ca_certificate_is_mounted_from_a_secret_or_a_config_map():
    for source, volume in (
        ({"secretName": "campus-ca", "key": "root.pem"}, {"secret": {"secretName": "campus-ca"}}),
        ({"configMapName": "campus-ca"}, {"configMap": {"name": "campus-ca"}}),
    ):
        ldap = {**BY_TYPE["ldap"]["ldap"], "caCert": source}
        docs = render({"auth": {"type": "ldap", "ldap": ldap}})
        for doc in docs:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        pod = hub_of(docs)["spec"]["template"]["spec"]
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "ldap-ca"]
        (vol,) = [v for v in pod["volumes"] if v["name"] == "ldap-ca"]
        ((kind, spec),) = {k: v for k, v in vol.items() if k != "name"}.items()
        ((expected_kind, expected),) = volume.items()
        assert kind == expected_kind and expected.items() <= spec.items()
        assert spec["items"] == [{"key": source.get("key", "ca.crt"), "path": "ca.crt"}]
        env = {var["name"]: var.get("value") for var in env_list(docs)}
        assert env["MLHUB_LDAP_CA_FILE"] == f"{mount['mountPath']}/ca.crt" and mount["readOnly"] is True
    # none: no volume, no variable (the system's CAs)
    docs = render(
        {"auth": {"type": "ldap", "ldap": {**BY_TYPE["ldap"]["ldap"], "caCert": {"secretName": ""}}}}
    )
    assert "ldap-ca" not in {v["name"] for v in hub_of(docs)["spec"]["template"]["spec"]["volumes"]}
    assert "MLHUB_LDAP_CA_FILE" not in {var["name"] for var in env_list(docs)}


def test_every_identity_variable_has_an_auth_value():
    """Every MLHUB_* identity variable the hub reads can be set through auth.*."""
    everything = {
        "type": "oidc",
        "adminUsers": ["ada"],
        "allowAll": True,
        "oauth": {**BY_TYPE["oidc"]["oauth"]},
        "github": {"url": "https://github.example.org"},
        "gitlab": {"url": "https://gitlab.example.org"},
        "oidc": {
            **BY_TYPE["oidc"]["oidc"],
            "authorizeUrl": "https://a.example.org/auth",
            "tokenUrl": "https://a.example.org/token",
            "userdataUrl": "https://a.example.org/userinfo",
        },
        "ldap": {
            **BY_TYPE["ldap"]["ldap"],
            "bindDnTemplates": ["uid={username},ou=people,dc=example,dc=org"],
        },
    }
    names = {var["name"] for var in env_list(render({"auth": everything}))}
    ldap_password = {var["name"] for var in env_list(render({"auth": BY_TYPE["ldap"]}))}
    assert set(IDENTITY_VARIABLES) <= names | ldap_password


def test_empty_values_are_not_passed():
    docs = render(
        {"auth": {"type": "github", "oauth": {"clientId": "x", "clientSecret": "y"}, "allowAll": False}}
    )
    names = {var["name"] for var in env_list(docs)} & set(IDENTITY_VARIABLES)
    assert names == {"MLHUB_AUTHENTICATOR", "MLHUB_OAUTH_CLIENT_ID", "MLHUB_OAUTH_CLIENT_SECRET"}
    # what the hub then says (the chart passes, the hub checks): nobody could log in
    _, errors = identity_of(resolved_env(docs))
    assert list(errors) == ["MLHUB_AUTH_ALLOW_ALL"]


def test_a_value_of_another_authenticator_reaches_the_hub_which_refuses_it():
    """Validation stays in the hub: auth.type left at native with an OIDC issuer set (a
    forgotten auth.type) is passed on, and the hub refuses to start naming the variable."""
    docs = render({"auth": {"oidc": {"issuer": "https://login.example.org"}}})
    _, errors = identity_of(resolved_env(docs))
    assert (
        "MLHUB_OIDC_ISSUER" in errors
        and "only used with MLHUB_AUTHENTICATOR=oidc" in errors["MLHUB_OIDC_ISSUER"]
    )


def test_hub_extra_env_still_works_alone_and_a_variable_set_twice_is_refused():
    # the way before auth.* (README, hub.extraEnv): unchanged
    old_way = {
        "hub": {
            "extraEnv": {
                "MLHUB_AUTHENTICATOR": "github",
                "MLHUB_OAUTH_CLIENT_ID": "x",
                "MLHUB_OAUTH_CLIENT_SECRET": {"valueFrom": {"secretKeyRef": {"name": "gh", "key": "secret"}}},
                "MLHUB_AUTH_ALLOW_ALL": "true",
            }
        }
    }
    env = {var["name"]: var for var in env_list(render(old_way))}
    assert env["MLHUB_AUTHENTICATOR"]["value"] == "github"
    assert env["MLHUB_OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "gh", "key": "secret"}
    # mixed without overlap: fine
    render({**old_way, "auth": {"github": {"url": "https://github.example.org"}}})
    # the same variable both ways: refused, naming both
    for values, message in (
        ({**old_way, "auth": {"type": "github"}}, "hub.extraEnv.MLHUB_AUTHENTICATOR: also set by auth.type"),
        (
            {**old_way, "auth": {"existingSecret": "mlhub-auth", "type": "github"}},
            "hub.extraEnv.MLHUB_AUTHENTICATOR: also set by auth.type",
        ),
        (
            {
                "hub": {"extraEnv": [{"name": "MLHUB_LDAP_SERVER", "value": "a"}]},
                "auth": {"ldap": {"server": "b"}},
            },
            "hub.extraEnv.MLHUB_LDAP_SERVER: also set by auth.ldap.server",
        ),
        (
            {
                "hub": {"extraEnv": {"MLHUB_OAUTH_CLIENT_SECRET": "x"}},
                "auth": {"type": "oidc", "existingSecret": "mlhub-auth"},
            },
            "hub.extraEnv.MLHUB_OAUTH_CLIENT_SECRET: also set by auth.existingSecret",
        ),
    ):
        with pytest.raises(Exception, match=re.escape(message)):
            render(values)


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"type": "saml"}, "/auth/type"),
        ({"type": ""}, "/auth/type"),
        ({"ldap": {"port": 0}}, "/auth/ldap/port"),
        ({"ldap": {"port": 70000}}, "/auth/ldap/port"),
        ({"ldap": {"port": "389"}}, "/auth/ldap/port"),
        ({"ldap": {"tls": "tls"}}, "/auth/ldap/tls"),
        ({"ldap": {"server": "ldap://ldap.example.org"}}, "/auth/ldap/server"),
        ({"ldap": {"bindDnTemplates": ["uid=ada,dc=example,dc=org"]}}, "/auth/ldap/bindDnTemplates/0"),
        ({"ldap": {"bindDnTemplates": "uid={username},dc=example,dc=org"}}, "/auth/ldap/bindDnTemplates"),
        ({"ldap": {"allowedGroups": ["hub-users"]}}, "/auth/ldap/allowedGroups/0"),
        # [cn=admins,ou=groups,dc=example,dc=org] unquoted: YAML splits the DN at its commas
        (
            {"ldap": {"adminGroups": yaml.safe_load("[cn=admins,ou=groups,dc=org]")}},
            "/auth/ldap/adminGroups/0",
        ),
        ({"ldap": {"caCert": {"secret": "ca"}}}, "secret"),
        ({"allowAll": "yes"}, "/auth/allowAll"),
        ({"adminUsers": "ada"}, "/auth/adminUsers"),
        ({"adminUsers": ["ada,grace"]}, "/auth/adminUsers/0"),
        ({"oauth": {"clientSecreet": "x"}}, "clientSecreet"),
        ({"oauth": {"callbackUrl": "mlhub.example.org/hub/oauth_callback"}}, "/auth/oauth/callbackUrl"),
        ({"oauth": {"allowedGroups": "ml-team"}}, "/auth/oauth/allowedGroups"),
        ({"oidc": {"issuer": "login.example.org"}}, "/auth/oidc/issuer"),
        ({"oidc": {"scopes": "openid profile"}}, "/auth/oidc/scopes"),
        ({"oidc": {"usernameClaim": "preferred username"}}, "/auth/oidc/usernameClaim"),
        ({"github": {"url": "github.example.org"}}, "/auth/github/url"),
        ({"saml": {}}, "saml"),
        ({"existingSecret": "Not_A_Secret"}, "/auth/existingSecret"),
        # render-time checks the schema cannot express
        ({"existingSecret": "mlhub-auth", "oauth": {"clientSecret": "x"}}, "auth.oauth.clientSecret"),
        ({"existingSecret": "mlhub-auth", "ldap": {"searchPassword": "x"}}, "auth.ldap.searchPassword"),
        ({"ldap": {"caCert": {"secretName": "a", "configMapName": "b"}}}, "auth.ldap.caCert"),
    ],
)
def test_bad_auth_values_are_refused_naming_the_field(auth, field):
    with pytest.raises(Exception) as refused:
        render({"auth": auth})
    assert field in str(refused.value), str(refused.value)


def test_the_install_notes_follow_the_authenticator():
    def notes(values: dict) -> str:
        out = Chart.load(CHART).render(values=values, name="demo", namespace="ml", is_install=True)
        return next(text for path, text in out.items() if path.endswith("NOTES.txt"))

    assert "admin-password" in notes({})
    ldap = notes({"auth": BY_TYPE["ldap"]})
    assert (
        "admin-password" not in ldap
        and "Log in with ldap" in ldap
        and "logs deployment/demo-mlhub-hub" in ldap
    )
