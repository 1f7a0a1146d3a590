"""Restarts in the middle of things, on the real engine: the hub restarted while a spawn is in
flight, and the Docker engine restarted under a running hub (that test runs last: it stops
every container). Every outcome must be one where the hub and the engine agree: the workspace
is ready (running, reachable through the proxy) or it is stopped with no container of it
running, never a container the hub has forgotten. (A new spawn after such a failure is only
checked to be accepted; its own failure is what the first one already showed.)

(The hub restarted with workspaces running: test_docker_spawner's
test_hub_restart_keeps_workspaces_running_and_reachable.)
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.support.engine import engine_stopped
from tests.support.images import SLOW_AND_HANGING_WORKSPACES, STOCK_IMAGE

# long enough for a slow workspace (8 s, then its server starts) on a loaded 2-core machine, counted
# from the restarted hub's start: a CI run at 20 s gave up on one that was still starting
HTTP_TIMEOUT = 40


@pytest.fixture(scope="module")
def restart_hub(hub_factory):
    return hub_factory(
        env={"MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE},
        extra_config=f"""
c.Spawner.http_timeout = {HTTP_TIMEOUT}
c.Spawner.poll_interval = 2
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
{SLOW_AND_HANGING_WORKSPACES}
""",
    )


def _running_containers(client, hub, user: str) -> list:
    labels = [f"mlhub.origin={hub.hub_name}", f"mlhub.user={user}"]
    return client.containers.list(filters={"label": labels})


def _answers(hub, user: str, token: str) -> bool:
    try:
        r = requests.get(
            hub.at(f"/user/{user}/api/status"), headers={"Authorization": f"token {token}"}, timeout=10
        )
    except requests.RequestException:
        return False
    return r.status_code == 200


def settled(hub, client, user: str, token: str, timeout: float) -> str:
    """Wait until the hub and the engine agree on *user*'s server: ``ready`` (the hub says
    ready, one container runs, the server answers through the proxy) or ``stopped`` (the hub
    says neither ready nor pending, and no container of it runs)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        model = hub.server(user) or {}
        running = _running_containers(client, hub, user)
        seen = (model.get("ready"), model.get("pending"), [c.name for c in running])
        if model.get("ready") and len(running) == 1 and _answers(hub, user, token):
            return "ready"
        if not model.get("ready") and not model.get("pending") and not running:
            return "stopped"
        time.sleep(0.5)
    raise AssertionError(
        f"{user}: hub and engine did not agree within {timeout}s (ready, pending, running): {seen}\n{hub.log_tail(80)}"
    )


def _start_and_restart_while_pending(hub, client, user: str, token: str) -> None:
    r = hub.api("POST", f"/users/{user}/server", token=token, json={})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while not _running_containers(client, hub, user):
        assert time.monotonic() < deadline, f"{user}'s container never appeared\n{hub.log_tail(40)}"
        time.sleep(0.1)
    assert hub.server(user)["pending"] == "spawn", (
        "the spawn finished before the restart; nothing was in flight"
    )
    hub.restart()


def test_spawn_in_flight_during_hub_restart_is_adopted_when_it_comes_up(restart_hub, docker_client):
    hub = restart_hub
    token = hub.ensure_user("slow1")
    _start_and_restart_while_pending(hub, docker_client, "slow1", token)
    # the restarted hub finds the container and waits for its server: ready, nothing doubled
    assert settled(hub, docker_client, "slow1", token, timeout=HTTP_TIMEOUT + 60) == "ready"
    assert hub.server("slow1")["state"]["object_id"], "the adopted server has no container id in its state"
    hub.stop_server("slow1")
    assert _running_containers(docker_client, hub, "slow1") == []


def test_spawn_in_flight_during_hub_restart_that_never_comes_up_is_cleanly_failed(restart_hub, docker_client):
    hub = restart_hub
    token = hub.ensure_user("hang1")
    _start_and_restart_while_pending(hub, docker_client, "hang1", token)
    assert settled(hub, docker_client, "hang1", token, timeout=HTTP_TIMEOUT + 60) == "stopped"
    labels = [f"mlhub.origin={hub.hub_name}", "mlhub.user=hang1"]
    assert docker_client.containers.list(all=True, filters={"label": labels}) == [], (
        "a stopped container was left"
    )
    # the user is not stuck: a new spawn request is accepted (it hangs too, and is left to the
    # module's end, which stops the hub and removes its containers: waiting it out adds nothing)
    r = hub.api("POST", "/users/hang1/server", token=token, json={})
    assert r.status_code == 202, r.text
    assert hub.server("hang1")["pending"] == "spawn"


@pytest.mark.restarts_engine
def test_docker_engine_restart_hub_reports_stopped_and_recovers(hub_factory, docker_client):
    """The engine stops (and with it every container) and comes back. Meanwhile the hub keeps
    answering and refuses a spawn with a clear 503; afterwards it reports the workspace as
    stopped, and both users start workspaces again on the same hub process."""
    hub = hub_factory(
        env={"MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE}, extra_config="c.Spawner.poll_interval = 2\n"
    )
    rita, sam = hub.ensure_user("rita"), hub.ensure_user("sam")
    assert hub.spawn("rita", token=rita).status_code in (201, 202)
    hub_pid = hub.proc.pid
    with engine_stopped():
        assert hub.api("GET", "/").status_code == 200
        message = hub.spawn_refused("sam", token=sam, status=503)
        assert "The Docker engine does not answer, so sam's workspace was not started" in message, message[
            -2000:
        ]
        time.sleep(5)  # a few polls while the engine is down: logged, not crashed
        # dockerd closes its listener first but answers connections already open until it exits,
        # so a poll made during its shutdown may have seen rita's container stop (the server is
        # then reported stopped already); otherwise each poll since could not reach it and says so
        rita_model = hub.server("rita") or {}
        log = hub.log_tail(400)
        assert (
            not rita_model.get("ready")
            or "Docker engine does not answer; cannot check rita's workspace" in log
        ), log[-3000:]
    hub.wait_stopped("rita", timeout=60)
    assert hub.proc.pid == hub_pid and hub.proc.poll() is None, "the hub process did not survive"
    for user, token in (("rita", rita), ("sam", sam)):
        assert hub.spawn(user, token=token).status_code in (201, 202)
        assert settled(hub, docker_client, user, token, timeout=60) == "ready"
