"""Fair limits by default, on the real Docker engine: memory, CPU, processes, privileges,
the /workspace disk, named servers. A hub started with no limit variables at all must still
give every workspace bounds, and refuse what is beyond them with a 400 naming the field."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import docker
import pytest
import requests

from mlhub.core.names import workspace_volume_name
from tests.support.engine_objects import containers_of, objects_of, through_proxy
from tests.support.images import STOCK_IMAGE, WORKSPACE_IMAGE
from tests.support.web import login

MiB = 1024**2
ADMIN_PASSWORD = "initial-Admin-pw"
NOTHING = {"containers": [], "networks": [], "volumes": [], "named": []}


@pytest.fixture(scope="module")
def default_hub(hub_factory):
    """No CPU, memory, process, disk or named-server variable set: only the defaults."""
    return hub_factory(
        env={
            "MLHUB_ALLOWED_IMAGES": f"{WORKSPACE_IMAGE},{STOCK_IMAGE}",
            "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
    )


def _inspect(docker_client, hub, user: str, server: str) -> dict:
    (container,) = containers_of(docker_client, hub.hub_name, user, server, all=False)
    return container.attrs["HostConfig"]


@pytest.mark.parametrize("image", [WORKSPACE_IMAGE, STOCK_IMAGE])
def test_every_workspace_is_bounded_by_default(default_hub, docker_client, image):
    """Memory, CPU and processes limited, no new privileges, capabilities dropped; and the
    image still starts and answers (both the bundled and a stock Jupyter image)."""
    hub = default_hub
    user = "bounded" + ("w" if image == WORKSPACE_IMAGE else "s")
    token = hub.ensure_user(user)
    r = hub.spawn(user, "", {"image": image}, token=token)
    assert r.status_code in (201, 202), r.text
    try:
        host = _inspect(docker_client, hub, user, "")
        assert host["Memory"] > 0, "no memory limit by default"
        assert host["NanoCpus"] > 0, "no CPU limit by default"
        assert host["PidsLimit"] == 1024, f"process limit: {host['PidsLimit']}"
        assert any(o.startswith("no-new-privileges") for o in host["SecurityOpt"] or []), host["SecurityOpt"]
        assert {"NET_RAW", "MKNOD", "SETFCAP", "SETPCAP", "AUDIT_WRITE", "SYS_CHROOT"} <= set(
            host["CapDrop"] or []
        ), host["CapDrop"]
        assert through_proxy(hub, user, "", token).status_code == 200
        (container,) = containers_of(docker_client, hub.hub_name, user, "", all=False)
        status = container.exec_run(["grep", "NoNewPrivs", "/proc/self/status"]).output.decode()
        assert status.split() == ["NoNewPrivs:", "1"], status
    finally:
        hub.stop_server(user)


def test_fork_storm_is_stopped_by_the_process_limit(default_hub, docker_client):
    """3000 background sleeps (30 s each) in one workspace: forks fail at the limit, the
    workspace's process count stays at or below it, the hub keeps answering."""
    hub = default_hub
    token = hub.ensure_user("forker")
    assert hub.spawn("forker", "", {}, token=token).status_code in (201, 202)
    (container,) = containers_of(docker_client, hub.hub_name, "forker", "", all=False)
    try:
        storm = container.exec_run(
            ["sh", "-c", "for i in $(seq 3000); do sleep 30 >/dev/null 2>&1 & done; echo storm-over"]
        )
        output = storm.output.decode(errors="replace")
        count = container.stats(stream=False)["pids_stats"]["current"]
        assert count <= 1024, f"{count} processes in one workspace"
        assert "fork" in output.lower(), output[-500:]
        assert hub.api("GET", "/").status_code == 200
    finally:
        hub.stop_server("forker")  # kills the sleeps with the container


def test_memory_beyond_the_host_is_refused_and_nothing_created(default_hub, docker_client):
    hub = default_hub
    token = hub.ensure_user("greedy")
    for options, field in (
        ({"mem_limit": "1000t"}, "mem_limit"),
        ({"shm_size": "1000t"}, "shm_size"),
        ({"mem_limit": "512m", "shm_size": "1g"}, "shm_size"),
    ):
        r = hub.spawn("greedy", "big", options, token=token)
        try:
            assert r.status_code == 400, (options, r.status_code, r.text)
            message = r.json()["message"]
            assert f"{field}: must be at most" in message, message
            assert objects_of(docker_client, hub.hub_name, "greedy") == NOTHING
        finally:
            if r.status_code in (201, 202):
                hub.stop_server("greedy", "big", remove=True)
    # within the range it starts
    r = hub.spawn("greedy", "big", {"mem_limit": "512m", "shm_size": "256m"}, token=token)
    assert r.status_code in (201, 202), r.text
    host = _inspect(docker_client, hub, "greedy", "big")
    assert host["Memory"] == 512 * MiB and host["ShmSize"] == 256 * MiB
    hub.stop_server("greedy", "big", remove=True)


def test_named_servers_are_limited_by_default(default_hub, docker_client):
    hub = default_hub
    token = hub.ensure_user("hoarder")
    names = [f"n{i}" for i in range(5)]
    try:
        for name in names:
            r = hub.spawn("hoarder", name, {"image": STOCK_IMAGE, "is_mount_volume": False}, token=token)
            assert r.status_code in (201, 202), r.text
        r = hub.spawn(
            "hoarder", "n5", {"image": STOCK_IMAGE, "is_mount_volume": False}, token=token, wait=False
        )
        assert r.status_code == 400, r.text
        assert "already has the maximum of 5 named servers" in r.json()["message"]
        assert not containers_of(docker_client, hub.hub_name, "hoarder", "n5")
    finally:
        for name in names:
            if hub.server("hoarder", name) is not None:
                hub.stop_server("hoarder", name, remove=True)


# --- the /workspace disk ------------------------------------------------------------------


@pytest.fixture(scope="module")
def disk_hub(hub_factory):
    """/workspace capped at 100m; volumes go with their server."""
    return hub_factory(
        env={"MLHUB_WORKSPACE_DISK_LIMIT": "100m"},
        extra_config="c.MLHubDockerSpawner.remove_volume_on_delete = True\n",
    )


def _mounts_under(path: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [line for line in text.splitlines() if str(path) in line]


def _write(container, megabytes: int) -> tuple[int, str]:
    result = container.exec_run(
        ["sh", "-c", f"dd if=/dev/zero of=/workspace/big bs=1M count={megabytes} 2>&1; echo rc=$?"],
    )
    return result.exit_code, result.output.decode(errors="replace")


@pytest.mark.skipif(os.geteuid() != 0, reason="the disk cap needs a hub running as root")
def test_workspace_disk_is_capped_and_nothing_left_after_delete(disk_hub, docker_client):
    hub = disk_hub
    token = hub.ensure_user("filler")
    assert hub.spawn("filler", "data", {}, token=token).status_code in (201, 202)
    (container,) = containers_of(docker_client, hub.hub_name, "filler", "data", all=False)
    _code, out = _write(container, 300)
    assert "No space left on device" in out and "rc=0" not in out, out
    df = container.exec_run(["df", "-B1M", "/workspace"]).output.decode()
    size_mb = int(df.splitlines()[1].split()[1])
    assert 80 <= size_mb <= 100, df
    # the hub and the host are fine
    assert hub.api("GET", "/").status_code == 200
    assert through_proxy(hub, "filler", "data", token).status_code == 200

    # after a host reboot the image is no longer mounted: the next start mounts it again
    hub.stop_server("filler", "data")
    volume = docker_client.volumes.get(workspace_volume_name(hub.hub_name, "filler", "data"))
    device = Path(volume.attrs["Options"]["device"])
    mountpoint = device.parent
    subprocess.run(["umount", str(mountpoint)], check=True)
    assert hub.spawn("filler", "data", {}, token=token).status_code in (201, 202)
    (container,) = containers_of(docker_client, hub.hub_name, "filler", "data", all=False)
    assert container.exec_run(["ls", "-s", "/workspace/big"]).exit_code == 0  # the data is still there
    _code, out = _write(container, 300)
    assert "No space left on device" in out, out

    # deleting the server removes the volume, its mount and its image file
    hub.stop_server("filler", "data", remove=True)

    def leftovers() -> dict[str, list]:
        return {
            "volumes": objects_of(docker_client, hub.hub_name, "filler")["volumes"],
            "mounts": _mounts_under(mountpoint),
            "files": [p.name for p in mountpoint.parent.glob(mountpoint.name + "*")],
        }

    # JupyterHub deletes the server (volume, then image) after answering the DELETE
    deadline = time.monotonic() + 30
    while any(leftovers().values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert leftovers() == {"volumes": [], "mounts": [], "files": []}


def test_container_layer_cap_this_engine_cannot_give_is_a_clear_error(hub_factory, docker_client):
    """overlay2 on ext4 has no --storage-opt size: the admin's setting fails the spawn naming it."""
    hub = hub_factory(
        env={"MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE},
        extra_config='c.MLHubDockerSpawner.container_disk_limit = "1G"\n',
    )
    info = docker_client.info()
    if info["Driver"] != "overlay2" or info["DriverStatus"][0][1] == "xfs":
        pytest.skip("this engine may support --storage-opt size")
    token = hub.ensure_user("layer")
    message = hub.spawn_refused("layer", "", {"is_mount_volume": False}, token=token, status=500)
    assert "cannot cap the container's disk" in message and "container_disk_limit" in message, message[-2000:]
    assert containers_of(docker_client, hub.hub_name, "layer") == []


def test_form_and_workspaces_page_show_the_limits(default_hub, docker_client):
    """The options form says what an empty field gets and every maximum, processes and disk
    included; the Workspaces page shows them for each workspace."""
    hub = default_hub
    session = login(hub.url, "admin", ADMIN_PASSWORD)
    form = session.get(f"{hub.url}/hub/spawn/admin/shown", timeout=60).text
    host = docker_client.info()
    cores, memory = float(host["NCPU"]), host["MemTotal"] // MiB
    assert f"0.01 to {cores:g} cores" in form
    assert f"At most {memory}m." in form or f"At most {memory // 1024}g." in form, form
    assert "Processes: at most 1024 per workspace" in form
    assert "A new volume holds at most 10g." in form
    assert "at most the memory limit" in form

    token = hub.ensure_user("shown")
    assert hub.spawn("shown", "ws", {"cpu_limit": "0.5", "mem_limit": "1g"}, token=token).status_code in (
        201,
        202,
    )
    try:
        page = session.get(f"{hub.url}/hub/workspaces", timeout=60).text
        assert "0.5 CPU, 1g memory, 1024 processes, 10g disk" in page, page
    finally:
        hub.stop_server("shown", "ws", remove=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the disk cap needs a hub running as root")
def test_a_deleted_users_capped_volume_goes_with_its_disk_image(default_hub, docker_client):
    hub = default_hub
    admin = hub.ensure_user("cleaner", admin=True)
    token = hub.ensure_user("leaver")
    assert hub.spawn("leaver", "", {"image": STOCK_IMAGE}, token=token).status_code in (201, 202)
    volume = docker_client.volumes.get(workspace_volume_name(hub.hub_name, "leaver", ""))
    mountpoint = Path(volume.attrs["Options"]["device"]).parent
    assert volume.attrs["Labels"]["mlhub.disk_limit"] == str(10 * 1024**3) and _mounts_under(mountpoint)
    hub.stop_server("leaver")
    # deleting the account removes its volumes (MLHUB_DELETED_USER_VOLUMES=remove), disk image
    # and mount included; whatever a deletion leaves, the cleanup's users run removes
    assert hub.api("DELETE", "/users/leaver").status_code == 204
    report = requests.get(
        f"{hub.url}/services/cleanup-service/users", headers={"Authorization": f"token {admin}"}, timeout=120
    ).json()
    assert report["ok"], report
    assert not any(a["kind"] == "volume" and a["name"] == volume.name for a in report["kept"]), report
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(volume.name)
    assert _mounts_under(mountpoint) == [] and list(mountpoint.parent.glob(mountpoint.name + "*")) == []
