"""What a workspace cannot reach, and how the hub keeps its secrets. Real hub, real containers.

(Workspaces of different users cannot reach each other: test_docker_spawner's
test_users_are_isolated_on_the_network; nor through the hub: ..._through_the_hub.)
"""

from __future__ import annotations

import base64
import socket
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from devtools.hubprocess import free_port
from mlhub.spawners.docker_objects import engine_socket_sources
from tests.support.engine_objects import can_connect as _can_connect
from tests.support.engine_objects import objects_of
from tests.support.images import STOCK_IMAGE

ADMIN_PASSWORD = "initial-Admin-pw"


@pytest.fixture(scope="module")
def iso_hub(hub_factory, docker_client):
    cleanup_port, ssh_web_port = free_port(), free_port()
    hub = hub_factory(
        env={
            "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE,
            "MLHUB_CLEANUP_PORT": str(cleanup_port),
            "MLHUB_SSH_SERVICE_PORT": str(ssh_web_port),
        }
    )
    hub.cleanup_port, hub.ssh_web_port = cleanup_port, ssh_web_port
    token = hub.ensure_user("alice")
    r = hub.spawn("alice", "", {"image": STOCK_IMAGE}, token=token)
    assert r.status_code in (201, 202), r.text
    hub.alice = docker_client.containers.get(hub.server("alice")["state"]["object_id"])
    return hub


def _openssh_lines(path: Path) -> dict[str, str]:
    """The key-specific lines of an OpenSSH private key file (its first base64 line is a header
    every unencrypted ed25519 key shares, its last may be short)."""
    return {
        f"SSH host key (file line {i})": line
        for i, line in enumerate(path.read_text().splitlines())
        if 2 <= i < 5
    }


def _env(container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def test_workspace_mounts_nothing_of_the_host(iso_hub):
    """Its only mount is its own /workspace volume: not the Docker socket, not the hub's data
    directory (where the SQLite database, cookie secret and SSH host key live)."""
    mounts = iso_hub.alice.attrs["Mounts"]
    assert [m["Type"] for m in mounts] == ["volume"] and mounts[0]["Destination"] == "/workspace", mounts
    assert not any("docker.sock" in (m.get("Source") or "") for m in mounts)
    assert iso_hub.alice.exec_run(["test", "-e", "/var/run/docker.sock"]).exit_code != 0
    assert not iso_hub.alice.attrs["HostConfig"]["Privileged"]
    assert not iso_hub.alice.attrs["HostConfig"].get("CapAdd")


def test_workspace_reaches_the_hub_api_but_not_the_services_or_the_database(iso_hub):
    api = _env(iso_hub.alice)["JUPYTERHUB_API_URL"]  # http://<host address>:<port>/hub/api
    host, port = api.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    assert _can_connect(iso_hub.alice, host, int(port)), (
        "the probe itself is broken: the hub API must be reachable"
    )
    for name, service_port in (
        ("cleanup service", iso_hub.cleanup_port),
        ("SSH keys web", iso_hub.ssh_web_port),
        ("proxy API", iso_hub.proxy_api_port),
    ):
        with socket.create_connection(("127.0.0.1", service_port), timeout=3):
            pass  # it runs (on the host's loopback) ...
        assert not _can_connect(iso_hub.alice, host, service_port), (
            f"{name} reachable from a workspace"
        )  # ... out of reach


def test_secrets_are_private_and_never_logged(iso_hub):
    data = iso_hub.workdir / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    secrets = ["jupyterhub_cookie_secret", "ssh_host_ed25519_key", "jupyterhub.sqlite", "ssh-keys.sqlite"]
    for name in secrets:
        mode = stat.S_IMODE((data / name).stat().st_mode)
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}"
    log = Path(iso_hub.log_path).read_text(errors="replace")
    cookie_secret = (data / "jupyterhub_cookie_secret").read_text().strip()
    host_key = serialization.load_ssh_private_key((data / "ssh_host_ed25519_key").read_bytes(), password=None)
    raw = host_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    never = {
        "cookie secret": cookie_secret,
        "admin password": ADMIN_PASSWORD,
        "alice's token": iso_hub.ensure_user("alice"),
        "service token": iso_hub.token,
        "SSH host key (hex)": raw.hex(),
        "SSH host key (base64)": base64.b64encode(raw).decode().rstrip("="),
        **_openssh_lines(data / "ssh_host_ed25519_key"),
    }
    for what, value in never.items():
        assert value and value not in log, f"{what} appears in the hub's log"


@pytest.mark.parametrize(
    ("volume_binds", "mounts", "host_config", "found"),
    [
        ({"/var/run/docker.sock": {"bind": "/var/run/docker.sock"}}, [], {}, ["/var/run/docker.sock"]),
        ({"/var/run/": {"bind": "/host-run"}}, [], {}, ["/var/run/"]),
        ({"/": {"bind": "/host"}}, [], {}, ["/"]),
        ({}, [{"Type": "bind", "Source": "/run/docker.sock", "Target": "/s"}], {}, ["/run/docker.sock"]),
        ({}, [], {"binds": ["/srv/x/docker.sock:/var/run/docker.sock:rw"]}, ["/srv/x/docker.sock"]),
        ({}, [], {"mounts": [{"type": "bind", "source": "/run", "target": "/r"}]}, ["/run"]),
        # harmless: named volumes, other host folders, a volume *named* like a path
        ({"mlt-x-workspace": {"bind": "/workspace"}, "/data/shared": {"bind": "/shared"}}, [], {}, []),
        ({}, [{"Type": "volume", "Source": "run", "Target": "/run"}], {"binds": ["/opt:/opt:ro"]}, []),
    ],
)
def test_engine_socket_sources(volume_binds, mounts, host_config, found):
    assert engine_socket_sources(volume_binds, mounts, host_config) == found


def test_engine_socket_under_docker_host_is_found():
    assert engine_socket_sources({"/srv/engine/api.sock": {}}, [], {}, "unix:///srv/engine/api.sock") == [
        "/srv/engine/api.sock"
    ]
    assert engine_socket_sources({"/srv/engine/api.sock": {}}, [], {}, "tcp://10.0.0.1:2376") == []


def test_a_config_that_mounts_the_docker_socket_starts_no_workspace(hub_factory, docker_client):
    """An admin's volumes entry hands workspaces the engine's socket: the spawn fails naming the
    mount and how to allow it on purpose, and nothing is left of the attempt."""
    hub = hub_factory(
        env={"MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE},
        extra_config='c.DockerSpawner.volumes = {"/var/run/docker.sock": "/var/run/docker.sock"}\n',
    )
    token = hub.ensure_user("mallory")
    message = hub.spawn_refused("mallory", token=token, status=500)
    assert "mounts the Docker engine's socket into it (/var/run/docker.sock)" in message, message[-2000:]
    assert "allow_engine_socket" in message
    assert objects_of(docker_client, hub.hub_name, "mallory") == {
        "containers": [],
        "networks": [],
        "volumes": [],
        "named": [],
    }
