"""Workspaces boot a few at a time (``MLHubDockerSpawner.concurrent_boots``): booting servers
share the engine host's CPUs, and all at once each boots so slowly that JupyterHub's
``http_timeout`` fails many (the 2026-11-30 benchmark: 224 of 300 failed at 100 concurrent)."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import re

import docker

USERS = ("boota", "bootb", "bootc")
#: the spawner's step line, logged once the workspace serves: "Started alice:gpu in 1.84 s: ..."
STARTED = re.compile(r"^\[I (\S+ \S+) JupyterHub \S+\] Started (\S+) in [\d.]+ s:", re.M)


def _docker_time(text: str) -> dt.datetime:
    # e.g. 2026-11-30T23:13:35.556123456Z: microseconds are enough
    head, _, frac = text.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}").replace(tzinfo=dt.timezone.utc)


def served_at(log: str) -> dict[str, dt.datetime]:
    """When the hub logged each workspace as started (it serves), by "user" or "user:server"."""
    return {
        who: dt.datetime.strptime(when, "%Y-%m-%d %H:%M:%S.%f").astimezone(dt.timezone.utc)
        for when, who in STARTED.findall(log)
    }


def started_at(client: docker.DockerClient, hub_name: str, user: str, server: str = "") -> dt.datetime:
    """When the engine started the workspace's container."""
    labels = [f"mlhub.origin={hub_name}", f"mlhub.user={user}"]
    found = [
        c
        for c in client.containers.list(filters={"label": labels})
        if c.labels.get("mlhub.server_name", "") == server
    ]
    assert len(found) == 1, [c.name for c in found]
    return _docker_time(found[0].attrs["State"]["StartedAt"])


def assert_one_after_another(started: dict[str, dt.datetime], served: dict[str, dt.datetime]) -> None:
    order = sorted(started, key=lambda who: started[who])
    for before, after in zip(order, order[1:], strict=False):
        assert started[after] > served[before], (
            f"{after}'s container started at {started[after]} while {before}'s was still booting "
            f"(served at {served[before]})"
        )


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
    served = served_at(log)
    assert set(served) == set(USERS), log[-3000:]
    assert_one_after_another({u: started_at(docker_client, hub.hub_name, u) for u in USERS}, served)
    assert "waits for a boot slot" in log and "At most 1 workspaces boot at once" in log


def test_one_users_workspaces_boot_one_at_a_time(hub_factory, docker_client: docker.DockerClient) -> None:
    """One user's three named servers at once, with slots to spare (4): they still boot one
    after another, so one account (e.g. images that never serve) holds one slot at most."""
    hub = hub_factory(
        env={"CLEANUP_INTERVAL_SECONDS": "-1"}, extra_config="c.MLHubDockerSpawner.concurrent_boots = 4\n"
    )
    hub.ensure_user("hog")
    servers = ("a", "b", "c")
    with cf.ThreadPoolExecutor(len(servers)) as pool:
        replies = list(pool.map(lambda s: hub.spawn("hog", s, {}, wait=False), servers))
    assert all(r.status_code in (201, 202) for r in replies), [r.text for r in replies]
    for server in servers:
        hub.wait_ready("hog", server)
    log = hub.log_path.read_text(errors="replace")
    served = {who.split(":", 1)[1]: when for who, when in served_at(log).items() if ":" in who}
    assert set(served) == set(servers), log[-3000:]
    assert_one_after_another({s: started_at(docker_client, hub.hub_name, "hog", s) for s in servers}, served)
    assert "waits for the user's other workspace to boot" in log
