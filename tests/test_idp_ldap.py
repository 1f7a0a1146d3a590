"""MLHUB_AUTHENTICATOR=ldap against a real OpenLDAP server (slapd): who may log in, who is
admin (LDAP groups), and that NativeAuthenticator's sign-up is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.hubprocess import HubProcess
from tests.support.slapd import GROUPS, PEOPLE, SUFFIX, Slapd, available, make_certificates, running_slapd
from tests.support.web import login, post_login

pytestmark = pytest.mark.skipif(available() is not None, reason=available() or "")

PASSWORDS = {"alice": "alice-LDAP-pw", "bob": "bob-LDAP-pw", "carol": "carol-LDAP-pw", "dave": "dave-LDAP-pw"}


@pytest.fixture(scope="module")
def slapd(tmp_path_factory) -> Iterator[Slapd]:
    """alice: in hub-users; carol: in hub-admins only; bob and dave: in no group of the hub
    (dave is in a group the hub does not know)."""
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        dns = {name: server.add_user(name, password) for name, password in PASSWORDS.items()}
        server.add_group("hub-users", [dns["alice"]])
        server.add_group("hub-admins", [dns["carol"]])
        server.add_group("other", [dns["dave"]])
        yield server


def ldap_env(slapd: Slapd, **extra: str) -> dict[str, str]:
    return {
        "MLHUB_AUTHENTICATOR": "ldap",
        "MLHUB_LDAP_SERVER": slapd.host,
        "MLHUB_LDAP_PORT": str(slapd.port),
        "MLHUB_LDAP_TLS": "off",
        "MLHUB_LDAP_ALLOWED_GROUPS": f"cn=hub-users,{GROUPS}",
        "MLHUB_LDAP_ADMIN_GROUPS": f"cn=hub-admins,{GROUPS}",
        "START_SSH": "false",
        **extra,
    }


@pytest.fixture(scope="module")
def ldap_hub(hub_factory, slapd: Slapd) -> HubProcess:
    return hub_factory(env=ldap_env(slapd, MLHUB_LDAP_BIND_DN_TEMPLATE=f"uid={{username}},{PEOPLE}"))


def is_admin(hub: HubProcess, name: str) -> bool:
    reply = hub.api("GET", f"/users/{name}")
    assert reply.status_code == 200, reply.text
    return bool(reply.json()["admin"])


def refused(hub: HubProcess, name: str, password: str) -> bool:
    _, reply = post_login(hub.url, name, password)
    return reply.status_code != 302 and "Invalid username or password" in reply.text


def test_a_member_of_the_allowed_group_logs_in_and_is_no_admin(ldap_hub: HubProcess) -> None:
    session = login(ldap_hub.url, "alice", PASSWORDS["alice"])
    me = session.get(f"{ldap_hub.url}/hub/api/user", timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "alice"
    assert me.json()["admin"] is False
    assert session.get(f"{ldap_hub.url}/hub/admin", timeout=30).status_code == 403


def test_wrong_password_and_strangers_are_refused(ldap_hub: HubProcess, slapd: Slapd) -> None:
    assert refused(ldap_hub, "alice", "not-her-password")
    assert refused(ldap_hub, "bob", PASSWORDS["bob"])  # in the directory, in no group of the hub
    assert refused(ldap_hub, "dave", PASSWORDS["dave"])  # in a group the hub does not allow
    assert refused(ldap_hub, "nobody", "whatever-pw")
    assert refused(ldap_hub, "alice", "")
    # the directory saw the binds: the hub really asked it
    log = (slapd.workdir / "slapd.log").read_text()
    assert f'BIND dn="uid=alice,{PEOPLE}"' in log and f'BIND dn="uid=bob,{PEOPLE}"' in log
    assert "User 'bob' not allowed" in ldap_hub.log_tail(400)


def test_a_member_of_the_admin_group_is_admin(ldap_hub: HubProcess) -> None:
    session = login(ldap_hub.url, "carol", PASSWORDS["carol"])
    me = session.get(f"{ldap_hub.url}/hub/api/user", timeout=30)
    assert me.status_code == 200 and me.json()["admin"] is True
    assert session.get(f"{ldap_hub.url}/hub/admin", timeout=30).status_code == 200
    assert is_admin(ldap_hub, "carol")


def test_admin_rights_follow_the_group_at_the_next_login(ldap_hub: HubProcess, slapd: Slapd) -> None:
    """Leaving the admin group takes the rights away at the next login; joining gives them."""
    login(ldap_hub.url, "alice", PASSWORDS["alice"])
    assert not is_admin(ldap_hub, "alice")
    modify = f"dn: cn=hub-admins,{GROUPS}\nchangetype: modify\n"
    slapd.add(modify + f"add: member\nmember: uid=alice,{PEOPLE}\n")
    login(ldap_hub.url, "alice", PASSWORDS["alice"])
    assert is_admin(ldap_hub, "alice")
    slapd.add(modify + f"delete: member\nmember: uid=alice,{PEOPLE}\n")
    login(ldap_hub.url, "alice", PASSWORDS["alice"])
    assert not is_admin(ldap_hub, "alice")


def test_no_sign_up_and_no_authorize_page_with_ldap(ldap_hub: HubProcess) -> None:
    login_page = post_login(ldap_hub.url, "x", "y")[0].get(f"{ldap_hub.url}/hub/login", timeout=30)
    assert "signup" not in login_page.text and "Sign up" not in login_page.text
    assert ldap_hub.api("GET", "/").status_code == 200
    anonymous = post_login(ldap_hub.url, "x", "y")[0]
    assert anonymous.get(f"{ldap_hub.url}/hub/signup", timeout=30).status_code == 404
    carol = login(ldap_hub.url, "carol", PASSWORDS["carol"])
    assert carol.get(f"{ldap_hub.url}/hub/authorize", timeout=30).status_code == 404
    assert carol.get(f"{ldap_hub.url}/hub/change-password", timeout=30).status_code == 404
    home = carol.get(f"{ldap_hub.url}/hub/home", timeout=30)
    assert home.status_code == 200
    assert 'id="nav-authorize"' not in home.text and "change-password" not in home.text
    # NativeAuthenticator's admin account was not made
    assert not (ldap_hub.workdir / "data" / "initial-admin-password").exists()
    assert ldap_hub.api("GET", "/users/admin").status_code == 404


def test_users_looked_up_by_a_search_account(hub_factory, slapd: Slapd) -> None:
    """MLHUB_LDAP_USER_SEARCH_BASE: the DN is found by uid with a reader account (Active
    Directory style), then the user binds with it."""
    reader = f"cn=reader,{SUFFIX}"
    slapd.add(
        f"dn: {reader}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        "cn: reader\nuserPassword: reader-pw\n"
    )
    hub = hub_factory(
        env=ldap_env(
            slapd,
            MLHUB_LDAP_USER_SEARCH_BASE=PEOPLE,
            MLHUB_LDAP_SEARCH_USER=reader,
            MLHUB_LDAP_SEARCH_PASSWORD="reader-pw",
        )
    )
    assert login(hub.url, "alice", PASSWORDS["alice"])
    assert refused(hub, "alice", "wrong-pw")
    assert refused(hub, "bob", PASSWORDS["bob"])
    carol = login(hub.url, "carol", PASSWORDS["carol"])
    assert carol.get(f"{hub.url}/hub/api/user", timeout=30).json()["admin"] is True


def test_password_guessing_through_the_hub_is_rate_limited_per_address(hub_factory, slapd: Slapd) -> None:
    """The login form would let anyone try passwords against the directory as fast as the hub
    answers. MLHUB_LOGIN_RATE_LIMIT holds for LDAP logins too: past it, 429 and no bind."""
    hub = hub_factory(
        env=ldap_env(
            slapd, MLHUB_LDAP_BIND_DN_TEMPLATE=f"uid={{username}},{PEOPLE}", MLHUB_LOGIN_RATE_LIMIT="3"
        )
    )
    for _ in range(3):
        assert refused(hub, "alice", "guess-pw")
    binds_before = (slapd.workdir / "slapd.log").read_text().count(f'BIND dn="uid=alice,{PEOPLE}"')
    _, reply = post_login(hub.url, "alice", PASSWORDS["alice"])
    assert reply.status_code == 429, reply.status_code
    assert "Too many login attempts from your address" in reply.text
    assert (slapd.workdir / "slapd.log").read_text().count(f'BIND dn="uid=alice,{PEOPLE}"') == binds_before


def test_starttls_checks_the_directorys_certificate(hub_factory, tmp_path_factory) -> None:
    """MLHUB_LDAP_TLS's default, starttls: with the CA that signed the directory's certificate
    (MLHUB_LDAP_CA_FILE) logins work over TLS; without it (the system's CAs do not know it)
    the hub refuses to send the password."""
    workdir = tmp_path_factory.mktemp("slapd-tls")
    ca, cert, key = make_certificates(workdir / "certs")
    with running_slapd(workdir / "server", tls_cert=cert, tls_key=key) as server:
        group = server.add_group("hub-users", [server.add_user("alice", PASSWORDS["alice"])])
        env = {
            **ldap_env(server, MLHUB_LDAP_BIND_DN_TEMPLATE=f"uid={{username}},{PEOPLE}"),
            "MLHUB_LDAP_ALLOWED_GROUPS": group,
            "MLHUB_LDAP_ADMIN_GROUPS": "",
        }
        del env["MLHUB_LDAP_TLS"]  # the default: starttls
        trusting = hub_factory(env={**env, "MLHUB_LDAP_CA_FILE": str(ca)})
        assert login(trusting.url, "alice", PASSWORDS["alice"])
        assert "STARTTLS" in (workdir / "server" / "slapd.log").read_text()
        binds = (workdir / "server" / "slapd.log").read_text().count('BIND dn="uid=alice')
        untrusting = hub_factory(env=env)
        _, reply = post_login(untrusting.url, "alice", PASSWORDS["alice"])
        assert reply.status_code != 302
        assert "CERTIFICATE_VERIFY_FAILED" in untrusting.log_tail(200)
        assert (workdir / "server" / "slapd.log").read_text().count('BIND dn="uid=alice') == binds
