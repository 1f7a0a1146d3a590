"""What a workspace cannot reach, and how the hub keeps its secrets. Real hub, real containers.

(Workspaces of different users cannot reach each other: test_docker_spawner's
test_users_are_isolated_on_the_network; nor through the hub: ..._through_the_hub.)
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from .conftest import STOCK_IMAGE
from .hubprocess import free_port

ADMIN_PASSWORD = "initial-Admin-pw"
PROBE = "import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\nexcept OSError:\n    sys.exit(1)\n"


@pytest.fixture(scope="module")
def iso_hub(hub_factory, docker_client):
    cleanup_port, ssh_web_port = free_port(), free_port()
    hub = hub_factory(env={
        "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE,
        "MLHUB_CLEANUP_PORT": str(cleanup_port),
        "MLHUB_SSH_SERVICE_PORT": str(ssh_web_port),
    })
    hub.cleanup_port, hub.ssh_web_port = cleanup_port, ssh_web_port
    token = hub.ensure_user("alice")
    r = hub.spawn("alice", "", {"image": STOCK_IMAGE}, token=token)
    assert r.status_code in (201, 202), r.text
    hub.alice = docker_client.containers.get(hub.server("alice")["state"]["object_id"])
    return hub


def _env(container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def _can_connect(container, host: str, port: int) -> bool:
    return container.exec_run(["python3", "-c", PROBE, host, str(port)]).exit_code == 0


def test_workspace_mounts_nothing_of_the_host(iso_hub):
    mounts = iso_hub.alice.attrs["Mounts"]
    assert [m["Type"] for m in mounts] == ["volume"] and mounts[0]["Destination"] == "/workspace", mounts
    assert not any("docker.sock" in (m.get("Source") or "") for m in mounts)
    assert iso_hub.alice.exec_run(["test", "-e", "/var/run/docker.sock"]).exit_code != 0
    assert not iso_hub.alice.attrs["HostConfig"]["Privileged"]
    assert not iso_hub.alice.attrs["HostConfig"].get("CapAdd")


def test_workspace_reaches_the_hub_api_but_not_the_services_or_the_database(iso_hub):
    api = _env(iso_hub.alice)["JUPYTERHUB_API_URL"]  # http://<host address>:<port>/hub/api
    host, port = api.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    assert _can_connect(iso_hub.alice, host, int(port)), "the probe itself is broken: the hub API must be reachable"
    for name, service_port in (("cleanup service", iso_hub.cleanup_port), ("SSH keys web", iso_hub.ssh_web_port),
                               ("proxy API", iso_hub.proxy_api_port)):
        assert not _can_connect(iso_hub.alice, host, service_port), f"{name} reachable from a workspace"
    # the hub's database is a file in its data directory, which no workspace mounts
    data_dir = str(iso_hub.workdir / "data")
    assert iso_hub.alice.exec_run(["test", "-e", data_dir + "/jupyterhub.sqlite"]).exit_code != 0


def test_secrets_are_private_and_never_logged(iso_hub):
    data = iso_hub.workdir / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    secrets = ["jupyterhub_cookie_secret", "ssh_host_ed25519_key", "jupyterhub.sqlite", "ssh-keys.sqlite"]
    for name in secrets:
        mode = stat.S_IMODE((data / name).stat().st_mode)
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}"
    log = Path(iso_hub.log_path).read_text(errors="replace")
    cookie_secret = (data / "jupyterhub_cookie_secret").read_text().strip()
    host_key = (data / "ssh_host_ed25519_key").read_text()
    never = {"cookie secret": cookie_secret, "admin password": ADMIN_PASSWORD,
             "alice's token": iso_hub.ensure_user("alice"), "service token": iso_hub.token,
             "SSH host key": host_key.splitlines()[1]}
    for what, value in never.items():
        assert value and value not in log, f"{what} appears in the hub's log"
