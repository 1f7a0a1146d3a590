"""Safe names: valid for Docker and as DNS labels, readable when possible, never colliding."""

import re

from hypothesis import given
from hypothesis import strategies as st

from mlhub.core.names import (
    SERVER_SEPARATOR,
    is_valid_hub_name,
    safe_slug,
    user_network_name,
    workspace_name,
    workspace_volume_name,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def test_safe_values_are_kept():
    assert safe_slug("alice") == "alice"
    assert workspace_name("mlhub", "alice", "") == "mlhub-alice"
    assert workspace_name("mlhub", "alice", "gpu1") == "mlhub-alice--gpu1"
    assert user_network_name("mlhub", "alice") == "mlhub-alice"
    assert workspace_volume_name("mlhub", "alice", "gpu1") == "mlhub-alice--gpu1-workspace"


def test_changed_values_get_a_hash():
    assert safe_slug("Alice") != safe_slug("alice")
    assert safe_slug("a--b") != safe_slug("a-b")
    assert safe_slug("a@b.c").startswith("a-b-c-")


@given(st.text(min_size=0, max_size=80))
def test_slug_is_a_dns_label(value):
    slug = safe_slug(value)
    assert DNS_LABEL.match(slug), slug
    assert SERVER_SEPARATOR not in slug
    assert len(slug) <= 20


@given(st.text(max_size=40), st.text(max_size=40))
def test_different_values_never_collide(a, b):
    if a != b:
        assert safe_slug(a) != safe_slug(b)


@given(st.text(max_size=60), st.text(max_size=60))
def test_workspace_names_are_valid_and_unambiguous(user, server):
    name = workspace_name("mlhub", user, server)
    assert DOCKER_NAME.match(name) and DNS_LABEL.match(name) and len(name) <= 63
    # the user part can be recovered: the separator occurs at most once
    assert name.count(SERVER_SEPARATOR) == (1 if server else 0)


def test_hub_names():
    for good in ["mlhub", "a", "dev-1", "abcdefghijkl"]:
        assert is_valid_hub_name(good)
    for bad in ["", "ML", "-a", "a-", "abcdefghijklm", "a_b", "a.b"]:
        assert not is_valid_hub_name(bad)


def test_free_subnet_skips_taken_ranges():
    from ipaddress import IPv4Network as N

    from mlhub.engines.docker_network import free_subnet

    pool = N("172.30.0.0/15")
    assert free_subnet([], pool, 24) == N("172.30.0.0/24")
    taken = [N("172.30.0.0/24"), N("172.30.1.0/26"), N("10.0.0.0/8")]
    assert free_subnet(taken, pool, 24) == N("172.30.2.0/24")
    # a Docker-allocated /16 inside the pool blocks all of its /24s
    assert free_subnet([N("172.30.0.0/16")], pool, 24) == N("172.31.0.0/24")
    assert free_subnet([pool], pool, 24) is None
    assert len(list(pool.subnets(new_prefix=24))) == 512


def test_the_default_bridge_gateway_when_docker_omits_it():
    from mlhub.engines.docker_network import default_bridge_gateway

    given = {"IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.9"}]}}
    omitted = {"IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]}}  # Docker 20.10, seen on CI
    assert default_bridge_gateway(given) == "172.17.0.9"
    assert default_bridge_gateway(omitted) == "172.17.0.1"
