"""Admin policies, the HTML form path, GPUs and the hub's own container, on the real engine."""

from __future__ import annotations

import secrets
import time

import docker
import pytest

from devtools.hubprocess import claim_hub_name
from mlhub.core.names import user_network_name
from mlhub.core.options import OptionLimits, validate_options
from mlhub.spawners.docker_objects import container_settings
from tests.support.engine_objects import containers_of, objects_of, through_proxy
from tests.support.images import WORKSPACE_IMAGE
from tests.support.web import login, page_xsrf

ADMIN_PASSWORD = "initial-Admin-pw"


@pytest.fixture(scope="module")
def fake_hub_container(docker_client):
    """Stands in for the hub's own container (the hub-in-Docker install)."""
    # an origin this process claims, so other test runs' sweeps of leftovers spare it
    origin = claim_hub_name(f"mltfake{secrets.token_hex(3)}")
    container = docker_client.containers.run(
        WORKSPACE_IMAGE,
        ["sleep", "900"],
        name=f"{origin}-hub",
        labels={"mlhub.origin": origin},
        detach=True,
    )
    yield container
    container.remove(force=True)


@pytest.fixture(scope="module")
def strict_hub(hub_factory, fake_hub_container):
    """Self-service off; GPUs allowed by config on an engine that has none; hub container set."""
    return hub_factory(
        env={"MLHUB_SELF_SERVICE": "false", "MLHUB_MAX_GPUS": "2", "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD},
        extra_config=(
            "c.MLHubDockerSpawner.gpu_runtime_check = False\n"
            f"c.MLHubDockerSpawner.hub_container = {fake_hub_container.name!r}\n"
        ),
    )


def test_self_service_off_user_cannot_create_named_workspace(strict_hub, docker_client):
    token = strict_hub.ensure_user("ulla")
    r = strict_hub.spawn("ulla", "mine", {}, token=token)
    assert r.status_code == 403, r.text
    assert "ask an admin" in r.json()["message"]
    assert objects_of(docker_client, strict_hub.hub_name, "ulla")["containers"] == []


def test_self_service_off_admin_creates_and_user_restarts(strict_hub, docker_client, fake_hub_container):
    admin = strict_hub.ensure_user("root2", admin=True)
    user = strict_hub.ensure_user("vera")
    r = strict_hub.spawn("vera", "given", {"cpu_limit": 0.5}, token=admin)
    assert r.status_code in (201, 202), r.text
    (container,) = containers_of(docker_client, strict_hub.hub_name, "vera", "given")
    assert container.labels["mlhub.created_by"] == "root2"

    # the hub's container joined the user's network, so it can reach the workspace
    fake_hub_container.reload()
    assert (
        user_network_name(strict_hub.hub_name, "vera")
        in fake_hub_container.attrs["NetworkSettings"]["Networks"]
    )

    # the user may (re)start the workspace the admin made, with the admin's options
    strict_hub.stop_server("vera", "given")
    r = strict_hub.spawn("vera", "given", token=user)
    assert r.status_code in (201, 202), r.text
    (container,) = containers_of(docker_client, strict_hub.hub_name, "vera", "given")
    assert container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert container.labels["mlhub.created_by"] == "root2"
    assert through_proxy(strict_hub, "vera", "given", user).status_code == 200

    # deleting the user's last server removes the network (and detaches the hub from it)
    strict_hub.stop_server("vera", "given", remove=True)
    # JupyterHub deletes the server (and calls delete_forever) after answering the DELETE
    deadline = time.monotonic() + 30
    while docker_client.networks.list(names=[user_network_name(strict_hub.hub_name, "vera")]):
        assert time.monotonic() < deadline, "network of deleted server's user not removed"
        time.sleep(0.3)
    fake_hub_container.reload()
    assert (
        user_network_name(strict_hub.hub_name, "vera")
        not in fake_hub_container.attrs["NetworkSettings"]["Networks"]
    )


def test_gpu_request_on_engine_without_nvidia_is_a_clear_error(strict_hub, docker_client):
    admin = strict_hub.ensure_user("root2", admin=True)
    strict_hub.ensure_user("wendy")
    r = strict_hub.spawn("wendy", "gpu", {"gpus": "1"}, token=admin)
    assert r.status_code == 400, r.text
    assert "gpus: this Docker host cannot give containers GPUs" in r.json()["message"]
    assert objects_of(docker_client, strict_hub.hub_name, "wendy") == {
        "containers": [],
        "networks": [],
        "volumes": [],
        "named": [],
    }


@pytest.mark.parametrize(
    "gpus, expected",
    [
        ("all", {"Driver": "nvidia", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]]}),
        ("2", {"Driver": "nvidia", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]]}),
        ("0,2", {"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0", "2"], "Capabilities": [["gpu"]]}),
    ],
)
def test_gpu_device_requests_reach_the_engine(docker_client, gpus, expected):
    """What MLHub sends for `gpus` is what `docker inspect` shows (created, not started)."""
    limits = OptionLimits(
        images={WORKSPACE_IMAGE: WORKSPACE_IMAGE}, default_image=WORKSPACE_IMAGE, max_gpus=None
    )
    options = validate_options({"gpus": gpus, "shm_size": "1g", "cpu_limit": 1.5}, limits)
    settings = container_settings(options, {"mlhub.origin": "mltgpu"}, None, "/workspace")
    api = docker_client.api
    created = api.create_container(
        WORKSPACE_IMAGE,
        command=["true"],
        labels=settings.create_kwargs["labels"],
        host_config=api.create_host_config(**settings.host_config),
    )
    try:
        host = api.inspect_container(created["Id"])["HostConfig"]
        (request,) = host["DeviceRequests"]
        assert {k: request[k] for k in expected} == expected
        assert host["ShmSize"] == 1024**3 and host["NanoCpus"] == 1_500_000_000
    finally:
        api.remove_container(created["Id"], force=True)


def test_html_form_uses_the_same_validator(strict_hub, docker_client):
    session = login(strict_hub.url, "admin", ADMIN_PASSWORD)
    form_url = f"{strict_hub.url}/hub/spawn/admin/formsrv"
    page, xsrf = page_xsrf(session, form_url)
    assert 'name="cpu_limit"' in page.text

    bad = session.post(
        form_url,
        data={"_xsrf": xsrf, "cpu_limit": "abc", "mem_limit": "lots", "is_mount_volume": "on"},
        timeout=60,
    )
    assert "cpu_limit: must be a number of cores" in bad.text
    assert "mem_limit: must be a size" in bad.text
    assert objects_of(docker_client, strict_hub.hub_name, "admin")["containers"] == []

    good = session.post(
        form_url,
        data={
            "_xsrf": xsrf,
            "cpu_limit": "0.25",
            "mem_limit": "700m",
            "env": "FROM_FORM=yes",
            "days_to_live": "1",
        },
        timeout=60,
    )
    assert good.status_code == 200, good.text
    strict_hub.wait_ready("admin", "formsrv")
    (container,) = containers_of(docker_client, strict_hub.hub_name, "admin", "formsrv")
    assert container.attrs["HostConfig"]["NanoCpus"] == 250_000_000
    assert container.attrs["HostConfig"]["Memory"] == 700 * 1024**2
    assert "FROM_FORM=yes" in container.attrs["Config"]["Env"]
    # the checkbox was left unticked: no volume
    assert not [m for m in container.attrs["Mounts"] if m["Destination"] == "/workspace"]
    strict_hub.stop_server("admin", "formsrv", remove=True)


def test_engine_objects_of_other_hubs_are_not_touched(strict_hub, hub, docker_client):
    """Two hubs on one engine: same user name, separate objects, each hub sees only its own."""
    t1 = hub.ensure_user("xena")
    t2 = strict_hub.ensure_user("xena")
    admin2 = strict_hub.ensure_user("root2", admin=True)
    hub.spawn("xena", "", {}, token=t1)
    strict_hub.spawn("xena", "", {}, token=admin2)
    (c1,) = containers_of(docker_client, hub.hub_name, "xena", "")
    (c2,) = containers_of(docker_client, strict_hub.hub_name, "xena", "")
    assert c1.id != c2.id
    assert through_proxy(hub, "xena", "", t1).status_code == 200
    assert through_proxy(strict_hub, "xena", "", t2).status_code == 200
    hub.stop_server("xena")
    c2.reload()
    assert c2.status == "running"
    strict_hub.stop_server("xena")
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(c1.id)
