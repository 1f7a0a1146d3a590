"""The hub container (`docker run ... mlhub/mlhub`, as the README installs it) with an identity
provider: LDAP logins against a real slapd and an OpenID Connect login against a real provider
(oidc-provider-mock). Both run on the engine's bridge gateway, an address of this host that the
hub in its container reaches, and that the test's browser reaches at the same URL (the OIDC
issuer must be the same for both)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
import requests

from devtools.hubprocess import free_port
from mlhub.engines.docker_network import default_bridge_gateway
from tests.support.hub_container import HUB_IMAGE, HubContainer
from tests.support.oidc import OIDCProvider, running_oidc_provider
from tests.support.slapd import GROUPS, PEOPLE, Slapd, available, running_slapd
from tests.support.web import login, new_session, post_login

PASSWORDS = {"alice": "alice-LDAP-pw", "bob": "bob-LDAP-pw", "carol": "carol-LDAP-pw"}
CLAIMS = {
    "alice-sub": {"preferred_username": "alice", "groups": ["hub-users"]},
    "carol-sub": {"preferred_username": "carol", "groups": ["hub-admins"]},
    "bob-sub": {"preferred_username": "bob", "groups": ["other"]},
}


@pytest.fixture(scope="module")
def gateway(docker_client: docker.DockerClient) -> str:
    """The default bridge's gateway: this host as the hub container sees it."""
    try:
        docker_client.images.get(HUB_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{HUB_IMAGE} is missing; build it with docker/build-images.sh --hub")
    return default_bridge_gateway(docker_client.networks.get("bridge").attrs)


def whoami(hub: HubContainer, session: requests.Session) -> dict:
    reply = session.get(f"{hub.url}/hub/api/user", timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def assert_no_password_accounts(hub: HubContainer) -> None:
    """With an identity provider the container sets up no admin password, and NativeAuthenticator's
    sign-up is gone."""
    listing = hub.container.exec_run(["ls", "/data"]).output.decode().split()
    assert "jupyterhub.sqlite" in listing and "initial-admin-password" not in listing, listing
    assert "initial-admin-password" not in hub.logs()
    assert new_session().get(f"{hub.url}/hub/signup", timeout=30).status_code == 404


@pytest.fixture(scope="module")
def slapd(gateway: str, tmp_path_factory) -> Iterator[Slapd]:
    if reason := available():
        pytest.skip(reason)
    with running_slapd(tmp_path_factory.mktemp("slapd"), host=gateway) as server:
        dns = {name: server.add_user(name, password) for name, password in PASSWORDS.items()}
        server.add_group("hub-users", [dns["alice"]])
        server.add_group("hub-admins", [dns["carol"]])
        yield server


@pytest.fixture(scope="module")
def ldap_hub(docker_client: docker.DockerClient, slapd: Slapd) -> Iterator[HubContainer]:
    hub = HubContainer(
        docker_client,
        env={
            "MLHUB_AUTHENTICATOR": "ldap",
            "MLHUB_LDAP_SERVER": slapd.host,
            "MLHUB_LDAP_PORT": str(slapd.port),
            "MLHUB_LDAP_TLS": "off",
            "MLHUB_LDAP_BIND_DN_TEMPLATE": f"uid={{username}},{PEOPLE}",
            "MLHUB_LDAP_ALLOWED_GROUPS": f"cn=hub-users,{GROUPS}",
            "MLHUB_LDAP_ADMIN_GROUPS": f"cn=hub-admins,{GROUPS}",
        },
    )
    try:
        yield hub
    finally:
        hub.remove()


def test_ldap_logins_in_the_hub_container(
    ldap_hub: HubContainer, slapd: Slapd, docker_client: docker.DockerClient
) -> None:
    hub = ldap_hub
    assert_no_password_accounts(hub)
    alice = login(hub.url, "alice", PASSWORDS["alice"])
    assert whoami(hub, alice)["admin"] is False
    carol = login(hub.url, "carol", PASSWORDS["carol"])
    assert whoami(hub, carol)["admin"] is True
    assert carol.get(f"{hub.url}/hub/admin", timeout=30).status_code == 200
    for name, password in (("bob", PASSWORDS["bob"]), ("alice", "not-her-password")):
        _, refused = post_login(hub.url, name, password)
        assert refused.status_code != 302 and "Invalid username or password" in refused.text
    # the directory's user gets her workspace from the hub in its container
    started = alice.post(f"{hub.url}/hub/api/users/alice/server", json={}, timeout=60)
    assert started.status_code in (201, 202), started.text
    (workspace,) = docker_client.containers.list(
        filters={"label": [f"mlhub.origin={hub.hub_name}", "mlhub.user=alice"]}
    )
    assert workspace.status in ("created", "running")
    assert alice.delete(f"{hub.url}/hub/api/users/alice/server", timeout=60).status_code in (202, 204)
    # slapd saw alice's bind come from the hub's container
    hub.container.reload()
    address = hub.container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    log = (slapd.workdir / "slapd.log").read_text()
    assert f"ACCEPT from IP={address}:" in log and f'BIND dn="uid=alice,{PEOPLE}"' in log


@pytest.fixture(scope="module")
def provider(gateway: str, tmp_path_factory) -> Iterator[OIDCProvider]:
    with running_oidc_provider(tmp_path_factory.mktemp("oidc"), host=gateway) as server:
        for sub, claims in CLAIMS.items():
            server.set_user(sub, claims)
        yield server


@pytest.fixture(scope="module")
def oidc_hub(docker_client: docker.DockerClient, provider: OIDCProvider) -> Iterator[HubContainer]:
    """The hub's client is registered for exactly the callback the hub derives from its public
    URL, so the port is chosen before the container starts."""
    port = free_port()
    client_id, secret = provider.register_client(f"http://localhost:{port}/hub/oauth_callback")
    hub = HubContainer(
        docker_client,
        env={
            "MLHUB_AUTHENTICATOR": "oidc",
            "MLHUB_OIDC_ISSUER": provider.issuer,
            "MLHUB_OAUTH_CLIENT_ID": client_id,
            "MLHUB_OAUTH_CLIENT_SECRET": secret,
            "MLHUB_OAUTH_ALLOWED_GROUPS": "hub-users",
            "MLHUB_OAUTH_ADMIN_GROUPS": "hub-admins",
        },
        port=port,
    )
    try:
        yield hub
    finally:
        hub.remove()


def test_oidc_logins_in_the_hub_container(oidc_hub: HubContainer, provider: OIDCProvider) -> None:
    hub = oidc_hub
    assert_no_password_accounts(hub)
    alice, done = provider.login(hub.url, "alice-sub")
    assert done.status_code == 302 and done.headers["Location"].endswith("/hub/home"), done.text
    assert whoami(hub, alice)["name"] == "alice" and whoami(hub, alice)["admin"] is False
    carol, _ = provider.login(hub.url, "carol-sub")
    assert whoami(hub, carol)["admin"] is True
    assert carol.get(f"{hub.url}/hub/admin", timeout=30).status_code == 200
    bob, refused = provider.login(hub.url, "bob-sub")
    assert refused.status_code == 403, refused.status_code
    assert bob.get(f"{hub.url}/hub/api/user", timeout=30).status_code == 403
    # the hub container itself redeemed the code at the token endpoint, over the bridge
    hub.container.reload()
    address = hub.container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    log = provider.log_path.read_text()
    assert "POST /oauth2/token" in log and address in log, log[-2000:]
