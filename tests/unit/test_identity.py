"""MLHUB_AUTHENTICATOR and its variables: parsing, refusals naming the variable, and the
authenticator config they become (mlhub/hub/identity.py). Logins for real: tests/test_idp_*.py."""

from __future__ import annotations

import ssl

import pytest
from traitlets.config import Config

from devtools.hubprocess import REPO
from mlhub.core.identity_settings import IDENTITY_VARIABLES
from mlhub.core.settings import SettingsError, read_settings
from mlhub.hub.identity import IdentityError, authenticator_config, github_teams

OAUTH = {"MLHUB_OAUTH_CLIENT_ID": "hub", "MLHUB_OAUTH_CLIENT_SECRET": "s3cret"}
LDAP = {
    "MLHUB_AUTHENTICATOR": "ldap",
    "MLHUB_LDAP_SERVER": "ldap.example.org",
    "MLHUB_LDAP_BIND_DN_TEMPLATE": "uid={username},ou=people,dc=example,dc=org",
    "MLHUB_LDAP_ALLOWED_GROUPS": "cn=hub-users,ou=groups,dc=example,dc=org",
}


def read(env: dict[str, str]):
    return read_settings(env, default_data_dir="/data")


def errors_of(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(SettingsError) as info:
        read(env)
    return info.value.errors


def never_discover(issuer: str) -> dict:
    raise AssertionError("no discovery expected")


def test_native_is_the_default_and_keeps_the_hubs_password_rules():
    settings = read({"MLHUB_ADMIN_PASSWORD": "Admin-pw-42", "MLHUB_LOGIN_MAX_FAILURES": "3"})
    assert settings.identity.authenticator == "native"
    config = authenticator_config(settings, never_discover)
    assert config["JupyterHub"]["authenticator_class"] == "mlhub-native"
    assert config["Authenticator"] == {"admin_users": {"admin"}, "allow_all": True}
    assert config["MLHubNativeAuthenticator"]["initial_admin_password"] == "Admin-pw-42"
    assert config["MLHubNativeAuthenticator"]["initial_admin_password_file"] == "/data/initial-admin-password"
    assert config["NativeAuthenticator"] == {
        "minimum_password_length": 8,
        "allowed_failed_logins": 3,
        "seconds_before_next_try": 600,
    }
    # it is a traitlets config as jupyterhub_config.py merges it
    assert Config(config).MLHubNativeAuthenticator.login_rate_limit == 60


def test_github_with_organizations_and_admin_teams():
    settings = read(
        {
            "MLHUB_AUTHENTICATOR": "GitHub",
            **OAUTH,
            "MLHUB_PUBLIC_URL": "https://hub.example.org",
            "MLHUB_OAUTH_ALLOWED_GROUPS": "lab, lab:students",
            "MLHUB_OAUTH_ADMIN_GROUPS": "lab:staff",
            "MLHUB_ADMIN_USERS": "alice,bob",
        }
    )
    config = authenticator_config(settings, never_discover)
    assert config["JupyterHub"]["authenticator_class"] == "mlhub.hub.oauth.MLHubGitHubOAuthenticator"
    github = config["GitHubOAuthenticator"]
    assert github["client_id"] == "hub" and github["client_secret"] == "s3cret"
    # the callback is on the hub's own host (per-user origins keep /hub there)
    assert github["oauth_callback_url"] == "https://hub.example.org/hub/oauth_callback"
    assert github["allowed_organizations"] == {"lab", "lab:students"}
    assert github["admin_groups"] == {"lab:staff"} and github["manage_groups"] is True
    assert github["populate_teams_in_auth_state"] is True and "read:org" in github["scope"]
    assert github["admin_users"] == {"alice", "bob"} and github["allow_all"] is False
    teams = [{"slug": "staff", "organization": {"login": "lab"}}, {"slug": "x"}]
    assert github["auth_state_groups_key"]({"teams": teams}) == ["lab:staff"]
    assert github_teams({}) == []


def test_the_provider_never_makes_the_native_admin_name_an_admin():
    """MLHUB_ADMIN_USER ("admin") is the native account; on GitHub anyone might be "admin"."""
    settings = read({"MLHUB_AUTHENTICATOR": "github", **OAUTH, "MLHUB_AUTH_ALLOW_ALL": "true"})
    github = authenticator_config(settings, never_discover)["GitHubOAuthenticator"]
    assert github["admin_users"] == set() and github["allow_all"] is True
    assert "Authenticator" not in authenticator_config(settings, never_discover)


def test_gitlab_with_groups_and_its_own_url():
    settings = read(
        {
            "MLHUB_AUTHENTICATOR": "gitlab",
            **OAUTH,
            "MLHUB_GITLAB_URL": "https://git.example.org/",
            "MLHUB_OAUTH_ALLOWED_GROUPS": "lab/ml",
            "MLHUB_OAUTH_CALLBACK_URL": "https://hub.example.org/hub/oauth_callback",
        }
    )
    gitlab = authenticator_config(settings, never_discover)["GitLabOAuthenticator"]
    assert gitlab["gitlab_url"] == "https://git.example.org"
    assert gitlab["allowed_gitlab_groups"] == {"lab/ml"}
    assert gitlab["oauth_callback_url"] == "https://hub.example.org/hub/oauth_callback"


def test_oidc_endpoints_from_the_issuers_discovery():
    settings = read(
        {
            "MLHUB_AUTHENTICATOR": "oidc",
            **OAUTH,
            "MLHUB_OIDC_ISSUER": "https://login.example.org/realms/lab",
            "MLHUB_OAUTH_ALLOWED_GROUPS": "hub-users",
            "MLHUB_OAUTH_ADMIN_GROUPS": "hub-admins",
            "MLHUB_OIDC_GROUPS_CLAIM": "roles",
            "MLHUB_OIDC_SCOPES": "openid profile roles",
        }
    )
    asked = []

    def discover(issuer: str) -> dict:
        asked.append(issuer)
        return {
            "authorization_endpoint": "https://login.example.org/auth",
            "token_endpoint": "https://login.example.org/token",
            "userinfo_endpoint": "https://login.example.org/userinfo",
        }

    oidc = authenticator_config(settings, discover)["GenericOAuthenticator"]
    assert asked == ["https://login.example.org/realms/lab"]
    assert oidc["authorize_url"] == "https://login.example.org/auth"
    assert oidc["token_url"] == "https://login.example.org/token"
    assert oidc["userdata_url"] == "https://login.example.org/userinfo"
    assert oidc["scope"] == ["openid", "profile", "roles"]
    assert oidc["username_claim"] == "preferred_username"
    assert oidc["auth_state_groups_key"] == "oauth_user.roles" and oidc["manage_groups"] is True
    assert oidc["allowed_groups"] == {"hub-users"} and oidc["admin_groups"] == {"hub-admins"}
    assert oidc["oauth_callback_url"] == "http://localhost:8080/hub/oauth_callback"


def test_oidc_discovery_without_endpoints_names_the_issuer_variable():
    settings = read(
        {
            "MLHUB_AUTHENTICATOR": "oidc",
            **OAUTH,
            "MLHUB_OIDC_ISSUER": "https://x.org",
            "MLHUB_AUTH_ALLOW_ALL": "1",
        }
    )
    with pytest.raises(
        IdentityError, match="MLHUB_OIDC_ISSUER: the discovery document of https://x.org has no"
    ):
        authenticator_config(settings, lambda issuer: {"issuer": issuer})


def test_oidc_endpoints_given_one_by_one_need_no_discovery():
    settings = read(
        {
            "MLHUB_AUTHENTICATOR": "oidc",
            **OAUTH,
            "MLHUB_OIDC_AUTHORIZE_URL": "https://idp/authorize",
            "MLHUB_OIDC_TOKEN_URL": "https://idp/token",
            "MLHUB_OIDC_USERDATA_URL": "https://idp/userinfo",
            "MLHUB_AUTH_ALLOW_ALL": "true",
        }
    )
    oidc = authenticator_config(settings, never_discover)["GenericOAuthenticator"]
    assert oidc["authorize_url"] == "https://idp/authorize" and "manage_groups" not in oidc


def test_ldap_with_a_bind_template_groups_and_certificate_checks():
    settings = read({**LDAP, "MLHUB_LDAP_ADMIN_GROUPS": "cn=hub-admins,ou=groups,dc=example,dc=org"})
    config = authenticator_config(settings, never_discover)
    assert config["JupyterHub"]["authenticator_class"] == "mlhub.hub.ldap_auth.MLHubLDAPAuthenticator"
    ldap = config["LDAPAuthenticator"]
    assert ldap["server_address"] == "ldap.example.org" and "server_port" not in ldap
    assert ldap["tls_strategy"] == "before_bind"  # STARTTLS by default
    assert ldap["tls_kwargs"] == {"validate": ssl.CERT_REQUIRED}
    assert ldap["bind_dn_template"] == ["uid={username},ou=people,dc=example,dc=org"]
    assert ldap["allowed_groups"] == ["cn=hub-users,ou=groups,dc=example,dc=org"]
    assert config["MLHubLDAPAuthenticator"] == {
        "admin_groups": ["cn=hub-admins,ou=groups,dc=example,dc=org"],
        "login_rate_limit": 60,  # MLHUB_LOGIN_RATE_LIMIT
    }


def test_ldap_with_a_user_search(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {**LDAP, "MLHUB_LDAP_TLS": "ldaps", "MLHUB_LDAP_PORT": "1636", "MLHUB_LDAP_CA_FILE": str(ca)}
    del env["MLHUB_LDAP_BIND_DN_TEMPLATE"]
    env.update(
        MLHUB_LDAP_USER_SEARCH_BASE="ou=people,dc=example,dc=org",
        MLHUB_LDAP_USER_ATTRIBUTE="sAMAccountName",
        MLHUB_LDAP_SEARCH_USER="cn=reader,dc=example,dc=org",
        MLHUB_LDAP_SEARCH_PASSWORD="reader-pw",
    )
    ldap = authenticator_config(read(env), never_discover)["LDAPAuthenticator"]
    assert ldap["tls_strategy"] == "on_connect" and ldap["server_port"] == 1636
    assert ldap["tls_kwargs"]["ca_certs_file"] == str(ca)
    assert ldap["lookup_dn"] is True and ldap["user_search_base"] == "ou=people,dc=example,dc=org"
    assert ldap["user_attribute"] == ldap["lookup_dn_user_dn_attribute"] == "sAMAccountName"
    assert ldap["lookup_dn_search_user"] == "cn=reader,dc=example,dc=org"
    assert "bind_dn_template" not in ldap


@pytest.mark.parametrize(
    "env, name, fragment",
    [
        ({"MLHUB_AUTHENTICATOR": "saml"}, "MLHUB_AUTHENTICATOR", "native, github, gitlab, oidc, ldap"),
        (
            {"MLHUB_AUTHENTICATOR": "github"},
            "MLHUB_OAUTH_CLIENT_ID",
            "needed with MLHUB_AUTHENTICATOR=github",
        ),
        ({"MLHUB_AUTHENTICATOR": "github"}, "MLHUB_OAUTH_CLIENT_SECRET", "needed"),
        ({"MLHUB_AUTHENTICATOR": "github", **OAUTH}, "MLHUB_AUTH_ALLOW_ALL", "nobody could log in"),
        (
            {"MLHUB_AUTHENTICATOR": "oidc", **OAUTH, "MLHUB_AUTH_ALLOW_ALL": "1"},
            "MLHUB_OIDC_ISSUER",
            "needed",
        ),
        (
            {
                "MLHUB_AUTHENTICATOR": "oidc",
                **OAUTH,
                "MLHUB_OIDC_ISSUER": "https://i",
                "MLHUB_OIDC_TOKEN_URL": "https://t",
            },
            "MLHUB_OIDC_ISSUER",
            "not both",
        ),
        (
            {"MLHUB_AUTHENTICATOR": "oidc", "MLHUB_OIDC_ISSUER": "login.example.org"},
            "MLHUB_OIDC_ISSUER",
            "http://",
        ),
        (
            {"MLHUB_AUTHENTICATOR": "oidc", "MLHUB_OIDC_GROUPS_CLAIM": "a b"},
            "MLHUB_OIDC_GROUPS_CLAIM",
            "claim name",
        ),
        (
            {"MLHUB_AUTHENTICATOR": "gitlab", **OAUTH, "MLHUB_OAUTH_ADMIN_GROUPS": "x"},
            "MLHUB_OAUTH_ADMIN_GROUPS",
            "github or oidc",
        ),
        (
            {"MLHUB_LDAP_SERVER": "ldap.example.org"},
            "MLHUB_LDAP_SERVER",
            "only used with MLHUB_AUTHENTICATOR=ldap (it is native)",
        ),
        ({"MLHUB_ADMIN_USERS": "alice"}, "MLHUB_ADMIN_USERS", "(it is native)"),
        ({**LDAP, "MLHUB_OAUTH_CLIENT_ID": "x"}, "MLHUB_OAUTH_CLIENT_ID", "only used with"),
        ({**LDAP, "MLHUB_LDAP_SERVER": ""}, "MLHUB_LDAP_SERVER", "needed with MLHUB_AUTHENTICATOR=ldap"),
        ({**LDAP, "MLHUB_LDAP_SERVER": "ldap://ldap.example.org"}, "MLHUB_LDAP_SERVER", "no ldap://"),
        ({**LDAP, "MLHUB_LDAP_PORT": "0"}, "MLHUB_LDAP_PORT", "between 1 and 65535"),
        ({**LDAP, "MLHUB_LDAP_TLS": "yes"}, "MLHUB_LDAP_TLS", "starttls (default), ldaps or off"),
        ({**LDAP, "MLHUB_LDAP_CA_FILE": "/nonexistent.pem"}, "MLHUB_LDAP_CA_FILE", "existing file"),
        (
            {**LDAP, "MLHUB_LDAP_BIND_DN_TEMPLATE": "uid=alice,dc=x"},
            "MLHUB_LDAP_BIND_DN_TEMPLATE",
            "{username}",
        ),
        (
            {**LDAP, "MLHUB_LDAP_USER_SEARCH_BASE": "ou=people,dc=x"},
            "MLHUB_LDAP_BIND_DN_TEMPLATE",
            "exactly one of them",
        ),
        (
            {**LDAP, "MLHUB_LDAP_ALLOWED_GROUPS": "hub-users"},
            "MLHUB_LDAP_ALLOWED_GROUPS",
            "LDAP DNs separated by ';'",
        ),
        (
            {**LDAP, "MLHUB_LDAP_SEARCH_USER": "cn=reader,dc=x"},
            "MLHUB_LDAP_SEARCH_USER",
            "MLHUB_LDAP_SEARCH_PASSWORD",
        ),
        ({**LDAP, "MLHUB_LDAP_ALLOWED_GROUPS": ""}, "MLHUB_AUTH_ALLOW_ALL", "MLHUB_LDAP_ALLOWED_GROUPS"),
        ({**LDAP, "MLHUB_AUTH_ALLOW_ALL": "maybe"}, "MLHUB_AUTH_ALLOW_ALL", "true or false"),
    ],
)
def test_bad_identity_settings_name_the_variable(env, name, fragment):
    errors = errors_of(env)
    assert name in errors and fragment in errors[name], errors


def test_secrets_are_not_echoed_in_errors():
    errors = errors_of({"MLHUB_OAUTH_CLIENT_SECRET": "very-secret-value"})
    assert "very-secret-value" not in str(errors)


def test_ldap_dn_lists_are_separated_by_semicolons():
    settings = read({**LDAP, "MLHUB_LDAP_ADMIN_GROUPS": "cn=a,ou=g,dc=x; cn=b,ou=g,dc=x"})
    assert settings.identity.ldap_admin_groups == ("cn=a,ou=g,dc=x", "cn=b,ou=g,dc=x")


def test_every_identity_variable_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    assert [name for name in IDENTITY_VARIABLES if f"`{name}`" not in readme] == []


def test_every_authenticator_class_imports_and_oauth_ones_keep_their_state_cookie_safe():
    from traitlets.utils.importstring import import_item

    from mlhub.hub.identity import AUTHENTICATOR_CLASSES
    from mlhub.hub.oauth import MLHubOAuthCallbackHandler, MLHubOAuthLoginHandler, state_cookie_name

    for kind, path in AUTHENTICATOR_CLASSES.items():
        if kind == "native":
            continue
        cls = import_item(path)
        if kind != "ldap":
            assert (
                cls.login_handler is MLHubOAuthLoginHandler
                and cls.callback_handler is MLHubOAuthCallbackHandler
            )

    class Handler:
        def __init__(self, prefixed: bool) -> None:
            self.settings = {"cookie_host_prefix_enabled": prefixed}

    assert state_cookie_name(Handler(True)) == "__Host-oauthenticator-state"
    assert state_cookie_name(Handler(False)) == "oauthenticator-state"
