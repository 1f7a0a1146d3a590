"""How a service decides its hub is gone (mlhub/core/lifetime.py); the real thing, a hub
killed with SIGKILL, is tests/test_service_lifecycle.py."""

from __future__ import annotations

import asyncio
import os

import pytest

from mlhub.core import lifetime


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch):
    reasons: list[str] = []

    def fake_exit(reason: str):
        reasons.append(reason)
        raise Exited(reason)

    monkeypatch.setattr(lifetime, "_exit", fake_exit)
    monkeypatch.setattr(lifetime, "die_with_parent", lambda: lifetime.os.getppid())
    return reasons


def test_a_changed_parent_pid_means_the_hub_is_gone(monkeypatch, exits):
    parents = iter([4242, 4242, 4242, 1])
    monkeypatch.setattr(lifetime.os, "getppid", lambda: next(parents))
    with pytest.raises(Exited):
        asyncio.run(lifetime.watch_hub("svc", interval=0.01))
    assert exits == ["svc: the hub (pid 4242) is gone"]


def test_sigterm_says_whether_the_hub_died(monkeypatch, exits):
    monkeypatch.setattr(lifetime.os, "getppid", lambda: 4242)
    with pytest.raises(Exited):
        asyncio.run(lifetime._terminated("svc", 4242, "SIGINT"))
    parents = iter([4242, 4242, 1])
    monkeypatch.setattr(lifetime.os, "getppid", lambda: next(parents))
    with pytest.raises(Exited):
        asyncio.run(lifetime._terminated("svc", 4242, "SIGTERM"))
    assert exits == ["svc: stopped by SIGINT", "svc: the hub (pid 4242) is gone"]


def test_the_hub_pid_comes_from_the_hub(monkeypatch):
    monkeypatch.setenv("MLHUB_HUB_PID", "4242")
    assert lifetime.hub_pid() == 4242
    monkeypatch.setenv("MLHUB_HUB_PID", "not-a-pid")
    assert lifetime.hub_pid() is None
    monkeypatch.delenv("MLHUB_HUB_PID")
    assert lifetime.hub_pid() is None


@pytest.mark.parametrize(
    ("hub", "parent", "hub_alive", "gone"),
    [
        (None, 77, False, False),  # no MLHUB_HUB_PID: the parent is taken as the hub
        (4242, 4242, True, False),  # started by the hub itself
        (4242, 77, True, False),  # a wrapper (sh -c) in between, the hub runs: the wrapper is watched
        (4242, 1, False, True),  # re-parented: the hub died while this service was starting
    ],
)
def test_the_watched_parent(monkeypatch, exits, hub, parent, hub_alive, gone):
    if hub is None:
        monkeypatch.delenv("MLHUB_HUB_PID", raising=False)
    else:
        monkeypatch.setenv("MLHUB_HUB_PID", str(hub))
    monkeypatch.setattr(lifetime.os, "getppid", lambda: parent)
    monkeypatch.setattr(lifetime, "alive", lambda pid: hub_alive)
    if gone:
        with pytest.raises(Exited):
            lifetime.watched_parent()
        assert exits == ["the hub (pid 4242) was gone before this service started"]
    else:
        assert lifetime.watched_parent() == parent
        assert exits == []


def test_a_zombie_or_missing_pid_is_not_alive(tmp_path):
    assert lifetime.alive(os.getpid())
    assert not lifetime.alive(2**22 + 12345)  # above pid_max's default: no such process
