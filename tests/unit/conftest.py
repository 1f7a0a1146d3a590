"""The unit lane: pure logic only. A test here that starts a process or talks to a Docker
engine fails at once, so the lane stays fast and runs anywhere (no engine, no set-up)."""

from __future__ import annotations

import asyncio
import subprocess

import docker
import pytest


def _refused(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"tests/unit may not {what}: move the test to tests/ (the real-engine lane)")

    return refuse


@pytest.fixture(autouse=True)
def _no_engine_no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess.Popen, "__init__", _refused("start a process"))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", _refused("start a process"))
    monkeypatch.setattr(asyncio, "create_subprocess_shell", _refused("start a process"))
    monkeypatch.setattr(docker.api.client.APIClient, "__init__", _refused("talk to a Docker engine"))
