"""Faults the hub must survive, each against the real engine: workspaces killed or removed
behind its back, an image that is not there, a network name taken by someone else, a volume
without room.

(Hub restarts with running workspaces: test_docker_spawner's
test_hub_restart_keeps_workspaces_running_and_reachable; a foreign container with the
workspace's name: ..._foreign_container_with_the_workspace_name_is_never_used.)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import docker
import pytest

from mlhub.core.names import workspace_volume_name
from tests.support.engine import engine_relay
from tests.support.engine_objects import objects_of, through_proxy
from tests.support.images import STOCK_IMAGE

MISSING_IMAGE = "mlhub/not-built-here:1"


@pytest.fixture(scope="module")
def fault_hub(hub_factory):
    return hub_factory(
        env={"MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE, "MLHUB_ALLOWED_IMAGES": f"{STOCK_IMAGE},{MISSING_IMAGE}"},
        # notice dead workspaces within seconds (JupyterHub's default poll is 30 s)
        extra_config="c.Spawner.poll_interval = 2\n",
    )


@pytest.mark.parametrize("how", ["killed", "removed"])
def test_workspace_gone_behind_the_hubs_back_can_be_started_again(fault_hub, docker_client, how):
    user = f"victim-{how}"
    token = fault_hub.ensure_user(user)
    assert fault_hub.spawn(user, "", {}, token=token).status_code in (201, 202)
    container = docker_client.containers.get(fault_hub.server(user)["state"]["object_id"])
    if how == "killed":
        container.kill()
    else:
        container.remove(force=True)
    fault_hub.wait_stopped(user)
    r = fault_hub.spawn(user, "", {}, token=token)
    assert r.status_code in (201, 202), r.text
    fresh = docker_client.containers.get(fault_hub.server(user)["state"]["object_id"])
    assert fresh.status == "running"
    assert through_proxy(fault_hub, user, "", token).status_code == 200  # and the new one answers


def test_missing_image_is_a_clear_error_and_leaves_nothing(fault_hub, docker_client):
    token = fault_hub.ensure_user("carol")
    message = fault_hub.spawn_refused("carol", "ws", {"image": MISSING_IMAGE}, token=token, status=400)
    assert f"image: '{MISSING_IMAGE}' is not on this Docker host" in message, message[-2000:]
    assert objects_of(docker_client, fault_hub.hub_name, "carol") == {
        "containers": [],
        "networks": [],
        "volumes": [],
        "named": [],
    }
    # and the user can start something else right away
    assert fault_hub.spawn("carol", "ws", {"image": STOCK_IMAGE}, token=token).status_code in (201, 202)


def test_network_name_taken_by_someone_else(fault_hub, docker_client):
    token = fault_hub.ensure_user("dave")
    foreign = docker_client.networks.create(f"{fault_hub.hub_name}-dave", driver="bridge")
    try:
        message = fault_hub.spawn_refused("dave", "", {}, token=token, status=409)
        assert f"{fault_hub.hub_name}-dave" in message and "remove or rename it" in message, message[-2000:]
        foreign.reload()
        assert foreign.attrs.get("Labels") in (None, {}), "the foreign network was changed"
        assert objects_of(docker_client, fault_hub.hub_name, "dave")["containers"] == []
    finally:
        foreign.remove()
    # once the name is free, dave's workspace starts
    assert fault_hub.spawn("dave", "", {}, token=token).status_code in (201, 202)


@pytest.fixture(scope="module")
def small_disk_hub(hub_factory):
    """Workspace volumes are 64 KiB tmpfs mounts over the image's /usr/share (61 MB): Docker's
    copy of the image's content into a new volume runs out of space, as on a full disk."""
    return hub_factory(
        env={"MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE},
        extra_config=(
            'c.MLHubDockerSpawner.volume_driver_options = {"type": "tmpfs", "device": "tmpfs", "o": "size=64k"}\n'
            'c.MLHubSpawner.workspace_mount_path = "/usr/share"\n'
        ),
    )


def test_volume_out_of_space_is_a_clear_error_and_leaves_nothing(small_disk_hub, docker_client):
    hub = small_disk_hub
    token = hub.ensure_user("erin")
    message = hub.spawn_refused("erin", "big", {}, token=token, status=507)
    assert "No space left on device: its /workspace volume" in message, message[-2000:]
    assert repr(workspace_volume_name(hub.hub_name, "erin", "big")) in message, message[-2000:]
    left = objects_of(docker_client, hub.hub_name, "erin")  # networks: by label and by name
    assert left == {"containers": [], "networks": [], "volumes": [], "named": []}, left
    # a workspace without the volume starts on the same hub: nothing of the failure stands in the way
    r = hub.spawn("erin", "big", {"is_mount_volume": False}, token=token)
    assert r.status_code in (201, 202), r.text


def _wait_gone(client: docker.DockerClient, container_id: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while client.api.containers(all=True, filters={"id": container_id}):
        assert time.monotonic() < deadline, (
            f"container {container_id[:12]} still there {timeout}s after its server stopped"
        )
        time.sleep(0.5)


def _wait_for_log(hub, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in hub.log_tail(400):
            return
        time.sleep(0.5)
    raise AssertionError(f"not logged within {timeout}s: {text!r}\n{hub.log_tail()}")


def test_engine_unreachable_keeps_running_workspaces_and_refuses_spawns(hub_factory, docker_client):
    """The hub loses its engine while the engine and the workspace run on (socket gone, engine
    overloaded or being upgraded with live-restore): each poll it cannot make is logged and the
    workspace stays running in the hub's eyes; a new spawn is refused with a clear 503. When the
    engine answers again the same container is still the user's server, reachable and stoppable.
    (The engine itself restarting, containers and all: test_restarts.)"""
    socket_dir = Path(tempfile.mkdtemp(prefix="mlhub-relay-", dir="/tmp"))
    with engine_relay(socket_dir / "docker.sock") as relay:
        hub = hub_factory(
            env={"MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE, "DOCKER_HOST": relay.url},
            extra_config="c.Spawner.poll_interval = 2\n",
        )
        rita, sam = hub.ensure_user("rita"), hub.ensure_user("sam")
        assert hub.spawn("rita", token=rita).status_code in (201, 202)
        container_id = hub.server("rita")["state"]["object_id"]

        relay.cut()
        _wait_for_log(hub, "Docker engine does not answer; cannot check rita's workspace")
        assert hub.server("rita")["ready"], "a workspace the hub cannot check was reported stopped"
        message = hub.spawn_refused("sam", token=sam, status=503)
        assert "The Docker engine does not answer, so sam's workspace was not started" in message, message[
            -2000:
        ]
        assert "sam had no container to stop" in hub.log_tail(200)  # JupyterHub's cleanup of the failed start
        assert "Failed to cleanup sam's server" not in hub.log_tail(200)  # ... without a traceback
        assert objects_of(docker_client, hub.hub_name, "sam")["containers"] == []

        relay.restore()
        time.sleep(5)  # polls that reach the engine again
        model = hub.server("rita")
        assert model["ready"] and model["state"]["object_id"] == container_id
        assert through_proxy(hub, "rita", "", rita).status_code == 200
        hub.stop_server("rita")
        _wait_gone(docker_client, container_id)
