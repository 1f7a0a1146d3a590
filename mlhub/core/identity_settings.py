"""Who logs in: the authenticator and its identity provider's variables.

MLHUB_AUTHENTICATOR picks NativeAuthenticator (sign-up, admin authorizes) or an identity
provider (GitHub, GitLab, OpenID Connect, LDAP); :data:`IDENTITY_VARIABLES` is the part of the
settings table that applies per authenticator (docs/decisions/authenticators.md), read by
:func:`mlhub.core.settings.read_settings`; mlhub/hub/identity.py turns it into traitlets config.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlhub.core.parsing import parse_bool
from mlhub.core.setting_parsers import _existing_file, _host, _http_url, _int_range, _nonempty

# --- Who logs in: the authenticator and its identity provider ------------------------------
# One block (docs/decisions/authenticators.md): MLHUB_AUTHENTICATOR picks NativeAuthenticator
# (sign-up, admin authorizes) or an identity provider (GitHub, GitLab, OpenID Connect, LDAP);
# mlhub/hub/identity.py turns these settings into the authenticator's traitlets config.

#: MLHUB_AUTHENTICATOR's values; the first is the default.
AUTHENTICATORS = ("native", "github", "gitlab", "oidc", "ldap")
OAUTH_AUTHENTICATORS = ("github", "gitlab", "oidc")
#: MLHUB_LDAP_TLS's values -> LDAPAuthenticator.tls_strategy (its own names are accepted too).
LDAP_TLS_MODES = {"starttls": "before_bind", "ldaps": "on_connect", "off": "insecure"}


@dataclass(frozen=True)
class IdentitySettings:
    authenticator: str = "native"
    admin_users: tuple[str, ...] = ()
    allow_all: bool = False
    # OAuth 2 / OpenID Connect (github, gitlab, oidc)
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_callback_url: str = ""  # empty: <public URL>/hub/oauth_callback
    oauth_allowed_groups: tuple[str, ...] = ()
    oauth_admin_groups: tuple[str, ...] = ()
    github_url: str = ""  # empty: https://github.com
    gitlab_url: str = ""  # empty: https://gitlab.com
    oidc_issuer: str = ""
    oidc_authorize_url: str = ""
    oidc_token_url: str = ""
    oidc_userdata_url: str = ""
    oidc_scopes: tuple[str, ...] = ("openid", "profile", "email")
    oidc_username_claim: str = "preferred_username"
    oidc_groups_claim: str = "groups"
    # LDAP
    ldap_server: str = ""
    ldap_port: int = 0  # 0: 636 with ldaps, else 389
    ldap_tls: str = "before_bind"
    ldap_ca_file: str = ""
    ldap_bind_dn_templates: tuple[str, ...] = ()
    ldap_user_search_base: str = ""
    ldap_user_attribute: str = "uid"
    ldap_search_user: str = ""
    ldap_search_password: str = ""
    ldap_allowed_groups: tuple[str, ...] = ()
    ldap_admin_groups: tuple[str, ...] = ()

    @property
    def native(self) -> bool:
        return self.authenticator == "native"


def _authenticator(text: str) -> str:
    value = text.strip().lower()
    if value not in AUTHENTICATORS:
        raise ValueError(f"must be one of {', '.join(AUTHENTICATORS)}")
    return value


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("must be a comma-separated list of names")
    return names


def _dns(text: str) -> tuple[str, ...]:
    """LDAP DNs hold commas, so a list of them is separated by ';'."""
    dns = tuple(part.strip() for part in text.split(";") if part.strip())
    if not dns or not all("=" in dn for dn in dns):
        raise ValueError(
            "must be one or more LDAP DNs separated by ';', e.g. cn=hub-users,ou=groups,dc=example,dc=org"
        )
    return dns


def _dn(text: str) -> str:
    dns = _dns(text)
    if len(dns) != 1:
        raise ValueError("must be one LDAP DN, e.g. ou=people,dc=example,dc=org")
    return dns[0]


def _bind_dn_templates(text: str) -> tuple[str, ...]:
    templates = _dns(text)
    if not all("{username}" in t for t in templates):
        raise ValueError(
            "each DN template must contain {username}, e.g. uid={username},ou=people,dc=example,dc=org"
        )
    return templates


def _ldap_tls(text: str) -> str:
    value = text.strip().lower()
    if value in LDAP_TLS_MODES:
        return LDAP_TLS_MODES[value]
    if value in LDAP_TLS_MODES.values():
        return value
    raise ValueError("must be starttls (default), ldaps or off")


def _scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(text.replace(",", " ").split())
    if not scopes:
        raise ValueError("must be scopes separated by spaces, e.g. openid profile email groups")
    return scopes


def _claim(text: str) -> str:
    text = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_:.\-/]+", text):
        raise ValueError("must be a claim name (letters, digits, _ : . - /; '.' for nested claims)")
    return text


def _ldap_host(text: str) -> str:
    text = text.strip()
    if "://" in text:
        raise ValueError(
            "must be the LDAP server's host name or IP address (no ldap://; port: MLHUB_LDAP_PORT)"
        )
    return _host(text)


# variable -> (IdentitySettings field, parser, the authenticators it applies to)
IDENTITY_VARIABLES: dict[str, tuple[str, Callable[[str], Any], tuple[str, ...]]] = {
    "MLHUB_AUTHENTICATOR": ("authenticator", _authenticator, AUTHENTICATORS),
    "MLHUB_ADMIN_USERS": ("admin_users", _names, AUTHENTICATORS[1:]),
    "MLHUB_AUTH_ALLOW_ALL": ("allow_all", parse_bool, AUTHENTICATORS[1:]),
    "MLHUB_OAUTH_CLIENT_ID": ("oauth_client_id", _nonempty, OAUTH_AUTHENTICATORS),
    "MLHUB_OAUTH_CLIENT_SECRET": ("oauth_client_secret", _nonempty, OAUTH_AUTHENTICATORS),
    "MLHUB_OAUTH_CALLBACK_URL": ("oauth_callback_url", _http_url, OAUTH_AUTHENTICATORS),
    "MLHUB_OAUTH_ALLOWED_GROUPS": ("oauth_allowed_groups", _names, OAUTH_AUTHENTICATORS),
    "MLHUB_OAUTH_ADMIN_GROUPS": ("oauth_admin_groups", _names, ("github", "oidc")),
    "MLHUB_GITHUB_URL": ("github_url", _http_url, ("github",)),
    "MLHUB_GITLAB_URL": ("gitlab_url", _http_url, ("gitlab",)),
    "MLHUB_OIDC_ISSUER": ("oidc_issuer", _http_url, ("oidc",)),
    "MLHUB_OIDC_AUTHORIZE_URL": ("oidc_authorize_url", _http_url, ("oidc",)),
    "MLHUB_OIDC_TOKEN_URL": ("oidc_token_url", _http_url, ("oidc",)),
    "MLHUB_OIDC_USERDATA_URL": ("oidc_userdata_url", _http_url, ("oidc",)),
    "MLHUB_OIDC_SCOPES": ("oidc_scopes", _scopes, ("oidc",)),
    "MLHUB_OIDC_USERNAME_CLAIM": ("oidc_username_claim", _claim, ("oidc",)),
    "MLHUB_OIDC_GROUPS_CLAIM": ("oidc_groups_claim", _claim, ("oidc",)),
    "MLHUB_LDAP_SERVER": ("ldap_server", _ldap_host, ("ldap",)),
    "MLHUB_LDAP_PORT": ("ldap_port", _int_range(1, 65535), ("ldap",)),
    "MLHUB_LDAP_TLS": ("ldap_tls", _ldap_tls, ("ldap",)),
    "MLHUB_LDAP_CA_FILE": ("ldap_ca_file", _existing_file, ("ldap",)),
    "MLHUB_LDAP_BIND_DN_TEMPLATE": ("ldap_bind_dn_templates", _bind_dn_templates, ("ldap",)),
    "MLHUB_LDAP_USER_SEARCH_BASE": ("ldap_user_search_base", _dn, ("ldap",)),
    "MLHUB_LDAP_USER_ATTRIBUTE": ("ldap_user_attribute", _claim, ("ldap",)),
    "MLHUB_LDAP_SEARCH_USER": ("ldap_search_user", _nonempty, ("ldap",)),
    "MLHUB_LDAP_SEARCH_PASSWORD": ("ldap_search_password", _nonempty, ("ldap",)),
    "MLHUB_LDAP_ALLOWED_GROUPS": ("ldap_allowed_groups", _dns, ("ldap",)),
    "MLHUB_LDAP_ADMIN_GROUPS": ("ldap_admin_groups", _dns, ("ldap",)),
}


def read_identity_settings(environ: Mapping[str, str], errors: dict[str, str]) -> IdentitySettings:
    """The authenticator and its identity provider's settings; problems go into *errors*
    (variable -> what it allows), as read_settings does for the others."""
    values: dict[str, Any] = {}
    given: list[str] = []
    for name, (attr, parse, _) in IDENTITY_VARIABLES.items():
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        given.append(name)
        try:
            values[attr] = parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if "SECRET" in name or "PASSWORD" in name else repr(raw[:60])
            errors[name] = f"{exc} (got {shown})"
    identity = IdentitySettings(**values)
    kind = identity.authenticator
    for name in given:
        applies_to = IDENTITY_VARIABLES[name][2]
        if kind not in applies_to and name not in errors:
            errors[name] = f"is only used with MLHUB_AUTHENTICATOR={' or '.join(applies_to)} (it is {kind})"
    if kind == "native" or "MLHUB_AUTHENTICATOR" in errors:
        return identity
    missing = []
    if kind in OAUTH_AUTHENTICATORS:
        missing += [
            n
            for n, v in (
                ("MLHUB_OAUTH_CLIENT_ID", identity.oauth_client_id),
                ("MLHUB_OAUTH_CLIENT_SECRET", identity.oauth_client_secret),
            )
            if not v
        ]
    if kind == "oidc" and "MLHUB_OIDC_ISSUER" not in errors:
        endpoints = (identity.oidc_authorize_url, identity.oidc_token_url, identity.oidc_userdata_url)
        if identity.oidc_issuer and any(endpoints):
            errors["MLHUB_OIDC_ISSUER"] = (
                "set either the issuer (its endpoints are discovered) or MLHUB_OIDC_AUTHORIZE_URL, "
                "MLHUB_OIDC_TOKEN_URL and MLHUB_OIDC_USERDATA_URL, not both"
            )
        elif not identity.oidc_issuer and not all(endpoints):
            errors["MLHUB_OIDC_ISSUER"] = (
                "needed with MLHUB_AUTHENTICATOR=oidc (e.g. https://login.example.org/realms/lab), "
                "unless MLHUB_OIDC_AUTHORIZE_URL, MLHUB_OIDC_TOKEN_URL and MLHUB_OIDC_USERDATA_URL are all set"
            )
    if kind == "ldap":
        if not identity.ldap_server:
            missing.append("MLHUB_LDAP_SERVER")
        if bool(identity.ldap_bind_dn_templates) == bool(identity.ldap_user_search_base):
            errors["MLHUB_LDAP_BIND_DN_TEMPLATE"] = (
                "set either this (users bind as uid={username},ou=people,...) or MLHUB_LDAP_USER_SEARCH_BASE "
                "(the user's DN is looked up by MLHUB_LDAP_USER_ATTRIBUTE), exactly one of them"
            )
        if bool(identity.ldap_search_user) != bool(identity.ldap_search_password):
            errors["MLHUB_LDAP_SEARCH_USER"] = "needs MLHUB_LDAP_SEARCH_PASSWORD, and the other way round"
    for name in missing:
        errors.setdefault(name, f"needed with MLHUB_AUTHENTICATOR={kind}")
    allowed = identity.ldap_allowed_groups if kind == "ldap" else identity.oauth_allowed_groups
    admins = identity.ldap_admin_groups if kind == "ldap" else identity.oauth_admin_groups
    if not (identity.allow_all or allowed or admins or identity.admin_users):
        prefix = "MLHUB_LDAP" if kind == "ldap" else "MLHUB_OAUTH"
        errors.setdefault(
            "MLHUB_AUTH_ALLOW_ALL",
            f"nobody could log in: set {prefix}_ALLOWED_GROUPS (who may log in), or MLHUB_AUTH_ALLOW_ALL=true "
            f"(every account of the identity provider), or {prefix}_ADMIN_GROUPS / MLHUB_ADMIN_USERS",
        )
    return identity
