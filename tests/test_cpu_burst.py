"""The boot CPU burst on the real engine: a workspace asking for half a core boots at one core,
as the engine and the container's own cgroup show, and gets its own limit when its server
answers, when the watch gives up on a server that never answers, and, after the hub was killed
while it booted, at the restarted hub's first poll."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timezone

import pytest

from tests.support.engine_objects import containers_of
from tests.support.images import SLOW_AND_HANGING_WORKSPACES, STOCK_IMAGE

LIMIT = 500_000_000  # the cpu_limit 0.5 every test asks for
BOOT = 1_000_000_000  # boot_cpu_limit's default, one core (the test machines have at least 1)
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


def _cpu(container) -> int:
    container.reload()
    return container.attrs["HostConfig"]["NanoCpus"]


def _cgroup_quota(container) -> str:
    """The container's CPU quota per 100 ms period as its own cgroup has it (v1 or v2)."""
    result = container.exec_run(
        [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max",
        ]
    )
    return result.output.decode().strip()


def _seconds_running(container) -> float:
    """Since the engine started the container (its clock, not when this test saw it)."""
    container.reload()
    started = datetime.fromisoformat(container.attrs["State"]["StartedAt"][:26].rstrip("Z") + "+00:00")
    return (datetime.now(timezone.utc) - started).total_seconds()


def _wait_limited(container, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _cpu(container) != LIMIT:
        time.sleep(0.2)
    return _cpu(container)


def _spawn(hub, user: str) -> str:
    token = hub.ensure_user(user)
    r = hub.spawn(user, options={"cpu_limit": 0.5}, token=token, wait=False)
    assert r.status_code in (201, 202), r.text
    return token


def test_a_workspace_boots_at_the_boot_limit_then_gets_its_own(burst_hub, docker_client) -> None:
    _spawn(burst_hub, "slowburst")
    container = _booting_container(docker_client, burst_hub, "slowburst")
    assert _cpu(container) == BOOT, "the booting workspace is not at the boot limit"
    assert container.labels["mlhub.boot_cpu_limit"] == "1"
    assert _cgroup_quota(container) == "100000"  # one core per 100 ms period
    burst_hub.wait_ready("slowburst")
    assert _cpu(container) == LIMIT
    assert _cgroup_quota(container) == "50000"
    burst_hub.stop_server("slowburst")


def test_a_server_that_never_answers_gets_its_limit_when_the_watch_ends(burst_hub, docker_client) -> None:
    _spawn(burst_hub, "hangburst")
    container = _booting_container(docker_client, burst_hub, "hangburst")
    assert _cpu(container) == BOOT
    assert _wait_limited(container, WATCH + 15) == LIMIT, burst_hub.log_tail(40)
    assert _seconds_running(container) >= WATCH - 1, "the limit came before the watch ended"
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
    assert _cpu(container) == BOOT, "the hub set the limit before it was killed; nothing to test"
    burst_hub.start()
    assert _wait_limited(container, 30) == LIMIT, burst_hub.log_tail(60)
    burst_hub.wait_ready("slowkilled", timeout=90)
    burst_hub.stop_server("slowkilled")
