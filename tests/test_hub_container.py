"""The hub as one container (`docker run ... mlhub/mlhub`) against the host's real engine."""

from __future__ import annotations

import ssl
import subprocess
import time

import docker
import pytest
import requests

from tests.support.engine_objects import can_connect as _can_connect
from tests.support.hub_container import HUB_IMAGE, HubContainer
from tests.support.web import page_xsrf


@pytest.fixture(scope="module")
def hub_image(docker_client):
    try:
        docker_client.images.get(HUB_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{HUB_IMAGE} is missing; build it with docker/build-images.sh --hub")


@pytest.fixture(scope="module")
def hub_container(docker_client, hub_image):
    hub = HubContainer(docker_client)
    yield hub
    hub.remove()


def wait_server(session: requests.Session, url: str, user: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = session.get(f"{url}/hub/api/users/{user}", timeout=30).json()
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{user}'s server not ready: {model}")


def test_container_renames_itself_and_keeps_secrets_in_data(hub_container):
    hub_container.container.reload()
    assert hub_container.container.name == hub_container.hub_name
    listing = hub_container.container.exec_run(["ls", "-l", "/data"]).output.decode()
    for name in ("jupyterhub.sqlite", "jupyterhub_cookie_secret", "initial-admin-password"):
        assert name in listing
    perms = hub_container.container.exec_run(
        ["stat", "-c", "%a", "/data/jupyterhub_cookie_secret", "/data/initial-admin-password"]
    )
    assert perms.output.decode().split() == ["600", "600"]
    assert hub_container.read("/data/initial-admin-password") not in hub_container.logs()


def test_signup_login_spawn_and_survive_a_restart(hub_container, docker_client, tmp_path):
    hub = hub_container
    admin = hub.login("admin", hub.read("/data/initial-admin-password"))
    hub.signup("alice", "Alice-pw-2026")
    _, xsrf = page_xsrf(admin, f"{hub.url}/hub/authorize")
    authorized = admin.post(
        f"{hub.url}/hub/authorize/alice", data={"_xsrf": xsrf, "authorized": "1"}, timeout=30
    )
    assert authorized.status_code == 200, authorized.text[:300]
    alice = hub.login("alice", "Alice-pw-2026")

    r = alice.post(
        f"{hub.url}/hub/api/users/alice/server", json={"cpu_limit": 0.5, "mem_limit": "512m"}, timeout=60
    )
    assert r.status_code in (201, 202), r.text
    wait_server(alice, hub.url, "alice")
    (workspace,) = docker_client.containers.list(
        filters={"label": [f"mlhub.origin={hub.hub_name}", "mlhub.user=alice"]}
    )
    assert workspace.attrs["HostConfig"]["NanoCpus"] == 500_000_000
    # the hub container joined alice's network to reach her workspace
    hub.container.reload()
    assert f"{hub.hub_name}-alice" in hub.container.attrs["NetworkSettings"]["Networks"]
    # a browser's first visit goes through the hub's OAuth, then the API answers
    assert alice.get(hub.at("/user/alice/lab"), timeout=30).status_code == 200
    assert alice.get(hub.at("/user/alice/api/status"), timeout=30).status_code == 200
    # MLHub's pages ship in the image: alice's row on the admin's Workspaces page
    page = admin.get(f"{hub.url}/hub/workspaces", timeout=30)
    assert page.status_code == 200 and 'data-owner="alice"' in page.text, page.status_code
    assert "mlhub-default-workspace" in alice.get(f"{hub.url}/hub/home", timeout=30).text

    # the SSH gateway in the hub container reaches the workspace too
    token = alice.post(f"{hub.url}/hub/api/users/alice/tokens", json={"note": "ssh test"}, timeout=30).json()[
        "token"
    ]
    key = tmp_path / "alice_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    r = requests.post(
        f"{hub.url}/services/ssh/api/keys",
        headers={"Authorization": f"token {token}"},
        json={"key": key.with_suffix(".pub").read_text()},
        timeout=30,
        verify=False,
    )
    assert r.status_code == 201, r.text

    def ssh_hostname() -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                "ssh",
                "-p",
                str(hub.ssh_port),
                "-i",
                str(key),
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "alice@127.0.0.1",
                "hostname",
            ],
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    r = ssh_hostname()
    assert r.returncode == 0, r.stderr.decode() + hub.logs()
    assert r.stdout.decode().strip() == workspace.attrs["Config"]["Hostname"]

    # from alice's workspace the hub container answers on its API port only: the cleanup and
    # SSH-keys services and the proxy's API (all running, see above) listen on its loopback
    assert _can_connect(workspace, hub.hub_name, 8081), (
        "the probe itself is broken: the hub API must be reachable"
    )
    for name, port in (("cleanup service", 8091), ("SSH keys web", 8092), ("proxy API", 8001)):
        assert _can_connect(hub.container, "127.0.0.1", port), f"{name} not running"
        assert not _can_connect(workspace, hub.hub_name, port), f"{name} reachable from a workspace"
    assert workspace.exec_run(["test", "-e", "/var/run/docker.sock"]).exit_code != 0
    assert not any("docker.sock" in (m.get("Source") or "") for m in workspace.attrs["Mounts"])

    hub.container.restart(timeout=20)
    hub.wait_up()
    workspace.reload()
    assert workspace.status == "running"
    # same host key after the restart (kept in /data): known_hosts still matches
    deadline = time.monotonic() + 30
    while (r := ssh_hostname()).returncode != 0 and time.monotonic() < deadline:
        time.sleep(1)
    assert r.returncode == 0, r.stderr
    # same session cookie: the cookie secret and DB in /data survived
    assert alice.get(hub.at("/user/alice/api/status"), timeout=30).status_code == 200
    r = alice.delete(f"{hub.url}/hub/api/users/alice/server", timeout=60)
    assert r.status_code in (202, 204)


def test_ssl_with_a_generated_certificate_and_separate_hubs(hub_container, docker_client, hub_image):
    hub = HubContainer(docker_client, env={"SSL_ENABLED": "true"}, scheme="https")
    try:
        served = ssl.get_server_certificate(("127.0.0.1", hub.port))
        stored = hub.read("/data/ssl/cert.crt")
        assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(stored)
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{hub.url}/hub/api/", timeout=10)  # self-signed: not trusted by default
        # two hubs on one engine: this one knows nothing of the first hub's users and objects
        admin = hub.login("admin", hub.read("/data/initial-admin-password"))
        users = [u["name"] for u in admin.get(f"{hub.url}/hub/api/users", timeout=30).json()]
        assert users == ["admin"]
        # a browser (Accept: text/html) goes through the hub's OAuth to the service: its page
        page = admin.get(
            f"{hub.url}/services/cleanup-service/users?dry_run=1", headers={"Accept": "text/html"}, timeout=60
        )
        assert page.status_code == 200 and "would remove" in page.text, (
            page.status_code,
            page.url,
            page.text[:500],
        )
        reply = admin.get(
            f"{hub.url}/services/cleanup-service/users?dry_run=1",
            headers={"Accept": "application/json"},
            timeout=60,
        )
        report = reply.json()
        assert report["removed"] == []
        # only this hub's own container and data volume (labelled by the test) and its claim on
        # its name (docs/decisions/ownership.md), nothing of the first hub
        assert {(k["kind"], k["name"]) for k in report["kept"]} == {
            ("container", hub.hub_name),
            ("volume", f"{hub.hub_name}-data"),
            ("volume", f"{hub.hub_name}--install"),
        }
    finally:
        hub.remove()


def test_bad_hub_name_stops_the_container_with_a_clear_message(docker_client, hub_image):
    container = docker_client.containers.run(
        HUB_IMAGE,
        environment={"HUB_NAME": "Not_A_Name", "CLEANUP_INTERVAL_SECONDS": "0"},
        volumes={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}},
        labels={"mlhub.origin": "mltbad"},
        detach=True,
    )
    try:
        assert container.wait(timeout=60)["StatusCode"] == 2
        logs = container.logs().decode()
        assert "HUB_NAME: must be 1-12 lowercase letters" in logs
        assert "CLEANUP_INTERVAL_SECONDS: must be a whole number of seconds > 0, or -1" in logs
    finally:
        container.remove(force=True, v=True)


def test_proxy_as_its_own_process(docker_client, hub_image):
    """START_CHP=true: the proxy runs beside the hub (ML Hub's split roles), same result."""
    hub = HubContainer(docker_client, env={"START_CHP": "true"})
    try:
        processes = hub.container.exec_run(
            ["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]
        ).output.decode()
        assert "configurable-http-proxy" in processes and "jupyterhub" in processes
        admin = hub.login("admin", hub.read("/data/initial-admin-password"))
        assert admin.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == "admin"
    finally:
        hub.remove()
