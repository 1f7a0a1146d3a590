"""MLHubDockerSpawner against the real Docker engine, through a real hub's REST API."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from mlhub.core.names import user_network_name, workspace_name, workspace_volume_name
from tests.support.engine_objects import containers_of, objects_of, through_proxy
from tests.support.images import STOCK_IMAGE, WORKSPACE_IMAGE

MiB = 1024**2


def exec_python(container, code: str) -> tuple[int, str]:
    result = container.exec_run(["python3", "-c", code])
    return result.exit_code, result.output.decode(errors="replace")


def can_reach(container, url: str) -> bool:
    code, out = exec_python(
        container,
        "import urllib.request, urllib.error, sys\n"
        f"try:\n urllib.request.urlopen({url!r}, timeout=3)\n"
        "except urllib.error.HTTPError:\n pass\n"
        "except Exception as e:\n print(e); sys.exit(1)\n",
    )
    return code == 0


def test_rest_spawn_has_limits_labels_network_and_answers(hub, docker_client):
    """The 'done when' case: cpu 0.5, 512m, 3 days through the REST API."""
    token = hub.ensure_user("alice")
    before = time.time()
    r = hub.spawn("alice", "ws1", {"cpu_limit": 0.5, "mem_limit": "512m", "days_to_live": 3}, token=token)
    assert r.status_code in (201, 202), r.text

    (container,) = containers_of(docker_client, hub.hub_name, "alice", "ws1")
    assert container.name == workspace_name(hub.hub_name, "alice", "ws1")
    host = container.attrs["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 512 * MiB
    assert host["CpuQuota"] == 0  # NanoCpus only, no conflicting quota

    labels = container.labels
    expires = int(labels["mlhub.expiration_timestamp_seconds"])
    assert before + 3 * 86400 - 5 <= expires <= time.time() + 3 * 86400 + 5
    assert {k: v for k, v in labels.items() if k.startswith("mlhub.")} == {
        "mlhub.origin": hub.hub_name,
        "mlhub.user": "alice",
        "mlhub.server_name": "ws1",
        "mlhub.created_by": "alice",
        "mlhub.expiration_timestamp_seconds": str(expires),
        "mlhub.cpu_limit": "0.5",
        "mlhub.boot_cpu_limit": "1",  # booted at one core, then limited (boot-cpu-burst.md)
        "mlhub.mem_limit": str(512 * MiB),
        "mlhub.gpus": "",
        "mlhub.install": hub.install_id(),
        "mlhub.user_created": labels["mlhub.user_created"],
    }
    # the account's identity: when JupyterHub created it (docs/decisions/ownership.md)
    created = hub.api("GET", "/users/alice").json()["created"]
    assert (
        abs(
            int(labels["mlhub.user_created"])
            - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        )
        < 1
    )
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [user_network_name(hub.hub_name, "alice")]
    network = docker_client.networks.get(user_network_name(hub.hub_name, "alice"))
    owner = {k: labels[k] for k in ("mlhub.origin", "mlhub.user", "mlhub.install", "mlhub.user_created")}
    assert network.attrs["Labels"] == owner

    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert env["CPU_LIMIT"] == "0.5" and env["MEM_LIMIT"] == str(512 * MiB)

    reply = through_proxy(hub, "alice", "ws1", token)
    assert reply.status_code == 200, reply.text
    assert "started" in reply.json()

    # the admin sees the expiry in the server's state
    state = hub.server("alice", "ws1")["state"]["mlhub"]
    assert state["expiration_timestamp"] == expires and state["created_by"] == "alice"


def test_shm_env_and_volume(hub, docker_client):
    token = hub.ensure_user("carol")
    r = hub.spawn(
        "carol",
        "",
        {"shm_size": "128m", "env": "GREETING=hello world\nEMPTY=", "is_mount_volume": True},
        token=token,
    )
    assert r.status_code in (201, 202), r.text
    (container,) = containers_of(docker_client, hub.hub_name, "carol", "")
    assert container.attrs["HostConfig"]["ShmSize"] == 128 * MiB
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert env["GREETING"] == "hello world" and env["EMPTY"] == ""
    volume_name = workspace_volume_name(hub.hub_name, "carol", "")
    (mount,) = [m for m in container.attrs["Mounts"] if m["Destination"] == "/workspace"]
    assert mount["Type"] == "volume" and mount["Name"] == volume_name
    volume = docker_client.volumes.get(volume_name)
    assert (
        volume.attrs["Labels"]["mlhub.user"] == "carol"
        and volume.attrs["Labels"]["mlhub.origin"] == hub.hub_name
    )

    # data in /workspace survives a stop and start; the container itself does not
    assert container.exec_run(["sh", "-c", "echo kept > /workspace/note.txt"]).exit_code == 0
    hub.stop_server("carol")
    # Docker's auto-remove may still be finishing when the stop returns (the hub's own
    # remove then answers "removal already in progress"): give it a moment
    deadline = time.monotonic() + 15
    while containers_of(docker_client, hub.hub_name, "carol") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert containers_of(docker_client, hub.hub_name, "carol") == []
    hub.spawn("carol", "", token=token)
    (container,) = containers_of(docker_client, hub.hub_name, "carol", "")
    assert container.exec_run(["cat", "/workspace/note.txt"]).output.strip() == b"kept"
    hub.stop_server("carol")


def test_no_volume_when_not_asked(hub, docker_client):
    token = hub.ensure_user("dave")
    hub.spawn("dave", "novol", {"is_mount_volume": False}, token=token)
    (container,) = containers_of(docker_client, hub.hub_name, "dave", "novol")
    assert not [m for m in container.attrs["Mounts"] if m["Destination"] == "/workspace"]
    assert (
        docker_client.volumes.list(filters={"label": [f"mlhub.origin={hub.hub_name}", "mlhub.user=dave"]})
        == []
    )
    hub.stop_server("dave", "novol", remove=True)


@pytest.mark.parametrize(
    "options, field",
    [
        ({"cpu_limit": -1}, "cpu_limit"),
        ({"cpu_limit": 4}, "cpu_limit"),  # over the admin's max of 1
        ({"mem_limit": "lots"}, "mem_limit"),
        ({"image": "unknown/image:1"}, "image"),
        ({"gpus": "abc"}, "gpus"),
        ({"gpus": 1}, "gpus"),  # no NVIDIA runtime on this engine
        ({"days_to_live": -1}, "days_to_live"),
        ({"env": "NOEQUALS"}, "env"),
        ({"env": {"JUPYTERHUB_API_TOKEN": "stolen"}}, "env"),
        ({"shm_size": "huge"}, "shm_size"),
    ],
)
def test_invalid_options_get_400_and_leave_nothing(hub, docker_client, options, field):
    token = hub.ensure_user("mallory")
    r = hub.spawn("mallory", "bad", options, token=token)
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert f"{field}:" in message, message
    assert objects_of(docker_client, hub.hub_name, "mallory") == {
        "containers": [],
        "networks": [],
        "volumes": [],
        "named": [],
    }


def test_stock_image_works_as_workspace(hub, docker_client):
    """Any image that runs jupyterhub-singleuser works: no MLHub entrypoint, no /workspace."""
    token = hub.ensure_user("erin")
    r = hub.spawn("erin", "stock", {"image": STOCK_IMAGE}, token=token)
    assert r.status_code in (201, 202), r.text
    (container,) = containers_of(docker_client, hub.hub_name, "erin", "stock")
    assert container.image.tags == [STOCK_IMAGE]
    assert through_proxy(hub, "erin", "stock", token).status_code == 200
    hub.stop_server("erin", "stock", remove=True)


def test_users_are_isolated_on_the_network(hub, docker_client):
    alice = hub.ensure_user("alice")
    bob = hub.ensure_user("bob")
    if not hub.server("alice", "ws1"):
        hub.spawn("alice", "ws1", {}, token=alice)
    hub.spawn("alice", "ws2", {}, token=alice)
    hub.spawn("bob", "", {}, token=bob)
    (a1,) = containers_of(docker_client, hub.hub_name, "alice", "ws1", all=False)
    (a2,) = containers_of(docker_client, hub.hub_name, "alice", "ws2", all=False)
    (b,) = containers_of(docker_client, hub.hub_name, "bob", "", all=False)
    bob_ip = next(iter(b.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    a2_ip = next(iter(a2.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]

    # one user's two workspaces reach each other, by name too
    assert can_reach(a1, f"http://{a2.name}:8888/")
    assert can_reach(a1, f"http://{a2_ip}:8888/")
    # another user's workspace is unreachable, by address and by name
    assert not can_reach(a1, f"http://{bob_ip}:8888/")
    assert not can_reach(a1, f"http://{b.name}:8888/")
    assert not can_reach(b, f"http://{a2_ip}:8888/")
    hub.stop_server("alice", "ws2", remove=True)
    hub.stop_server("bob")


def test_user_cannot_reach_another_users_workspace_through_the_hub(hub):
    alice = hub.ensure_user("alice")
    bob = hub.ensure_user("bob")
    if not hub.server("alice", "ws1"):
        hub.spawn("alice", "ws1", {}, token=alice)
    assert through_proxy(hub, "alice", "ws1", bob).status_code in (403, 404)
    r = hub.spawn("alice", "bobs", {}, token=bob)
    assert r.status_code in (403, 404), r.text


def test_admin_creates_workspace_for_a_user(hub, docker_client):
    admin = hub.ensure_user("boss", admin=True)
    user = hub.ensure_user("frank")
    r = hub.spawn("frank", "given", {"cpu_limit": "0.25", "mem_limit": "1"}, token=admin)
    assert r.status_code in (201, 202), r.text
    (container,) = containers_of(docker_client, hub.hub_name, "frank", "given")
    assert container.labels["mlhub.created_by"] == "boss"
    assert container.labels["mlhub.expiration_timestamp_seconds"] == str(
        hub.server("frank", "given")["state"]["mlhub"]["expiration_timestamp"]
    )
    assert container.attrs["HostConfig"]["Memory"] == 1024 * MiB  # bare number = GB
    assert through_proxy(hub, "frank", "given", user).status_code == 200
    hub.stop_server("frank", "given", remove=True)


def test_stop_and_delete_removes_container_keeps_volume(hub, docker_client):
    token = hub.ensure_user("gina")
    hub.spawn("gina", "tmp", {}, token=token)
    assert len(containers_of(docker_client, hub.hub_name, "gina", "tmp")) == 1
    hub.stop_server("gina", "tmp")
    assert containers_of(docker_client, hub.hub_name, "gina", "tmp") == []
    r = hub.api("DELETE", "/users/gina/servers/tmp", token=token, json={"remove": True})
    assert r.status_code in (202, 204), r.text
    assert "tmp" not in hub.api("GET", "/users/gina?include_stopped_servers=1").json()["servers"]
    # the volume is kept unless the admin asked for volumes to go with their server
    assert docker_client.volumes.get(workspace_volume_name(hub.hub_name, "gina", "tmp"))


def test_foreign_container_with_the_workspace_name_is_never_used(hub, docker_client):
    token = hub.ensure_user("henry")
    squatter = docker_client.containers.create(
        WORKSPACE_IMAGE, name=workspace_name(hub.hub_name, "henry", ""), command=["sleep", "600"]
    )
    try:
        r = hub.spawn("henry", "", {"is_mount_volume": False}, token=token)
        assert r.status_code == 409, r.text
        message = r.json()["message"]
        assert f"named {squatter.name!r} already exists" in message and "remove or rename it" in message, (
            message
        )
        squatter.reload()
        assert squatter.status == "created"  # untouched
        # nothing half-made: the network this start created went with it
        left = objects_of(docker_client, hub.hub_name, "henry")
        assert left["networks"] == [] and left["containers"] == [], left
    finally:
        squatter.remove(force=True)


def test_hub_restart_keeps_workspaces_running_and_reachable(hub, docker_client):
    token = hub.ensure_user("ivy")
    hub.spawn("ivy", "keep", {"days_to_live": 2}, token=token)
    (before,) = containers_of(docker_client, hub.hub_name, "ivy", "keep")
    expires = hub.server("ivy", "keep")["state"]["mlhub"]["expiration_timestamp"]
    hub.restart()
    (after,) = containers_of(docker_client, hub.hub_name, "ivy", "keep", all=False)
    assert after.id == before.id
    model = hub.server("ivy", "keep")
    assert model["ready"] and model["state"]["mlhub"]["expiration_timestamp"] == expires
    assert through_proxy(hub, "ivy", "keep", token).status_code == 200
    hub.stop_server("ivy", "keep", remove=True)


def test_many_users_each_get_a_network(hub, docker_client):
    """Docker's default pools run out after about 30 bridge networks; MLHub's pool does not."""
    import asyncio
    from ipaddress import IPv4Network

    from mlhub.engines.docker_network import _taken_subnets, ensure_network

    api = docker_client.api

    async def call(method, *args, **kwargs):
        return getattr(api, method)(*args, **kwargs)

    async def make(n):
        created = []
        for i in range(n):
            name = f"{hub.hub_name}-pool{i}"
            await ensure_network(
                call,
                name,
                {"mlhub.origin": hub.hub_name, "mlhub.user": f"pool{i}"},
                IPv4Network("172.30.0.0/15"),
                24,
            )
            created.append(name)
        return created

    names = asyncio.run(make(40))
    subnets = [IPv4Network(api.inspect_network(n)["IPAM"]["Config"][0]["Subnet"]) for n in names]
    assert len(set(subnets)) == 40 and all(
        s.prefixlen == 24 and s.subnet_of(IPv4Network("172.30.0.0/15")) for s in subnets
    )
    assert len(asyncio.run(_taken_subnets(call))) >= 40
    for n in names:
        api.remove_network(n)
