"""Refused spawn requests on the real engine: a clear 400, and nothing left behind — no
container, volume or network, and no server row for a named server the request would have made."""

from __future__ import annotations

import time

import pytest

from devtools.hubprocess import HubProcess
from tests.support.engine_objects import objects_of
from tests.support.images import STOCK_IMAGE

NOTHING = {"containers": [], "networks": [], "volumes": [], "named": []}


def server_names(hub: HubProcess, user: str) -> set[str]:
    r = hub.api("GET", f"/users/{user}?include_stopped_servers=1")
    r.raise_for_status()
    return set(r.json().get("servers", {})) - {""}  # every user has a default server row


def settled_server_names(hub: HubProcess, user: str, want: set[str]) -> set[str]:
    """The user's server rows once the hub has finished undoing refused starts (it removes
    a refused request's new row right after answering)."""
    deadline = time.monotonic() + 30
    while (names := server_names(hub, user)) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    return names


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PATH", "/nowhere"), ("PYTHONHOME", "/nowhere")],
)
def test_env_that_would_break_the_start_is_refused_and_leaves_nothing(
    hub: HubProcess, docker_client, variable: str, value: str
) -> None:
    user = f"env-{variable.lower().replace('_', '')}"
    token = hub.ensure_user(user)
    message = hub.spawn_refused(user, "ws", {"image": STOCK_IMAGE, "env": f"{variable}={value}"}, token=token)
    assert f"env: {variable} would keep the workspace from starting" in message
    assert "not allowed: PATH, PYTHONHOME" in message
    assert objects_of(docker_client, hub.hub_name, user) == NOTHING
    assert settled_server_names(hub, user, set()) == set(), "a refused request left a server row behind"


def test_refused_requests_leave_no_server_row_but_keep_existing_ones(hub: HubProcess, docker_client) -> None:
    token = hub.ensure_user("rowan")
    for options in ({"cpu_limit": 64}, {"image": "not/allowed"}, {"bogus": 1}, {"env": "PATH=/x"}):
        hub.spawn_refused("rowan", "fresh", {"image": STOCK_IMAGE, **options}, token=token)
        assert settled_server_names(hub, "rowan", set()) == set(), options
    # a server created before (without starting it) stays after a refused start
    assert hub.api("PUT", "/users/rowan/servers/made", token=token, json={}).status_code == 201
    hub.spawn_refused("rowan", "made", {"cpu_limit": 64}, token=token)
    assert settled_server_names(hub, "rowan", {"made"}) == {"made"}
    # the refused name can be started right after, with valid options
    r = hub.spawn("rowan", "fresh", {"image": STOCK_IMAGE}, token=token)
    assert r.status_code in (201, 202), r.text
    assert server_names(hub, "rowan") == {"made", "fresh"}
    hub.stop_server("rowan", "fresh", remove=True)
    assert objects_of(docker_client, hub.hub_name, "rowan")["containers"] == []


def test_a_workspace_that_exits_while_starting_fails_cleanly(hub: HubProcess, docker_client) -> None:
    """EXECUTE_CODE naming a file that does not exist: the container exits at once. The
    request gets 400 with the workspace's own message (not 500), and the start is undone:
    no container, volume or network left; the user can start again."""
    token = hub.ensure_user("jobless")
    message = hub.spawn_refused("jobless", "job", {"env": "EXECUTE_CODE=/workspace/missing.py"}, token=token)
    assert "stopped while starting" in message and "EXECUTE_CODE" in message, message
    assert objects_of(docker_client, hub.hub_name, "jobless") == NOTHING
    r = hub.spawn("jobless", "job", {"image": STOCK_IMAGE}, token=token)
    assert r.status_code in (201, 202), r.text
    hub.stop_server("jobless", "job", remove=True)
