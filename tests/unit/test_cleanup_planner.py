"""Cleanup decisions (pure) and the one-run-at-a-time rule."""

from __future__ import annotations

import asyncio

import pytest

from mlhub.services.cleanup.model import HubServer, Resource
from mlhub.services.cleanup.planner import plan_expired, plan_orphans
from mlhub.services.cleanup.runner import Cleaner, RunInProgress


def res(kind, name, user, server="", origin="hub1", **extra):
    labels = {"mlhub.origin": origin, "mlhub.user": user, "mlhub.server_name": server, **extra}
    return Resource(kind, name, name, labels)


RESOURCES = [
    res("network", "hub1-gone", "gone"),
    res("volume", "hub1-gone-workspace", "gone"),
    res("container", "hub1-gone", "gone"),
    res("container", "hub1-alice", "alice"),
    res("volume", "hub1-alice-workspace", "alice"),
    res("volume", "hub1-alice--old-workspace", "alice", "old"),
    res("container", "hub1-alice--zombie", "alice", "zombie"),
    res("network", "hub1-alice", "alice"),
    res("container", "hub2-gone", "gone", origin="hub2"),
    Resource("container", "foreign", "foreign", {}),
]


def test_orphans_of_deleted_users_go_in_a_safe_order():
    plan = plan_orphans("hub1", {"alice"}, [HubServer("alice", "", 0, True)], RESOURCES)
    removed = [(r.kind, r.name) for r, _ in plan.remove_resources]
    assert removed == [
        ("container", "hub1-alice--zombie"),
        ("container", "hub1-gone"),
        ("volume", "hub1-gone-workspace"),
        ("network", "hub1-gone"),
    ]
    kept = {a.name: a.reason for a in plan.keep}
    # volumes of a user who still exists are never removed, even without a server
    assert kept["hub1-alice--old-workspace"] == "user exists"
    assert kept["hub1-alice"] == "user exists"
    # other hubs' and unlabelled objects are not even considered
    assert "hub2-gone" not in kept and "foreign" not in kept


def test_expired_servers_and_containers():
    servers = [
        HubServer("alice", "old", 100, True),
        HubServer("alice", "new", 10_000, True),
        HubServer("alice", "", 0, True),
    ]
    resources = [
        res("container", "hub1-alice--old", "alice", "old"),
        res("container", "hub1-alice--new", "alice", "new"),
        res("container", "legacy", "bob", "x", expiration_timestamp_seconds="50"),
        res("volume", "hub1-alice--old-workspace", "alice", "old"),
    ]
    plan = plan_expired("hub1", servers, resources, now=1000)
    assert [a.name for a in plan.remove_servers] == ["alice/old"]
    assert [r.name for r, _ in plan.remove_resources] == ["hub1-alice--old", "legacy"]
    reasons = {a.name: a.reason for a in plan.keep}
    assert reasons == {"alice/new": "expires at 10000", "alice": "never expires"}


class _SlowBackend:
    """A stand-in engine that takes its time (a unit-test fake, not the real backend)."""

    async def list_resources(self, hub_name):
        await asyncio.sleep(0.2)
        return []

    async def remove(self, resource):
        pass


class _Hub:
    """A stand-in hub API with no users (unit-test fake)."""

    async def users(self):
        return []

    servers_of = staticmethod(lambda users: [])


def test_a_second_run_is_refused_while_one_is_under_way():
    cleaner = Cleaner("hub1", _Hub(), _SlowBackend())

    async def both():
        first = asyncio.ensure_future(cleaner.run("users"))
        await asyncio.sleep(0.05)
        with pytest.raises(RunInProgress):
            await cleaner.run("expired")
        return await first

    report = asyncio.run(both())
    assert report.errors == [] and cleaner.last["users"] is report


def test_service_config_is_validated():
    from mlhub.services.cleanup.config import ConfigError, read_config

    base = {
        "JUPYTERHUB_API_URL": "http://h/hub/api",
        "JUPYTERHUB_API_TOKEN": "t",
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:1",
    }
    config = read_config({**base, "MLHUB_EXECUTION_MODE": "k8s", "POD_NAMESPACE": "ml"})
    assert config.mode == "k8s" and config.namespace == "ml" and config.interval == 3600
    with pytest.raises(ConfigError) as info:
        read_config({"CLEANUP_INTERVAL_SECONDS": "0", "HUB_NAME": "X", "MLHUB_EXECUTION_MODE": "swarm"})
    assert set(info.value.errors) == {
        "CLEANUP_INTERVAL_SECONDS",
        "HUB_NAME",
        "MLHUB_EXECUTION_MODE",
        "JUPYTERHUB_API_URL",
        "JUPYTERHUB_API_TOKEN",
        "JUPYTERHUB_SERVICE_URL",
    }


def test_running_container_of_a_stopped_server_goes_once_it_predates_the_question():
    def container(name, server, created, active=True):
        labels = {"mlhub.origin": "hub1", "mlhub.user": "alice", "mlhub.server_name": server}
        return Resource("container", name, name, labels, created=created, active=active)

    servers = [
        HubServer("alice", "stopped", 0, False),
        HubServer("alice", "starting", 0, True),
        HubServer("alice", "kept", 0, False),
    ]
    resources = [
        container("hub1-alice--stopped", "stopped", created=100),  # left by an interrupted start
        container("hub1-alice--starting", "starting", created=100),  # the hub says it is pending
        container(
            "hub1-alice--kept", "kept", created=100, active=False
        ),  # exited: kept, as remove=False wants
        container("hub1-alice--young", "stopped", created=950),  # may belong to a spawn begun since
    ]
    plan = plan_orphans("hub1", {"alice"}, servers, resources, stale_before=900)
    assert [(r.name, a.reason) for r, a in plan.remove_resources] == [
        ("hub1-alice--stopped", "runs while its server is stopped in the hub (left by an interrupted start)")
    ]
    # without a cut-off (older callers) nothing of the kind is removed
    assert plan_orphans("hub1", {"alice"}, servers, resources).remove_resources == []


def test_other_installs_and_earlier_accounts():
    """Objects of another install with this hub name are not even considered; objects made
    before install ids are only reported; a volume of an earlier account with the user's
    name goes (or stays with deleted_user_volumes=keep), the current account's stays."""
    mine = {"mlhub.install": "aaaa1111"}
    resources = [
        res("volume", "hub1-bob-workspace", "bob", **mine, **{"mlhub.user_created": "1000"}),  # earlier bob
        res(
            "volume", "hub1-bob-workspace-2000", "bob", **mine, **{"mlhub.user_created": "2000"}
        ),  # current bob
        res("network", "hub1-bob", "bob", **mine, **{"mlhub.user_created": "2001"}),  # current bob (1 s off)
        res("volume", "hub1-gone-workspace", "gone", **{"mlhub.install": "bbbb2222"}),  # another install's
        res("volume", "hub1-old-workspace", "old"),  # made before install ids
    ]
    accounts = {"bob": 2000}
    plan = plan_orphans("hub1", accounts, [], resources, install_id="aaaa1111")
    assert [(r.name, a.reason) for r, a in plan.remove_resources] == [
        ("hub1-bob-workspace", "its account was deleted (a newer account has this user name)")
    ]
    kept = {a.name: a.reason for a in plan.keep}
    assert kept["hub1-bob-workspace-2000"] == kept["hub1-bob"] == "user exists"
    assert kept["hub1-old-workspace"].startswith("no mlhub.install label")
    assert "hub1-gone-workspace" not in kept
    keep = plan_orphans("hub1", accounts, [], resources, install_id="aaaa1111", deleted_user_volumes="keep")
    assert keep.remove_resources == []
    assert {a.name: a.reason for a in keep.keep}["hub1-bob-workspace"].endswith(
        "kept (deleted_user_volumes=keep)"
    )
    # expired containers: never another install's
    expired = [
        res("container", "a", "x", expiration_timestamp_seconds="5", **{"mlhub.install": "bbbb2222"}),
        res("container", "b", "x", expiration_timestamp_seconds="5"),
    ]
    assert [
        r.name for r, _ in plan_expired("hub1", [], expired, 100, install_id="aaaa1111").remove_resources
    ] == ["b"]


def test_ml_hubs_workspaces_are_reported_as_ml_hubs():
    """Issue 21: ML Hub's workspaces (its ws-<user>-<hub> names, its unprefixed labels) are
    listed by the dry run as ML Hub's, never removed; other objects without an install id as such."""
    resources = [
        res("container", "ws-alice-hub1", "alice", **{"expiration_timestamp_seconds": "0"}),
        res("volume", "ws-alice-hub1gpu", "alice", "gpu"),
        res("container", "hub1-carol", "carol", **{"nvidia_visible_devices": "0"}),
        res("volume", "hub1-old-workspace", "old"),
        res("volume", "ws-bob-hub1", "bob", **{"mlhub.install": "aaaa1111"}),  # ours, whatever its name
    ]
    plan = plan_orphans("hub1", {"alice", "bob"}, [], resources, install_id="aaaa1111")
    kept = {a.name: a.reason for a in plan.keep}
    assert plan.remove_resources == []
    for name in ("ws-alice-hub1", "ws-alice-hub1gpu", "hub1-carol"):
        assert kept[name].startswith("ML Hub's workspace"), (name, kept[name])
    assert kept["hub1-old-workspace"].startswith("no mlhub.install label")
    assert kept["ws-bob-hub1"] == "user exists"
