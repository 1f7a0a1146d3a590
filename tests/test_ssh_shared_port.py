"""SSH on the hub's one port, and through the hub's HTTPS as a WebSocket tunnel.

A real hub with SSL (the certificate MLHub generates), real workspace containers, the real
OpenSSH client (ssh, scp, sftp, -L) and the real ``mlhub-ssh-tunnel`` client as ProxyCommand.
"""

from __future__ import annotations

import hashlib
import html
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import requests
from requests.adapters import HTTPAdapter

from devtools.hubprocess import free_port, new_hub_name, remove_test_objects
from devtools.openssh import SSH_OPTS, keygen
from mlhub.hub.container import ensure_certificate
from tests.support.images import WORKSPACE_IMAGE
from tests.support.web import login, new_session

ADMIN_PASSWORD = "mux-Admin-pw-1"
RATE_LIMIT = 3

pytestmark = pytest.mark.timeout(600)


class FromAddress(HTTPAdapter):
    """Connect from a given loopback address: a client of its own, as the hub sees it."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Env:
    def __init__(self, hub, tmp: Path, cert: str):
        self.hub = hub
        self.tmp = tmp
        self.cert = cert
        self.port = str(hub.port)
        # `mlhub-ssh-tunnel`: the console script pip installed next to this Python (the set-up's
        # `pip install -e .`), trusting the hub's self-signed certificate
        installed = Path(sys.executable).with_name("mlhub-ssh-tunnel")
        assert installed.is_file(), (
            f"{installed} is missing: pip install the project (it declares the script)"
        )
        self.bin = tmp / "bin"
        self.bin.mkdir()
        shim = self.bin / "mlhub-ssh-tunnel"
        shim.write_text(f'#!/bin/sh\nexec {installed} --ca-cert {cert} "$@"\n')
        shim.chmod(0o755)
        self.tunnel_url = f"{hub.url}/services/ssh/tunnel"

    def client_env(self, token: str | None) -> dict[str, str]:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        env.pop("MLHUB_API_TOKEN", None)
        env.pop("JUPYTERHUB_API_TOKEN", None)
        if token is not None:
            env["MLHUB_API_TOKEN"] = token
        return env

    def via(self, how: str) -> list[str]:
        """ssh options to reach the gateway: on the hub's HTTPS port, or through the tunnel."""
        if how == "port":
            return ["-o", f"Port={self.port}"]
        return ["-o", f"ProxyCommand=mlhub-ssh-tunnel {self.tunnel_url}"]

    def host(self, how: str) -> str:
        return "127.0.0.1" if how == "port" else "mlhub-tunnel"

    def run(self, args: list[str], token: str | None, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("timeout", 120)
        kwargs.setdefault("capture_output", True)
        if "input" not in kwargs:
            kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(args, env=self.client_env(token), **kwargs)

    def ssh(self, how: str, login: str, key: Path, command: str, token: str | None = None, **kw):
        args = ["ssh", *SSH_OPTS, "-i", str(key), *self.via(how), f"{login}@{self.host(how)}", command]
        return self.run(args, token, **kw)


@pytest.fixture(scope="module")
def env(hub_factory, docker_client, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sshport")
    cert, key = ensure_certificate(tmp, "localhost")
    hub = hub_factory(
        env={
            "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MLHUB_WORKSPACE_IMAGE": WORKSPACE_IMAGE,
            "MLHUB_MAX_CPU_LIMIT": "1",
            "SSL_ENABLED": "true",
            "MLHUB_SSL_CERT": cert,
            "MLHUB_SSL_KEY": key,
            "MLHUB_PROXY_INTERNAL_PORT": str(free_port()),
            "MLHUB_LOGIN_RATE_LIMIT": str(RATE_LIMIT),
        }
    )
    e = Env(hub, tmp, cert)
    e.tokens = {name: hub.ensure_user(name) for name in ("alice", "bob")}
    e.keys = {name: keygen(tmp / f"{name}_key") for name in ("alice", "bob")}
    for name in ("alice", "bob"):
        r = requests.post(
            f"{hub.url}/services/ssh/api/keys",
            headers={"Authorization": f"token {e.tokens[name]}"},
            json={"key": e.keys[name].with_suffix(".pub").read_text()},
            timeout=30,
            verify=False,
        )
        assert r.status_code == 201, r.text
    r = hub.spawn("alice", "ws", {"image": WORKSPACE_IMAGE}, token=e.tokens["alice"])
    assert r.status_code in (201, 202), r.text
    e.hostname = docker_client.containers.get(hub.server("alice", "ws")["state"]["object_id"]).attrs[
        "Config"
    ]["Hostname"]
    return e


# --- one port: the first bytes decide ------------------------------------------------------


def test_https_and_ssh_answer_on_the_same_port(env):
    page = requests.get(f"{env.hub.url}/hub/login", timeout=30, verify=env.cert)
    assert page.status_code == 200 and 'name="password"' in page.text
    r = env.ssh("port", "alice,ws", env.keys["alice"], "hostname")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == env.hostname
    assert "SSH connection from 127.0.0.1" in env.hub.log_tail(400)
    # the hub's own SSH dialog (home, Workspaces) gives the shared port
    home = login(env.hub.url, "admin", ADMIN_PASSWORD, verify=False).get(
        f"{env.hub.url}/hub/home", timeout=30
    )
    assert f"var port = {env.port};" in home.text


def test_a_client_that_waits_for_the_server_banner_gets_the_gateway(env):
    with socket.create_connection(("127.0.0.1", env.hub.port), timeout=60) as sock:
        assert sock.recv(8) == b"SSH-2.0-"  # after the mux's peek timeout, unprompted


@pytest.mark.parametrize("how", ["port", "tunnel"])
def test_scp_sftp_and_local_forwarding(env, how, tmp_path):
    token = env.tokens["alice"] if how == "tunnel" else None
    key = env.keys["alice"]
    data = os.urandom(3 * 1024 * 1024)
    src = tmp_path / "three.bin"
    src.write_bytes(data)
    scp = ["scp", *SSH_OPTS, "-i", str(key), *env.via(how)]
    r = env.run([*scp, str(src), f"alice,ws@{env.host(how)}:three-{how}.bin"], token)
    assert r.returncode == 0, r.stderr
    back = tmp_path / "back.bin"
    r = env.run([*scp, f"alice,ws@{env.host(how)}:three-{how}.bin", str(back)], token)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(data).digest()

    sftp = ["sftp", *SSH_OPTS, "-i", str(key), *env.via(how), "-b", "-", f"alice,ws@{env.host(how)}"]
    r = env.run(sftp, token, input=f"mkdir sftp-{how}\ncd sftp-{how}\npwd\nls /workspace\n".encode())
    assert r.returncode == 0, r.stderr
    assert f"sftp-{how}".encode() in r.stdout and f"three-{how}.bin".encode() in r.stdout

    remote_port = 8710 if how == "port" else 8711
    r = env.ssh(
        how,
        "alice,ws",
        key,
        f"cd /tmp && (python3 -m http.server {remote_port} --bind 127.0.0.1 >/dev/null 2>&1 &) && sleep 1",
        token,
    )
    assert r.returncode == 0, r.stderr
    local = free_port()
    tunnel = subprocess.Popen(
        [
            "ssh",
            *SSH_OPTS,
            "-i",
            str(key),
            *env.via(how),
            "-N",
            "-L",
            f"{local}:localhost:{remote_port}",
            f"alice,ws@{env.host(how)}",
        ],
        env=env.client_env(token),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = requests.get(f"http://127.0.0.1:{local}/", timeout=10)
                break
            except requests.ConnectionError:
                assert tunnel.poll() is None, tunnel.stderr.read() if tunnel.stderr else ""
                assert time.monotonic() < deadline, "the -L tunnel never answered"
                time.sleep(0.3)
        assert reply.status_code == 200 and "Directory listing" in reply.text
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)


def test_the_hubs_login_limit_still_counts_each_client_apart(env):
    """The attack: every client reaches the proxy through the mux; if the hub saw them all as
    the mux's address, one client's failed logins would lock out everyone's."""

    def post_login(address: str) -> int:
        session = new_session(verify=False)
        session.mount("https://", FromAddress(address))
        page = session.get(f"{env.hub.url}/hub/login", timeout=30)
        xsrf = page.text.split('name="_xsrf" value="', 1)[1].split('"', 1)[0]
        reply = session.post(
            f"{env.hub.url}/hub/login",
            data={"_xsrf": xsrf, "username": "nobody", "password": "wrong-password"},
            allow_redirects=False,
            timeout=30,
        )
        return reply.status_code

    statuses = [post_login("127.0.0.2") for _ in range(RATE_LIMIT + 1)]
    assert statuses[:RATE_LIMIT] == [200] * RATE_LIMIT and statuses[-1] == 429, statuses
    assert post_login("127.0.0.3") == 200  # another client is not limited by the first
    assert "Client 127.0.0.2 is seen by the proxy, the hub and the gateway as 127." in env.hub.log_tail(800)


# --- the WebSocket tunnel: who may open one -------------------------------------------------


def tunnel_client(env, token: str | None, *extra: str) -> subprocess.CompletedProcess:
    """The real client with nothing to send: what the hub answers to its upgrade request."""
    return env.run(["mlhub-ssh-tunnel", *extra, env.tunnel_url], token, input=b"", timeout=60)


def test_a_tunnel_needs_a_valid_user_token(env):
    r = tunnel_client(env, None)
    assert r.returncode == 1 and b"no hub API token" in r.stderr
    r = tunnel_client(env, "not-a-token")
    assert r.returncode == 1 and b"(401)" in r.stderr and b"not a valid hub API token" in r.stderr, r.stderr
    r = tunnel_client(env, env.hub.token)  # a service's token, not a user's
    assert r.returncode == 1 and b"(403)" in r.stderr, r.stderr
    # without the header, a plain upgrade request (what a web page could send) is refused too
    reply = requests.get(
        env.tunnel_url,
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
        params={"token": env.tokens["alice"]},  # a token in the URL does not count
        timeout=30,
        verify=env.cert,
    )
    assert reply.status_code == 401, reply.text
    # an unverified certificate is refused by the client unless told otherwise
    r = env.run(
        [sys.executable, "-m", "mlhub.services.ssh.tunnel_client", env.tunnel_url],
        env.tokens["alice"],
        input=b"",
        timeout=60,
    )
    assert r.returncode == 1 and b"CERTIFICATE_VERIFY_FAILED" in r.stderr, r.stderr


def test_bobs_tunnel_and_key_do_not_open_alices_workspace(env):
    # the tunnel only carries bytes: the gateway's login still decides, with bob's key refused
    r = env.ssh("tunnel", "alice,ws", env.keys["bob"], "hostname", env.tokens["bob"])
    assert r.returncode == 255 and b"Permission denied" in r.stderr, r.stderr
    assert b"is not registered for hub user 'alice'" in r.stderr
    assert r.stdout == b""
    # bob's own login through his tunnel works (his server is simply not running)
    r = env.ssh("tunnel", "bob", env.keys["bob"], "hostname", env.tokens["bob"])
    assert r.returncode == 1 and b"bob's default server is not running" in r.stderr, r.stderr
    assert "SSH tunnel for bob from" in env.hub.log_tail(400)


def test_ssh_through_the_tunnel_runs_in_the_workspace(env):
    r = env.ssh("tunnel", "alice,ws", env.keys["alice"], "hostname; exit 3", env.tokens["alice"])
    assert r.returncode == 3, r.stderr
    assert r.stdout.decode().strip() == env.hostname


# --- what the SSH page and its setup script offer ------------------------------------------


def test_page_and_setup_script_offer_both_ways(env, tmp_path):
    page = requests.get(
        f"{env.hub.url}/services/ssh/",
        headers={"Accept": "text/html", "Authorization": f"token {env.tokens['alice']}"},
        timeout=30,
        verify=env.cert,
    )
    assert page.status_code == 200, page.text[:300]
    text = html.unescape(page.text)
    assert f"ssh -p {env.port} alice,ws@localhost" in text  # the hub's own port
    assert f"ssh -o ProxyCommand='mlhub-ssh-tunnel {env.tunnel_url}' alice,ws@mlhub-alice-ws-tunnel" in text
    assert "setup.sh?login=alice%2Cws&via=tunnel" in text
    script = requests.get(
        f"{env.hub.url}/services/ssh/setup.sh",
        params={"login": "alice,ws", "via": "tunnel"},
        timeout=30,
        verify=env.cert,
    )
    assert script.status_code == 200
    bad = requests.get(
        f"{env.hub.url}/services/ssh/setup.sh",
        params={"login": "alice", "via": "x"},
        timeout=30,
        verify=env.cert,
    )
    assert bad.status_code == 400 and "via" in bad.text
    home = tmp_path / "home"
    home.mkdir()
    run = subprocess.run(
        ["sh", "-c", script.text],
        env={**env.client_env(None), "HOME": str(home)},
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    public = (home / ".ssh" / "mlhub_ed25519.pub").read_text()
    r = requests.post(
        f"{env.hub.url}/services/ssh/api/keys",
        headers={"Authorization": f"token {env.tokens['alice']}"},
        json={"key": public},
        timeout=30,
        verify=env.cert,
    )
    assert r.status_code == 201, r.text
    r = subprocess.run(
        [
            "ssh",
            "-F",
            str(home / ".ssh" / "config"),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "mlhub-alice-ws-tunnel",
            "hostname",
        ],
        env={**env.client_env(env.tokens["alice"]), "HOME": str(home)},
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == env.hostname


# --- the one-container install: only the HTTPS port published ------------------------------

HUB_IMAGE = "mlhub/mlhub:latest"
REPO = Path(__file__).resolve().parent.parent
#: where the image installs the mlhub package and its config
IMAGE_PACKAGE = "/opt/mlhub/lib/python3.11/site-packages/mlhub"
IMAGE_CONFIG = "/resources/jupyterhub_config.py"


def test_one_container_with_ssl_serves_ssh_on_its_https_port(docker_client, tmp_path):
    """`docker run -p PORT:8080 -e SSL_ENABLED=true mlhub/mlhub` with this checkout's code
    mounted over the image's (no image rebuild): ssh, scp and the login page on PORT alone."""
    try:
        docker_client.images.get(HUB_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{HUB_IMAGE} is missing; build it with docker/build-images.sh --hub")
    name = new_hub_name()
    port = free_port()
    url = f"https://localhost:{port}"
    data = docker_client.volumes.create(f"{name}-data", labels={"mlhub.origin": name})
    container = docker_client.containers.run(
        HUB_IMAGE,
        name=f"{name}-starting",
        environment={
            "HUB_NAME": name,
            "MLHUB_PUBLIC_URL": url,
            "SSL_ENABLED": "true",
            "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MLHUB_WORKSPACE_IMAGE": WORKSPACE_IMAGE,
        },
        ports={"8080/tcp": ("127.0.0.1", port)},  # no 2222
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            data.name: {"bind": "/data", "mode": "rw"},
            str(REPO / "mlhub"): {"bind": IMAGE_PACKAGE, "mode": "ro"},
            str(REPO / "jupyterhub_config.py"): {"bind": IMAGE_CONFIG, "mode": "ro"},
        },
        labels={"mlhub.origin": name},
        detach=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            container.reload()
            assert container.status != "exited", container.logs().decode(errors="replace")[-3000:]
            try:
                if requests.get(f"{url}/hub/api/", timeout=2, verify=False).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, container.logs().decode(errors="replace")[-3000:]
            time.sleep(0.5)
        page = requests.get(f"{url}/hub/login", timeout=30, verify=False)
        assert page.status_code == 200 and 'name="password"' in page.text
        admin_token = _admin_token(url)
        admin = {"Authorization": f"token {admin_token}"}
        assert (
            requests.post(f"{url}/hub/api/users/alice", headers=admin, timeout=30, verify=False).status_code
            == 201
        )
        token = requests.post(
            f"{url}/hub/api/users/alice/tokens", headers=admin, json={}, timeout=30, verify=False
        ).json()["token"]
        key = keygen(tmp_path / "alice_key")
        r = requests.post(
            f"{url}/services/ssh/api/keys",
            headers={"Authorization": f"token {token}"},
            json={"key": key.with_suffix(".pub").read_text()},
            timeout=30,
            verify=False,
        )
        assert r.status_code == 201, r.text
        r = requests.post(
            f"{url}/hub/api/users/alice/server",
            headers={"Authorization": f"token {token}"},
            json={},
            timeout=60,
            verify=False,
        )
        assert r.status_code in (201, 202), r.text
        deadline = time.monotonic() + 120
        while not (server := _server(url, admin_token)).get("ready"):
            assert server.get("pending") and time.monotonic() < deadline, server
            time.sleep(0.5)
        hostname = docker_client.containers.get(server["state"]["object_id"]).attrs["Config"]["Hostname"]
        r = subprocess.run(
            ["ssh", "-p", str(port), *SSH_OPTS, "-i", str(key), "alice@127.0.0.1", "hostname"],
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 0, r.stderr.decode() + container.logs().decode(errors="replace")[-3000:]
        assert r.stdout.decode().strip() == hostname
        src = tmp_path / "f.txt"
        src.write_text("through 8080\n")
        r = subprocess.run(
            ["scp", "-P", str(port), *SSH_OPTS, "-i", str(key), str(src), "alice@127.0.0.1:f.txt"],
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 0, r.stderr
    finally:
        container.remove(force=True)
        remove_test_objects(docker_client, name)


def _admin_token(url: str) -> str:
    admin = login(url, "admin", ADMIN_PASSWORD, verify=False)
    r = admin.post(f"{url}/hub/api/users/admin/tokens", json={"note": "test"}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _server(url: str, token: str) -> dict:
    r = requests.get(
        f"{url}/hub/api/users/alice", headers={"Authorization": f"token {token}"}, timeout=30, verify=False
    )
    return r.json().get("servers", {}).get("") or {}
