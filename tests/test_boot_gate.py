"""Workspaces boot a few at a time (``MLHubDockerSpawner.concurrent_boots``): booting servers
share the engine host's CPUs, and all at once each boots so slowly that JupyterHub's
``http_timeout`` fails many (the 2026-11-30 benchmark: 224 of 300 failed at 100 concurrent)."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import re

import docker

USERS = ("boota", "bootb", "bootc")
STARTED = re.compile(r"^\[I (\S+ \S+) JupyterHub \S+\] Started workspace \S+ for (\w+) ", re.M)


def _docker_time(text: str) -> dt.datetime:
    # e.g. 2026-11-30T23:13:35.556123456Z: microseconds are enough
    head, _, frac = text.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}").replace(tzinfo=dt.timezone.utc)


def test_one_boot_at_a_time_when_the_gate_is_one(hub_factory, docker_client: docker.DockerClient) -> None:
    """Three starts at once with ``concurrent_boots = 1``: each container is started by the
    engine only after the one before it serves (the hub's "Started workspace" line)."""
    hub = hub_factory(
        env={"CLEANUP_INTERVAL_SECONDS": "-1"}, extra_config="c.MLHubDockerSpawner.concurrent_boots = 1\n"
    )
    for user in USERS:
        hub.ensure_user(user)
    with cf.ThreadPoolExecutor(len(USERS)) as pool:
        replies = list(pool.map(lambda u: hub.spawn(u, "", {}, wait=False), USERS))
    assert all(r.status_code in (201, 202) for r in replies), [r.text for r in replies]
    for user in USERS:
        hub.wait_ready(user)

    log = hub.log_path.read_text(errors="replace")
    served = {
        user: dt.datetime.strptime(when, "%Y-%m-%d %H:%M:%S.%f").astimezone(dt.timezone.utc)
        for when, user in STARTED.findall(log)
    }
    assert set(served) == set(USERS), log[-3000:]
    started = {}
    for user in USERS:
        (container,) = docker_client.containers.list(
            filters={"label": [f"mlhub.origin={hub.hub_name}", f"mlhub.user={user}"]}
        )
        started[user] = _docker_time(container.attrs["State"]["StartedAt"])
    order = sorted(USERS, key=lambda u: started[u])
    for before, after in zip(order, order[1:], strict=False):
        assert started[after] > served[before], (
            f"{after}'s container started at {started[after]} while {before}'s was still booting "
            f"(served at {served[before]})"
        )
    assert "waits for a boot slot" in log and "At most 1 workspaces boot at once" in log
