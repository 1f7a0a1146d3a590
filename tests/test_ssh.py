"""The SSH gateway with the real OpenSSH client (ssh, scp, sftp) against real workspace containers."""

from __future__ import annotations

import hashlib
import html
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from devtools.hubprocess import free_port
from devtools.openssh import SSH_OPTS, keygen
from tests.support.images import STOCK_IMAGE, WORKSPACE_IMAGE
from tests.support.web import login as browser_login

ADMIN_PASSWORD = "ssh-Admin-pw-1"


class SSH:
    def __init__(self, hub, tmp: Path):
        self.hub = hub
        self.port = str(hub.ssh_port)
        self.tmp = tmp

    def ssh(
        self,
        login: str,
        command: str | None,
        key: Path,
        *extra: str,
        input: bytes | None = None,
        timeout: float = 60,
        env: dict | None = None,
    ) -> subprocess.CompletedProcess:
        args = ["ssh", "-p", self.port, *SSH_OPTS, "-i", str(key), *extra, f"{login}@127.0.0.1"]
        if command is not None:
            args.append(command)
        return subprocess.run(
            args,
            input=input,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def scp(self, key: Path, *paths: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["scp", "-P", self.port, *SSH_OPTS, "-i", str(key), *paths],
            capture_output=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def add_key(self, user: str, key: Path, token: str) -> requests.Response:
        return requests.post(
            f"{self.hub.url}/services/ssh/api/keys",
            headers={"Authorization": f"token {token}"},
            json={"key": key.with_suffix(".pub").read_text()},
            timeout=30,
        )


@pytest.fixture(scope="module")
def env(hub_factory, docker_client, tmp_path_factory):
    hub = hub_factory(
        env={
            "MLHUB_ALLOWED_IMAGES": f"{WORKSPACE_IMAGE},{STOCK_IMAGE}",
            "MLHUB_MAX_CPU_LIMIT": "1",
            "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
    )
    tmp = tmp_path_factory.mktemp("ssh")
    s = SSH(hub, tmp)
    s.tokens = {name: hub.ensure_user(name) for name in ("alice", "bob")}
    s.keys = {name: keygen(tmp / f"{name}_key") for name in ("alice", "bob", "stranger")}
    for name in ("alice", "bob"):
        r = s.add_key(name, s.keys[name], s.tokens[name])
        assert r.status_code == 201, r.text
    # alice: default server on the plain test image (no sftp-server, no bash), named one on ours
    assert hub.spawn("alice", "", {"image": STOCK_IMAGE}, token=s.tokens["alice"]).status_code in (201, 202)
    assert hub.spawn("alice", "ws", {"image": WORKSPACE_IMAGE}, token=s.tokens["alice"]).status_code in (
        201,
        202,
    )
    s.containers = {
        server: docker_client.containers.get(hub.server("alice", server)["state"]["object_id"])
        for server in ("", "ws")
    }
    return s


def test_ssh_runs_commands_in_the_users_workspace(env):
    for server, login in (("", "alice"), ("ws", "alice,ws")):
        r = env.ssh(login, "hostname", env.keys["alice"])
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().strip() == env.containers[server].attrs["Config"]["Hostname"]


def test_exit_code_and_stderr_come_back(env):
    r = env.ssh("alice", "echo out; echo err >&2; exit 7", env.keys["alice"])
    assert r.returncode == 7
    assert r.stdout == b"out\n"
    assert b"err\n" in r.stderr


def test_pty_session_and_stdin(env):
    r = env.ssh("alice,ws", "tty; echo TERM=$TERM; exit 4", env.keys["alice"], "-tt")
    assert r.returncode == 4, r.stderr
    out = r.stdout.decode()
    assert "/dev/pts/" in out and "TERM=" in out
    r = env.ssh("alice", "wc -c", env.keys["alice"], input=b"x" * 100000)
    assert r.stdout.decode().strip() == "100000"


def test_scp_in_and_out_keeps_the_bytes(env, tmp_path):
    data = os.urandom(10 * 1024 * 1024)
    src = tmp_path / "ten.bin"
    src.write_bytes(data)
    for login in ("alice", "alice,ws"):  # the stock image gets the gateway's sftp-server
        r = env.scp(env.keys["alice"], str(src), f"{login}@127.0.0.1:ten.bin")
        assert r.returncode == 0, r.stderr
        remote = env.ssh(login, "sha256sum ten.bin", env.keys["alice"]).stdout.decode().split()[0]
        assert remote == hashlib.sha256(data).hexdigest()
        back = tmp_path / f"back-{login.replace(',', '-')}.bin"
        r = env.scp(env.keys["alice"], f"{login}@127.0.0.1:ten.bin", str(back))
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_rsync_and_legacy_scp_with_the_workspace_image(env, tmp_path):
    tree = tmp_path / "project"
    (tree / "src").mkdir(parents=True)
    for i in range(20):
        (tree / "src" / f"f{i}.txt").write_text(f"file {i}\n" * 100)
    ssh_cmd = " ".join(["ssh", "-p", env.port, *SSH_OPTS, "-i", str(env.keys["alice"])])
    r = subprocess.run(
        ["rsync", "-a", "-e", ssh_cmd, f"{tree}/", "alice,ws@127.0.0.1:project/"],
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    listing = env.ssh(
        "alice,ws", "cd project && find . -type f | sort | xargs cat | sha256sum", env.keys["alice"]
    )
    local = subprocess.run(
        "find . -type f | sort | xargs cat | sha256sum", shell=True, cwd=tree, capture_output=True
    )
    assert listing.stdout.split()[0] == local.stdout.split()[0]
    r = env.scp(env.keys["alice"], "-O", str(tree / "src" / "f1.txt"), "alice,ws@127.0.0.1:legacy.txt")
    assert r.returncode == 0, r.stderr
    assert (
        env.ssh("alice,ws", "cat legacy.txt", env.keys["alice"]).stdout
        == (tree / "src" / "f1.txt").read_bytes()
    )


def test_sftp_batch(env, tmp_path):
    r = subprocess.run(
        ["sftp", "-P", env.port, *SSH_OPTS, "-i", str(env.keys["alice"]), "-b", "-", "alice,ws@127.0.0.1"],
        input=b"mkdir sftp-dir\ncd sftp-dir\npwd\n",
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert b"sftp-dir" in r.stdout


def stop(proc: subprocess.Popen) -> bytes:
    """End an ssh client; its stderr."""
    proc.terminate()
    try:
        return proc.communicate(timeout=5)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]


def test_local_port_forwarding_reaches_servers_inside(env):
    # one server on all interfaces, one on 127.0.0.1 only (reached through a relay inside)
    r = env.ssh(
        "alice,ws",
        "cd /tmp && (python3 -m http.server 8700 >/dev/null 2>&1 &) && "
        "(python3 -m http.server 8701 --bind 127.0.0.1 >/dev/null 2>&1 &) && sleep 1",
        env.keys["alice"],
    )
    assert r.returncode == 0, r.stderr
    ports = {8700: free_port(), 8701: free_port(), 8799: free_port()}
    forwards = [arg for remote, local in ports.items() for arg in ("-L", f"{local}:localhost:{remote}")]
    tunnel = subprocess.Popen(
        [
            "ssh",
            "-p",
            env.port,
            *SSH_OPTS,
            "-i",
            str(env.keys["alice"]),
            "-N",
            *forwards,
            "alice,ws@127.0.0.1",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        for remote in (8700, 8701):
            deadline = time.monotonic() + 20
            while True:
                try:
                    reply = requests.get(f"http://127.0.0.1:{ports[remote]}/", timeout=10)
                    break
                except requests.ConnectionError:
                    assert time.monotonic() < deadline, f"tunnel to {remote} never answered"
                    time.sleep(0.3)
            assert reply.status_code == 200 and "Directory listing" in reply.text
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{ports[8799]}/", timeout=10)  # nothing listens there
    finally:
        err = stop(tunnel)
    assert b"nothing answers on port 8799" in err


def test_tunnels_only_to_the_workspace_itself(env):
    port = free_port()
    tunnel = subprocess.Popen(
        [
            "ssh",
            "-p",
            env.port,
            *SSH_OPTS,
            "-i",
            str(env.keys["alice"]),
            "-N",
            "-L",
            f"{port}:example.org:80",
            "alice,ws@127.0.0.1",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.5)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=10)
    finally:
        err = stop(tunnel)
    assert b"tunnels go to ports inside your workspace only" in err


def test_refusals_say_why(env):
    cases = [
        ("alice", env.keys["stranger"], b"is not registered for hub user 'alice'"),  # unknown key
        ("alice", env.keys["bob"], b"is not registered for hub user 'alice'"),  # another user's target
        ("bob", env.keys["alice"], b"is not registered for hub user 'bob'"),
        ("alice,Ws", env.keys["alice"], b"'Ws' is not a server name"),  # garbage logins
        ("alice,", env.keys["alice"], b"server name after 'alice,' is missing"),
        (",ws", env.keys["alice"], b"hub user name before ',' is missing"),
        ("al ice", env.keys["alice"], b"is not a workspace login"),
        ("alice/ws", env.keys["alice"], b"is not a workspace login"),
    ]
    for login, key, message in cases:
        r = env.ssh(login, "hostname", key)
        assert r.returncode == 255, (login, r.stdout)
        assert b"Permission denied" in r.stderr and message in r.stderr, (login, r.stderr)
        assert r.stdout == b""


def test_servers_that_are_not_there_or_not_running(env):
    r = env.ssh("alice,nope", "hostname", env.keys["alice"])
    assert r.returncode == 1 and b"alice's server 'nope' does not exist" in r.stderr
    r = env.ssh("bob", "hostname", env.keys["bob"])  # bob never started his
    assert r.returncode == 1 and b"bob's default server is not running; start it" in r.stderr


def test_revoked_key_is_refused(env, tmp_path):
    key = keygen(tmp_path / "laptop")
    r = env.add_key("alice", key, env.tokens["alice"])
    assert r.status_code == 201
    assert env.ssh("alice", "true", key).returncode == 0
    gone = requests.delete(
        f"{env.hub.url}/services/ssh/api/keys/{r.json()['id']}",
        headers={"Authorization": f"token {env.tokens['alice']}"},
        timeout=30,
    )
    assert gone.status_code == 204
    r = env.ssh("alice", "true", key)
    assert r.returncode == 255 and b"is not registered" in r.stderr


def test_hub_token_as_password(env, tmp_path):
    askpass = tmp_path / "askpass.sh"
    askpass.write_text('#!/bin/sh\nprintf "%s\\n" "$MLHUB_TEST_PASSWORD"\n')
    askpass.chmod(0o700)

    def with_password(login: str, password: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                "ssh",
                "-p",
                env.port,
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "NumberOfPasswordPrompts=1",
                f"{login}@127.0.0.1",
                "hostname",
            ],
            env={
                **os.environ,
                "SSH_ASKPASS": str(askpass),
                "SSH_ASKPASS_REQUIRE": "force",
                "MLHUB_TEST_PASSWORD": password,
                "DISPLAY": ":0",
            },
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )

    r = with_password("alice", env.tokens["alice"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == env.containers[""].attrs["Config"]["Hostname"]
    r = with_password("alice", env.tokens["bob"])
    assert r.returncode == 255 and b"not a hub API token of 'alice'" in r.stderr
    assert with_password("alice", "not-a-token").returncode == 255


def test_twenty_sessions_at_once(env):
    def one(i: int) -> tuple[int, str]:
        r = env.ssh("alice,ws", f"echo session-{i}", env.keys["alice"])
        return r.returncode, r.stdout.decode().strip()

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert results == [(0, f"session-{i}") for i in range(20)]


def test_disconnect_hangs_up_the_remote_processes(env):
    container = env.containers["ws"]
    client = subprocess.Popen(
        ["ssh", "-p", env.port, *SSH_OPTS, "-i", str(env.keys["alice"]), "alice,ws@127.0.0.1", "sleep 4242"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def sleeping() -> bool:
        return b"sleep 4242" in container.exec_run(["ps", "ax", "-o", "args"]).output

    deadline = time.monotonic() + 20
    while not sleeping():
        assert time.monotonic() < deadline, "the remote command never started"
        time.sleep(0.2)
    client.kill()
    client.wait()
    deadline = time.monotonic() + 20
    while sleeping():
        assert time.monotonic() < deadline, "the remote command outlived its SSH session"
        time.sleep(0.2)


# --- keys API, SSH page, setup script -----------------------------------------------------


def keys_api(env, method: str, token: str, path: str = "", **kwargs) -> requests.Response:
    return requests.request(
        method,
        f"{env.hub.url}/services/ssh/api/keys{path}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        **kwargs,
    )


def test_keys_api_refuses_bad_input_and_changes_nothing(env, tmp_path):
    token = env.tokens["bob"]
    before = keys_api(env, "GET", token).json()["keys"]
    private = keygen(tmp_path / "private").read_text()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", str(tmp_path / "weak")], check=True
    )
    cases = [
        ({"data": "not json"}, 400, "body: must be JSON"),
        ({"json": {"key": "ssh-ed25519 AAAA"}}, 400, "key: not an OpenSSH public key"),
        ({"json": {"key": ""}}, 400, "key: paste one public key"),
        ({"json": {"key": private}}, 400, "PRIVATE key"),
        (
            {"json": {"key": (tmp_path / "weak.pub").read_text()}},
            400,
            "key: RSA keys need at least 2048 bits",
        ),
        (
            {"json": {"key": env.keys["bob"].with_suffix(".pub").read_text()}},
            409,
            "already registered for bob",
        ),
        (
            {"json": {"key": env.keys["stranger"].with_suffix(".pub").read_text(), "title": "x" * 101}},
            400,
            "title: at most 100",
        ),
        ({"json": {"key": 5}}, 400, "key and title: must be strings"),
        ({"json": {"key": "x", "owner": "me"}}, 400, "allowed fields are key, title"),
        (
            {"json": {"key": env.keys["stranger"].with_suffix(".pub").read_text(), "user": "alice"}},
            403,
            "only admins",
        ),
    ]
    for kwargs, status, message in cases:
        r = keys_api(env, "POST", token, **kwargs)
        assert r.status_code == status, (kwargs, r.text)
        assert message in r.json()["message"], r.text
    assert keys_api(env, "GET", token).json()["keys"] == before
    # another user's keys: neither listed nor removable
    assert keys_api(env, "GET", token, params={"user": "alice"}).status_code == 403
    alice_key = keys_api(env, "GET", env.tokens["alice"]).json()["keys"][0]
    assert keys_api(env, "DELETE", token, f"/{alice_key['id']}").status_code == 404
    assert env.ssh("alice", "true", env.keys["alice"]).returncode == 0


def test_admin_sees_adds_and_revokes_keys(env, tmp_path):
    admin = env.hub.ensure_user("admin", admin=True)
    everything = keys_api(env, "GET", admin, params={"all": "1"}).json()["keys"]
    assert {"alice", "bob"} <= {key["user"] for key in everything}
    handed = keygen(tmp_path / "handed")
    r = keys_api(
        env,
        "POST",
        admin,
        json={"key": handed.with_suffix(".pub").read_text(), "user": "bob", "title": "from admin"},
    )
    assert r.status_code == 201 and r.json()["added_by"] == "admin" and r.json()["user"] == "bob"
    assert (
        keys_api(
            env, "POST", admin, json={"key": handed.with_suffix(".pub").read_text(), "user": "nobody"}
        ).status_code
        == 400
    )
    listed = keys_api(env, "GET", admin, params={"user": "bob"}).json()["keys"]
    assert r.json()["id"] in [key["id"] for key in listed]
    assert keys_api(env, "DELETE", admin, f"/{r.json()['id']}").status_code == 204
    assert r.json()["id"] not in [key["id"] for key in keys_api(env, "GET", env.tokens["bob"]).json()["keys"]]


def test_ssh_page_shows_commands_and_keys(env):
    admin = browser_login(env.hub.url, "admin", ADMIN_PASSWORD)
    page = admin.get(f"{env.hub.url}/services/ssh/?user=alice", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200, page.text[:300]
    # the host the page was opened by (the hub's public host)
    assert f"ssh -p {env.port} alice,ws@localhost" in page.text
    assert f"ssh -p {env.port} alice@localhost" in page.text
    # the setup line follows the hub's public URL
    assert f"curl -fsSL '{env.hub.url}/services/ssh/setup.sh?login=alice%2Cws' | sh" in html.unescape(
        page.text
    )
    assert "Host mlhub-alice-ws" in page.text and "User alice,ws" in page.text
    assert "setup.sh?login=alice%2Cws" in page.text
    assert "alice_key" in page.text  # the key's title (its comment)
    assert 'id="all-key-table"' in page.text  # the admin's revocation table
    # the page is not for anonymous visitors
    anonymous = requests.get(
        f"{env.hub.url}/services/ssh/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=30
    )
    assert anonymous.status_code == 302 and "/hub/api/oauth2/authorize" in anonymous.headers["Location"]


def test_setup_script_configures_a_working_ssh_alias(env, tmp_path):
    assert requests.get(f"{env.hub.url}/services/ssh/setup.sh?login=alice,WS", timeout=30).status_code == 400
    script = requests.get(f"{env.hub.url}/services/ssh/setup.sh", params={"login": "alice,ws"}, timeout=30)
    assert script.status_code == 200
    home = tmp_path / "home"
    home.mkdir()
    run = subprocess.run(
        ["sh", "-c", script.text], env={**os.environ, "HOME": str(home)}, capture_output=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    public = (home / ".ssh" / "mlhub_ed25519.pub").read_text()
    assert public.strip() in run.stdout.decode()
    r = requests.post(
        f"{env.hub.url}/services/ssh/api/keys",
        headers={"Authorization": f"token {env.tokens['alice']}"},
        json={"key": public},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    again = subprocess.run(
        ["sh", "-c", script.text], env={**os.environ, "HOME": str(home)}, capture_output=True, timeout=60
    )
    assert b"already has Host mlhub-alice-ws" in again.stdout
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
            "mlhub-alice-ws",
            "hostname",
        ],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == env.containers["ws"].attrs["Config"]["Hostname"]
