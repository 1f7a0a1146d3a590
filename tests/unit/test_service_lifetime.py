"""How a service decides its hub is gone (mlhub/services/lifetime.py); the real thing, a hub
killed with SIGKILL, is tests/test_service_lifecycle.py."""

from __future__ import annotations

import asyncio

import pytest

from mlhub.services import lifetime


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch):
    reasons: list[str] = []

    def fake_exit(reason: str):
        reasons.append(reason)
        raise Exited(reason)

    monkeypatch.setattr(lifetime, "_exit", fake_exit)
    monkeypatch.setattr(lifetime, "die_with_parent", lambda: None)
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


def test_the_hub_pid_comes_from_the_hub_and_the_parent_is_the_fallback(monkeypatch):
    monkeypatch.setattr(lifetime.os, "getppid", lambda: 1)
    monkeypatch.setenv("MLHUB_HUB_PID", "4242")
    assert lifetime.hub_pid() == 4242
    monkeypatch.setenv("MLHUB_HUB_PID", "not-a-pid")
    assert lifetime.hub_pid() == 1
    monkeypatch.delenv("MLHUB_HUB_PID")
    assert lifetime.hub_pid() == 1
