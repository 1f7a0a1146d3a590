"""From MLHub's identity settings (``MLHUB_AUTHENTICATOR`` and its variables, read and
validated by ``mlhub.core.settings``) to the authenticator's traitlets config.

``authenticator_config(settings)`` returns ``{section: {trait: value}}`` for
``jupyterhub_config.py`` to merge into its config; it chooses the authenticator class:

- ``native``: MLHub's NativeAuthenticator (sign-up, the admin authorizes; ``mlhub.hub.auth``);
- ``github``, ``gitlab``, ``oidc``: OAuthenticator's GitHub, GitLab and generic OAuth 2 /
  OpenID Connect authenticators (``mlhub.hub.oauth``: their state cookie is a ``__Host-``
  cookie under per-user origins over HTTPS), the OAuth callback on the hub's own host;
- ``ldap``: ``mlhub.hub.ldap_auth.MLHubLDAPAuthenticator`` (LDAPAuthenticator plus admin groups).

With an identity provider the provider decides who may log in (allowed groups, or everyone
with ``MLHUB_AUTH_ALLOW_ALL``) and who is admin (its admin groups, plus ``MLHUB_ADMIN_USERS``);
NativeAuthenticator's sign-up and authorization pages are not there at all.
See docs/decisions/authenticators.md.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from collections.abc import Callable
from typing import Any

from mlhub.core.settings import MIN_PASSWORD_LENGTH, HubSettings, IdentitySettings

#: authenticator_class for each MLHUB_AUTHENTICATOR value.
AUTHENTICATOR_CLASSES = {
    "native": "mlhub-native",
    # OAuthenticator's, with a __Host- state cookie under per-user origins (mlhub/hub/oauth.py)
    "github": "mlhub.hub.oauth.MLHubGitHubOAuthenticator",
    "gitlab": "mlhub.hub.oauth.MLHubGitLabOAuthenticator",
    "oidc": "mlhub.hub.oauth.MLHubGenericOAuthenticator",
    "ldap": "mlhub.hub.ldap_auth.MLHubLDAPAuthenticator",
}
_OAUTH_SECTIONS = {
    "github": "GitHubOAuthenticator",
    "gitlab": "GitLabOAuthenticator",
    "oidc": "GenericOAuthenticator",
}

Config = dict[str, dict[str, Any]]


class IdentityError(ValueError):
    """The identity provider's settings cannot be used; says which variable and why."""


def authenticator_config(
    settings: HubSettings,
    discover: Callable[[str], dict[str, Any]] | None = None,
) -> Config:
    """The authenticator's config for *settings*. ``discover`` fetches an OpenID issuer's
    discovery document (default: over HTTPS, see :func:`discover_oidc`)."""
    identity = settings.identity
    kind = identity.authenticator
    config: Config = {"JupyterHub": {"authenticator_class": AUTHENTICATOR_CLASSES[kind]}}
    if kind == "native":
        _native(config, settings)
    elif kind == "ldap":
        _ldap(config, identity, settings.login_rate_limit)
    else:
        _oauth(config, settings, discover or discover_oidc)
    return config


def _native(config: Config, settings: HubSettings) -> None:
    config["Authenticator"] = {
        "admin_users": {settings.admin_user},
        # NativeAuthenticator only lets authorized accounts log in; that is the allow list.
        "allow_all": True,
    }
    config["MLHubNativeAuthenticator"] = {
        "initial_admin_password": settings.admin_password,
        # Without MLHUB_ADMIN_PASSWORD the hub generates one there at first start (and logs where).
        "initial_admin_password_file": os.path.join(settings.data_dir, "initial-admin-password"),
        "login_rate_limit": settings.login_rate_limit,
    }
    config["NativeAuthenticator"] = {
        # NativeAuthenticator accepts 1-character passwords by default.
        "minimum_password_length": MIN_PASSWORD_LENGTH,
        # A name is locked for a while after repeated wrong passwords (0: never).
        "allowed_failed_logins": settings.login_max_failures,
        "seconds_before_next_try": settings.login_lockout_seconds,
    }


def _idp_common(identity: IdentitySettings) -> dict[str, Any]:
    # MLHUB_ADMIN_USER ("admin") is NativeAuthenticator's account: with a provider a name is
    # an admin only when listed in MLHUB_ADMIN_USERS (on GitHub anyone could be "admin").
    return {"admin_users": set(identity.admin_users), "allow_all": identity.allow_all}


def oauth_callback_url(settings: HubSettings) -> str:
    """MLHUB_OAUTH_CALLBACK_URL, or the hub's own host: <public URL>/hub/oauth_callback."""
    return settings.identity.oauth_callback_url or f"{settings.public_url}/hub/oauth_callback"


def _oauth(config: Config, settings: HubSettings, discover: Callable[[str], dict[str, Any]]) -> None:
    identity = settings.identity
    kind = identity.authenticator
    section = _OAUTH_SECTIONS[kind]
    traits: dict[str, Any] = {
        **_idp_common(identity),
        "client_id": identity.oauth_client_id,
        "client_secret": identity.oauth_client_secret,
        "oauth_callback_url": oauth_callback_url(settings),
    }
    if kind == "github":
        if identity.github_url:
            traits["github_url"] = identity.github_url
        if identity.oauth_allowed_groups:
            # "org" or "org:team"
            traits["allowed_organizations"] = set(identity.oauth_allowed_groups)
        scope = ["read:user"]
        if identity.oauth_allowed_groups or identity.oauth_admin_groups:
            scope.append("read:org")
        traits["scope"] = scope
        if identity.oauth_admin_groups:
            # admin groups are teams, "org:team-slug", read from the user's teams
            traits.update(
                populate_teams_in_auth_state=True,
                manage_groups=True,
                auth_state_groups_key=github_teams,
                admin_groups=set(identity.oauth_admin_groups),
            )
    elif kind == "gitlab":
        if identity.gitlab_url:
            traits["gitlab_url"] = identity.gitlab_url
        if identity.oauth_allowed_groups:
            traits["allowed_gitlab_groups"] = set(identity.oauth_allowed_groups)
        traits["scope"] = ["read_user", "read_api"] if identity.oauth_allowed_groups else ["read_user"]
    else:
        traits.update(_oidc_endpoints(identity, discover))
        traits.update(
            login_service="OpenID Connect",
            scope=list(identity.oidc_scopes),
            username_claim=identity.oidc_username_claim,
        )
        if identity.oauth_allowed_groups or identity.oauth_admin_groups:
            # groups from the userinfo claim (auth_state["oauth_user"]), JupyterHub groups follow them
            traits.update(
                manage_groups=True,
                auth_state_groups_key=f"oauth_user.{identity.oidc_groups_claim}",
                allowed_groups=set(identity.oauth_allowed_groups),
                admin_groups=set(identity.oauth_admin_groups),
            )
    config[section] = traits


def github_teams(auth_state: dict[str, Any]) -> list[str]:
    """The GitHub teams in *auth_state* (``populate_teams_in_auth_state``) as ``org:team-slug``."""
    return [
        f"{team['organization']['login']}:{team['slug']}"
        for team in auth_state.get("teams") or []
        if isinstance(team, dict) and team.get("slug") and team.get("organization")
    ]


def _oidc_endpoints(identity: IdentitySettings, discover: Callable[[str], dict[str, Any]]) -> dict[str, str]:
    if not identity.oidc_issuer:
        return {
            "authorize_url": identity.oidc_authorize_url,
            "token_url": identity.oidc_token_url,
            "userdata_url": identity.oidc_userdata_url,
        }
    document = discover(identity.oidc_issuer)
    wanted = {
        "authorize_url": "authorization_endpoint",
        "token_url": "token_endpoint",
        "userdata_url": "userinfo_endpoint",
    }
    missing = [key for key in wanted.values() if not isinstance(document.get(key), str)]
    if missing:
        raise IdentityError(
            f"MLHUB_OIDC_ISSUER: the discovery document of {identity.oidc_issuer} has no {', '.join(missing)}; "
            "set MLHUB_OIDC_AUTHORIZE_URL, MLHUB_OIDC_TOKEN_URL and MLHUB_OIDC_USERDATA_URL instead"
        )
    return {trait: document[key] for trait, key in wanted.items()}


def discover_oidc(issuer: str, timeout: float = 15) -> dict[str, Any]:
    """``<issuer>/.well-known/openid-configuration``, fetched once at start."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 (http(s) checked by settings)
            document = json.load(reply)
    except (OSError, ValueError) as exc:
        raise IdentityError(f"MLHUB_OIDC_ISSUER: could not read {url}: {exc}") from None
    if not isinstance(document, dict):
        raise IdentityError(f"MLHUB_OIDC_ISSUER: {url} is not an OpenID discovery document")
    return document


def _ldap(config: Config, identity: IdentitySettings, login_rate_limit: int) -> None:
    traits: dict[str, Any] = {
        **_idp_common(identity),
        "server_address": identity.ldap_server,
        "tls_strategy": identity.ldap_tls,
        # ldap3 does not check the server's certificate unless told to
        "tls_kwargs": {
            "validate": ssl.CERT_REQUIRED,
            **({"ca_certs_file": identity.ldap_ca_file} if identity.ldap_ca_file else {}),
        },
        "allowed_groups": list(identity.ldap_allowed_groups),
    }
    if identity.ldap_port:
        traits["server_port"] = identity.ldap_port
    if identity.ldap_bind_dn_templates:
        traits["bind_dn_template"] = list(identity.ldap_bind_dn_templates)
    else:
        traits.update(
            lookup_dn=True,
            user_search_base=identity.ldap_user_search_base,
            user_attribute=identity.ldap_user_attribute,
            lookup_dn_user_dn_attribute=identity.ldap_user_attribute,
        )
        if identity.ldap_search_user:
            traits.update(
                lookup_dn_search_user=identity.ldap_search_user,
                lookup_dn_search_password=identity.ldap_search_password,
            )
    config["LDAPAuthenticator"] = traits
    config["MLHubLDAPAuthenticator"] = {
        "admin_groups": list(identity.ldap_admin_groups),
        "login_rate_limit": login_rate_limit,
    }
