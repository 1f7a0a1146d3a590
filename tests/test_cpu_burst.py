"""The boot CPU burst on the real engine: a workspace boots without its CPU limit at a low CPU
weight, as the engine and the container's own cgroup show, and gets its limit when its server
answers, when the watch gives up on a server that never answers, and, after the hub was killed
while it booted, at the restarted hub's first poll."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.engine_objects import containers_of
from tests.support.images import SLOW_AND_HANGING_WORKSPACES, STOCK_IMAGE

LIMIT = 500_000_000  # the cpu_limit 0.5 every test asks for
WATCH = 15  # startup_check_seconds: a slow workspace (8 s, then its server starts) answers inside it


@pytest.fixture(scope="module")
def burst_hub(hub_factory):
    return hub_factory(
        env={"MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE},
        extra_config=f"""
c.MLHubDockerSpawner.startup_check_seconds = {WATCH}
c.Spawner.http_timeout = 25
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
{SLOW_AND_HANGING_WORKSPACES}
""",
    )


def _booting_container(client, hub, user: str, timeout: float = 60):
    """The user's workspace container once the engine runs it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for container in containers_of(client, hub.hub_name, user, all=False):
            return container
        time.sleep(0.1)
    raise AssertionError(f"{user}'s container never ran\n{hub.log_tail(40)}")


def _cpu(container) -> tuple[int, int]:
    container.reload()
    host = container.attrs["HostConfig"]
    return host["NanoCpus"], host["CpuShares"]


def _cgroup(container) -> tuple[str, str]:
    """The container's CPU quota and weight as its own cgroup has them (v1 or v2)."""
    result = container.exec_run(
        [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null"
            " || cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight",
        ]
    )
    quota, weight = result.output.decode().split("\n")[:2]
    return quota.strip(), weight.strip()


def _wait_limited(container, timeout: float) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = _cpu(container)
        if seen[0]:
            return seen
        time.sleep(0.2)
    return _cpu(container)


def _spawn(hub, user: str) -> str:
    token = hub.ensure_user(user)
    r = hub.spawn(user, options={"cpu_limit": 0.5}, token=token, wait=False)
    assert r.status_code in (201, 202), r.text
    return token


def test_a_workspace_boots_unlimited_at_low_weight_then_gets_its_limit(burst_hub, docker_client) -> None:
    _spawn(burst_hub, "slowburst")
    container = _booting_container(docker_client, burst_hub, "slowburst")
    assert _cpu(container) == (0, 256), "the booting workspace already has its limit"
    booting = _cgroup(container)
    assert booting[0] in ("-1", "max 100000") and booting[1] in ("256", "10"), booting
    burst_hub.wait_ready("slowburst")
    assert _cpu(container) == (LIMIT, 1024)
    assert _cgroup(container) in (("50000", "1024"), ("50000 100000", "39")), _cgroup(container)
    burst_hub.stop_server("slowburst")


def test_a_server_that_never_answers_gets_its_limit_when_the_watch_ends(burst_hub, docker_client) -> None:
    _spawn(burst_hub, "hangburst")
    container = _booting_container(docker_client, burst_hub, "hangburst")
    started = time.monotonic()
    assert _cpu(container) == (0, 256)
    assert _wait_limited(container, WATCH + 15) == (LIMIT, 1024), burst_hub.log_tail(40)
    assert time.monotonic() - started >= WATCH - 3, "the limit came before the watch ended"
    model = burst_hub.server("hangburst")
    assert model and model.get("pending") and not model.get("ready"), model
    burst_hub.wait_stopped("hangburst", timeout=90)  # http_timeout fails the spawn


def test_a_hub_killed_while_a_workspace_boots_sets_its_limit_when_restarted(burst_hub, docker_client) -> None:
    _spawn(burst_hub, "slowkilled")
    container = _booting_container(docker_client, burst_hub, "slowkilled")
    time.sleep(1)  # the hub stores the started container (its server starts 8 s after it runs)
    assert burst_hub.proc is not None
    os.kill(burst_hub.proc.pid, signal.SIGKILL)
    burst_hub.stop()
    assert _cpu(container) == (0, 256), "the hub set the limit before it was killed; nothing to test"
    burst_hub.start()
    assert _wait_limited(container, 30) == (LIMIT, 1024), burst_hub.log_tail(60)
    burst_hub.wait_ready("slowkilled", timeout=90)
    burst_hub.stop_server("slowkilled")
