"""SSH login names -> workspaces (pure logic)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlhub.services.ssh.hub import token_grants_access
from mlhub.services.ssh.targets import BadLoginName, Target, parse_login


@pytest.mark.parametrize(
    ("login", "target"),
    [
        ("alice", Target("alice", "")),
        ("Alice", Target("alice", "")),
        ("alice,gpu", Target("alice", "gpu")),
        ("alice,gpu-2", Target("alice", "gpu-2")),
        ("first.last+ml@example.org,box", Target("first.last+ml@example.org", "box")),
        ("a-b_c.d", Target("a-b_c.d", "")),
    ],
)
def test_logins(login, target):
    assert parse_login(login) == target
    assert parse_login(target.login) == target


@pytest.mark.parametrize(
    ("login", "why"),
    [
        ("", "log in as"),
        ("alice,", "server name after 'alice,' is missing"),
        (",gpu", "user name before ',' is missing"),
        ("alice,GPU", "not a server name"),
        ("alice,gpu--x", "not a server name"),
        ("alice,1gpu", "not a server name"),
        ("alice,gpu-", "not a server name"),
        ("alice,a,b", "not a server name"),  # the last ',' separates; 'a,b' is no user of NativeAuthenticator
        ("alice/gpu", "log in as"),
        ("al ice", "log in as"),
        ("alice\x00", "log in as"),
        ("x" * 256, "log in as"),
        ("alice," + "a" * 31, "not a server name"),
    ],
)
def test_bad_logins(login, why):
    if login == "alice,a,b":
        assert parse_login(login) == Target("alice,a", "b")  # documented: split at the last ','
        return
    with pytest.raises(BadLoginName, match=why):
        parse_login(login)


@given(
    user=st.text(
        st.characters(blacklist_characters=",/", blacklist_categories=("Cc", "Zs", "Zl", "Zp")),
        min_size=1,
        max_size=40,
    ),
    server=st.from_regex(r"\A[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,20}\Z"),
)
def test_every_valid_pair_round_trips(user, server):
    target = Target(user.lower(), server)
    assert parse_login(target.login) == target


def test_tokens_only_open_their_owners_servers():
    alice = Target("alice", "gpu")
    assert token_grants_access(
        {"kind": "user", "name": "alice", "scopes": ["access:servers!user=alice"]}, alice
    )
    assert token_grants_access(
        {"kind": "user", "name": "alice", "scopes": ["access:servers!server=alice/gpu"]}, alice
    )
    assert not token_grants_access(
        {"kind": "user", "name": "alice", "scopes": ["access:servers!server=alice/x"]}, alice
    )
    assert not token_grants_access(
        {"kind": "user", "name": "alice", "scopes": ["read:users!user=alice"]}, alice
    )
    assert not token_grants_access({"kind": "user", "name": "admin", "scopes": ["access:servers"]}, alice)
    assert not token_grants_access({"kind": "service", "name": "alice", "scopes": ["access:servers"]}, alice)
