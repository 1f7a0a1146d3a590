"""MLHUB_AUTHENTICATOR=oidc against a real OpenID Connect provider (oidc-provider-mock in its
own process): discovery, the authorization-code flow with the callback on the hub's host,
who may log in and who is admin from the provider's groups claim; bad settings stop the hub."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
import requests

from devtools import loopback
from devtools.hubprocess import HubProcess, free_port, new_hub_name, remove_test_objects
from mlhub.hub.container import ensure_certificate
from tests.support.oidc import OIDCProvider, running_oidc_provider
from tests.support.web import new_session

USERS = {
    "alice-sub": {"preferred_username": "alice", "email": "alice@example.org", "groups": ["hub-users"]},
    "carol-sub": {
        "preferred_username": "carol",
        "email": "carol@example.org",
        "groups": ["hub-admins", "ml"],
    },
    "bob-sub": {"preferred_username": "bob", "email": "bob@example.org", "groups": ["other"]},
    "dave-sub": {"preferred_username": "dave", "email": "dave@example.org"},
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[OIDCProvider]:
    with running_oidc_provider(tmp_path_factory.mktemp("oidc")) as server:
        for sub, claims in USERS.items():
            server.set_user(sub, claims)
        yield server


def oidc_env(provider: OIDCProvider, client: tuple[str, str], **extra: str) -> dict[str, str]:
    return {
        "MLHUB_AUTHENTICATOR": "oidc",
        "MLHUB_OIDC_ISSUER": provider.issuer,
        "MLHUB_OAUTH_CLIENT_ID": client[0],
        "MLHUB_OAUTH_CLIENT_SECRET": client[1],
        "MLHUB_OAUTH_ALLOWED_GROUPS": "hub-users",
        "MLHUB_OAUTH_ADMIN_GROUPS": "hub-admins",
        "START_SSH": "false",
        **extra,
    }


@pytest.fixture(scope="module")
def oidc_hub(
    provider: OIDCProvider, docker_client: docker.DockerClient, tmp_path_factory
) -> Iterator[HubProcess]:
    """The hub's client is registered with the provider for exactly the callback the hub
    derives from its public URL (the provider refuses any other redirect URI)."""
    name = new_hub_name()
    hub = HubProcess(tmp_path_factory.mktemp(name), name)
    client = provider.register_client(f"{hub.url}/hub/oauth_callback")
    hub.env.update(oidc_env(provider, client))
    try:
        yield hub.start()
    finally:
        hub.stop()
        remove_test_objects(docker_client, hub.hub_name)


def whoami(hub: HubProcess, session: requests.Session) -> requests.Response:
    return session.get(f"{hub.url}/hub/api/user", timeout=30)


def test_a_member_of_the_allowed_group_logs_in_and_is_no_admin(
    oidc_hub: HubProcess, provider: OIDCProvider
) -> None:
    session, done = provider.login(oidc_hub.url, "alice-sub")
    assert done.status_code == 302 and done.headers["Location"].endswith("/hub/home"), done.text
    me = whoami(oidc_hub, session)
    assert me.status_code == 200 and me.json()["name"] == "alice" and me.json()["admin"] is False
    assert session.get(f"{oidc_hub.url}/hub/admin", timeout=30).status_code == 403
    assert session.get(f"{oidc_hub.url}/hub/home", timeout=30).status_code == 200
    # the provider issued the code, and the hub redeemed it at the token endpoint
    log = provider.log_path.read_text()
    assert "issued authorization code" in log and "POST /oauth2/token" in log


def test_a_member_of_the_admin_group_is_admin_and_hub_groups_follow(
    oidc_hub: HubProcess, provider: OIDCProvider
) -> None:
    session, done = provider.login(oidc_hub.url, "carol-sub")
    assert done.status_code == 302
    me = whoami(oidc_hub, session)
    assert me.json()["name"] == "carol" and me.json()["admin"] is True
    assert session.get(f"{oidc_hub.url}/hub/admin", timeout=30).status_code == 200
    assert sorted(me.json()["groups"]) == ["hub-admins", "ml"]


def test_admin_rights_follow_the_groups_claim_at_the_next_login(
    oidc_hub: HubProcess, provider: OIDCProvider
) -> None:
    provider.set_user("erin-sub", {"preferred_username": "erin", "groups": ["hub-users", "hub-admins"]})
    session, _ = provider.login(oidc_hub.url, "erin-sub")
    assert whoami(oidc_hub, session).json()["admin"] is True
    provider.set_user("erin-sub", {"preferred_username": "erin", "groups": ["hub-users"]})
    session, _ = provider.login(oidc_hub.url, "erin-sub")
    assert whoami(oidc_hub, session).json()["admin"] is False


def test_accounts_outside_the_allowed_groups_are_refused(
    oidc_hub: HubProcess, provider: OIDCProvider
) -> None:
    for sub in ("bob-sub", "dave-sub"):  # another group; no groups claim at all
        session, done = provider.login(oidc_hub.url, sub)
        assert done.status_code == 403, (sub, done.status_code)
        assert whoami(oidc_hub, session).status_code == 403
    assert "User 'bob' not allowed" in oidc_hub.log_tail(400)


def test_no_sign_up_and_no_authorize_page_with_a_provider(
    oidc_hub: HubProcess, provider: OIDCProvider
) -> None:
    page = requests.get(f"{oidc_hub.url}/hub/login", timeout=30)
    assert "Sign in with OpenID Connect" in page.text
    assert "signup" not in page.text and 'name="password"' not in page.text
    assert requests.get(f"{oidc_hub.url}/hub/signup", timeout=30).status_code == 404
    session, _ = provider.login(oidc_hub.url, "carol-sub")
    assert session.get(f"{oidc_hub.url}/hub/authorize", timeout=30).status_code == 404
    home = session.get(f"{oidc_hub.url}/hub/home", timeout=30)
    assert 'id="nav-authorize"' not in home.text and "change-password" not in home.text
    assert oidc_hub.api("GET", "/users/admin").status_code == 404


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"MLHUB_OIDC_ISSUER": "http://127.0.0.1:{closed}"},
            "MLHUB_OIDC_ISSUER: could not read http://127.0.0.1:",
        ),
        (
            {"MLHUB_OAUTH_CLIENT_SECRET": ""},
            "MLHUB_OAUTH_CLIENT_SECRET: needed with MLHUB_AUTHENTICATOR=oidc",
        ),
        (
            {"MLHUB_OAUTH_ALLOWED_GROUPS": "", "MLHUB_OAUTH_ADMIN_GROUPS": ""},
            "MLHUB_AUTH_ALLOW_ALL: nobody could log in",
        ),
        (
            {"MLHUB_LDAP_SERVER": "ldap.example.org"},
            "MLHUB_LDAP_SERVER: is only used with MLHUB_AUTHENTICATOR=ldap",
        ),
        (
            {"MLHUB_AUTHENTICATOR": "saml"},
            "MLHUB_AUTHENTICATOR: must be one of native, github, gitlab, oidc, ldap",
        ),
    ],
)
def test_bad_settings_stop_the_hub_naming_the_variable(
    provider: OIDCProvider, tmp_path_factory, env: dict[str, str], message: str
) -> None:
    name = new_hub_name()
    settings = {k: v.format(closed=free_port()) for k, v in env.items()}
    hub = HubProcess(
        tmp_path_factory.mktemp(name), name, env=oidc_env(provider, ("hub", "s3cret"), **settings)
    )
    with pytest.raises(RuntimeError, match="hub exited") as info:
        hub.start()
    hub.stop()
    assert message in str(info.value) or message in hub.log_path.read_text()


@pytest.fixture(scope="module")
def https_oidc_hub(
    provider: OIDCProvider, docker_client: docker.DockerClient, tmp_path_factory
) -> Iterator[HubProcess]:
    """The hub on https://mlhub.test:<port> with per-user origins (users on *.mlhub.test)."""
    cert, key = ensure_certificate(tmp_path_factory.mktemp("tls"), loopback.TEST_DOMAIN)
    name = new_hub_name()
    tls = {"SSL_ENABLED": "true", "MLHUB_SSL_CERT": cert, "MLHUB_SSL_KEY": key}
    hub = HubProcess(
        tmp_path_factory.mktemp(name), name, env={**tls, "MLHUB_TEST_HOST": loopback.TEST_DOMAIN}
    )
    assert hub.url.startswith(f"https://{loopback.TEST_DOMAIN}:")
    client = provider.register_client(f"{hub.url}/hub/oauth_callback")
    hub.env.update(oidc_env(provider, client))
    try:
        yield hub.start()
    finally:
        hub.stop()
        remove_test_objects(docker_client, hub.hub_name)


def test_a_tossed_state_cookie_does_not_log_the_victim_in_as_the_attacker(
    https_oidc_hub: HubProcess, provider: OIDCProvider
) -> None:
    """Login CSRF by cookie tossing. Mallory starts a login in her own browser and stops at the
    provider's redirect: she holds a signed state cookie and a fresh code for her account. Her
    workspace's page on mallory.mlhub.test sets that cookie for the whole domain
    (``Set-Cookie: oauthenticator-state=...; Domain=mlhub.test``, which browsers accept from a
    sibling origin) and sends the victim to the hub's callback with her code and state. The
    victim must not end up logged in as mallory (working, uploading, typing secrets into her
    account). Over HTTPS with per-user origins the state cookie must be a ``__Host-`` cookie,
    which no sibling origin can set."""
    hub = https_oidc_hub
    provider.set_user("mallory-sub", {"preferred_username": "mallory", "groups": ["hub-users"]})
    mallory = new_session(verify=False)
    start = mallory.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    assert start.status_code == 302
    state_cookies = {c.name: c.value for c in mallory.cookies if "oauthenticator-state" in c.name}
    assert len(state_cookies) == 1, state_cookies
    ((state_name, state_value),) = state_cookies.items()
    back = mallory.post(
        start.headers["Location"], data={"sub": "mallory-sub"}, allow_redirects=False, timeout=30
    )
    callback = back.headers["Location"]
    assert callback.startswith(f"{hub.url}/hub/oauth_callback?code=")

    # what the victim's browser holds after mallory's page ran: her cookie, for the domain
    victim = new_session(verify=False)
    victim.cookies.set(
        "oauthenticator-state", state_value, domain=f".{loopback.TEST_DOMAIN}", path="/", secure=True
    )
    landed = victim.get(callback, allow_redirects=False, timeout=30)
    me = victim.get(f"{hub.url}/hub/api/user", timeout=30)
    assert me.status_code == 403 and landed.status_code != 302, (landed.status_code, me.text[:200])
    # the hub's own state cookie is one that only the hub's host can set
    assert state_name == "__Host-oauthenticator-state"


def test_login_over_https_with_per_user_origins(https_oidc_hub: HubProcess, provider: OIDCProvider) -> None:
    session = new_session(verify=False)
    start = session.get(f"{https_oidc_hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    back = session.post(
        start.headers["Location"], data={"sub": "carol-sub"}, allow_redirects=False, timeout=30
    )
    done = session.get(back.headers["Location"], allow_redirects=False, timeout=30)
    assert done.status_code == 302, done.text[:300]
    me = session.get(f"{https_oidc_hub.url}/hub/api/user", timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "carol" and me.json()["admin"] is True
