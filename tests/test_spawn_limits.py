"""Spawn timeouts and JupyterHub's ``concurrent_spawn_limit`` under a burst, on the real engine.

The hub allows two spawns in flight. Users named ``hang*`` get a workspace whose command
never serves HTTP (``sleep``), so their spawns stay pending until their ``http_timeout`` (6 s)
ends them; for ``stall*`` users the spawner's start itself stalls, until ``start_timeout``
(4 s) cancels it. Every request must end one of two ways: accepted and then ready (or, for a hanging
workspace, cleanly failed with its container gone), or refused at once with 429 and a
``Retry-After``; a refused user who retries gets their workspace. Nothing is lost, nothing
is left running.
"""

from __future__ import annotations

import concurrent.futures as cf
import time

import pytest

from tests.support.images import SLOW_AND_HANGING_WORKSPACES, STOCK_IMAGE

LIMIT = 2
HTTP_TIMEOUT = 6
START_TIMEOUT = 4


@pytest.fixture(scope="module")
def limited_hub(hub_factory):
    return hub_factory(
        env={"MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE},
        extra_config=f"""
c.JupyterHub.concurrent_spawn_limit = {LIMIT}
# only the hanging and stalling workspaces get short timeouts; real ones have time to start
def _timeouts(spawner):
    name = spawner.user.name
    spawner.http_timeout = {HTTP_TIMEOUT} if name.startswith("hang") else 90
    spawner.start_timeout = {START_TIMEOUT} if name.startswith("stall") else 90
c.Spawner.pre_spawn_hook = _timeouts
# answer spawn requests at once (202) rather than after up to 10 s, as a burst would see
# them; suggest retries after 1-3 s (JupyterHub 6.1's spawn_throttle_retry_range trait is not
# tagged config=True, so only tornado_settings reaches it)
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0, "spawn_throttle_retry_range": (1, 3)}}
{SLOW_AND_HANGING_WORKSPACES}
""",
    )


def _containers(client, hub, user: str) -> list:
    return client.containers.list(
        all=True, filters={"label": [f"mlhub.origin={hub.hub_name}", f"mlhub.user={user}"]}
    )


def _post_spawn(hub, user: str, token: str):
    return hub.api("POST", f"/users/{user}/server", token=token, json={})


def test_burst_beyond_the_limit_is_refused_with_429_and_hanging_spawns_time_out_cleanly(
    limited_hub, docker_client
):
    hub = limited_hub
    hangers = ["hang0", "hang1"]
    tokens = {u: hub.ensure_user(u) for u in [*hangers, "late0", "late1", "late2"]}
    for user in hangers:
        assert _post_spawn(hub, user, tokens[user]).status_code == 202
    # both slots are held by spawns that will never answer: everyone else is throttled
    refused = {u: _post_spawn(hub, u, tokens[u]) for u in ("late0", "late1", "late2")}
    for user, r in refused.items():
        assert r.status_code == 429, (user, r.status_code, r.text)
        assert "Too many users trying to log in right now" in r.json()["message"]
        assert 1 <= int(r.headers["Retry-After"]) <= 3
        assert _containers(docker_client, hub, user) == [], f"a refused spawn left a container for {user}"
        assert not (hub.server(user) or {}).get("pending")
    # the hanging spawns end at http_timeout: cleanly failed, their containers removed
    for user in hangers:
        hub.wait_stopped(user, timeout=HTTP_TIMEOUT + 60)
        deadline = time.monotonic() + 30
        while _containers(docker_client, hub, user) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _containers(docker_client, hub, user) == [], f"{user}'s timed-out workspace was left behind"
    assert "never showed up" in hub.log_tail(400)
    # the slots are free again: a refused user's retry is accepted and ready
    r = hub.spawn("late0", token=tokens["late0"])
    assert r.status_code in (201, 202), r.text
    hub.stop_server("late0")


def test_burst_of_users_all_get_their_workspace_by_honouring_retry_after(limited_hub, docker_client):
    hub = limited_hub
    users = [f"burst{i}" for i in range(6)]
    tokens = {u: hub.ensure_user(u) for u in users}
    outcomes: dict[str, list[int]] = {u: [] for u in users}

    def start(user: str) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            r = _post_spawn(hub, user, tokens[user])
            outcomes[user].append(r.status_code)
            if r.status_code in (201, 202):
                hub.wait_ready(user)
                return
            assert r.status_code == 429, f"{user}: {r.status_code} {r.text}"
            time.sleep(int(r.headers["Retry-After"]))
        raise AssertionError(f"{user} was throttled for 4 minutes: {outcomes[user]}")

    with cf.ThreadPoolExecutor(len(users)) as pool:
        for future in [pool.submit(start, u) for u in users]:
            future.result()
    # each user got exactly one accepted request and one running workspace
    for user in users:
        assert sum(code in (201, 202) for code in outcomes[user]) == 1, outcomes[user]
        running = [c for c in _containers(docker_client, hub, user) if c.status == "running"]
        assert len(running) == 1, (user, running)
        assert hub.server(user)["ready"]
    assert any(429 in codes for codes in outcomes.values()), (
        f"six spawns at once never hit the limit of {LIMIT}: {outcomes}"
    )
    for user in users:
        hub.stop_server(user)


def test_start_timeout_cancels_the_start_and_leaves_nothing(limited_hub, docker_client):
    hub = limited_hub
    token = hub.ensure_user("stall1")
    assert _post_spawn(hub, "stall1", token).status_code == 202
    hub.wait_stopped("stall1", timeout=START_TIMEOUT + 60)
    assert f"stall1's server failed to start in {START_TIMEOUT} seconds" in hub.log_tail(400)
    time.sleep(2)
    labels = {"label": [f"mlhub.origin={hub.hub_name}", "mlhub.user=stall1"]}
    left = {
        "containers": [c.name for c in docker_client.containers.list(all=True, filters=labels)],
        "volumes": [v.name for v in docker_client.volumes.list(filters=labels)],
        "networks": [n.name for n in docker_client.networks.list(filters=labels)],
    }
    assert left == {"containers": [], "volumes": [], "networks": []}, f"the cancelled start left {left}"
