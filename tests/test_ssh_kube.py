"""The SSH gateway's Kubernetes engine: the real OpenSSH client -> the gateway -> the Kubernetes
exec WebSocket protocol -> a LOCAL FAKE Kubernetes API server.

No cluster can run on these machines. The fake API below answers pod reads and serves the
``pods/<name>/exec`` WebSocket (``v5.channel.k8s.io``, or ``v4`` when a test asks), running the
command as a local process in a scratch directory, as a kubelet runs it in the container. The
hub is faked too (a fixed answer for "which pod is alice's server"); everything between the
ssh client and the process is the production code.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import asyncssh
import pytest
import requests
from kubernetes_asyncio.config import kube_config
from tornado import web, websocket
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from devtools.hubprocess import free_port
from mlhub.engines.kube import KubeEngine, exit_status
from mlhub.services.ssh.hub import GatewayHub, Workspace
from mlhub.services.ssh.keystore import KeyStore
from mlhub.services.ssh.server import Gateway
from mlhub.services.ssh.targets import Target

NS = "mlhub-test"
HUB = "kubehub"
PODS = {
    "kubehub-alice": {"mlhub.origin": HUB, "mlhub.user": "alice"},
    "kubehub-bob": {"mlhub.origin": HUB, "mlhub.user": "bob"},
}


class FakeKubeAPI:
    """Pods that exist, and an exec endpoint that runs commands as local processes."""

    def __init__(self, root: Path, protocols: tuple[str, ...] = ("v5.channel.k8s.io", "v4.channel.k8s.io")):
        self.root = root
        self.protocols = protocols
        self.execs: list[tuple[str, list[str], bool, str]] = []

    def app(self) -> web.Application:
        fake = self

        class Pod(web.RequestHandler):
            def get(self, ns: str, name: str) -> None:
                if ns != NS or name not in PODS:
                    self.set_status(404)
                    self.write({"kind": "Status", "code": 404, "reason": "NotFound"})
                    return
                self.write(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": name,
                            "namespace": ns,
                            "labels": {"mlhub.origin": HUB},
                            "annotations": PODS[name],
                        },
                        "status": {"phase": "Running", "podIP": "127.0.0.1"},
                    }
                )

        class Exec(websocket.WebSocketHandler):
            def select_subprotocol(self, subprotocols):
                return next((p for p in fake.protocols if p in subprotocols), None)

            async def open(self, ns: str, name: str) -> None:
                command = self.get_arguments("command")
                self.tty = self.get_argument("tty") == "true"
                fake.execs.append((name, command, self.tty, self.selected_subprotocol))
                loop = asyncio.get_running_loop()
                if self.tty:
                    self.master, slave = os.openpty()
                    self.proc = await asyncio.create_subprocess_exec(
                        *command,
                        stdin=slave,
                        stdout=slave,
                        stderr=slave,
                        cwd=fake.root,
                        start_new_session=True,
                    )
                    os.close(slave)
                    self.pumps = [asyncio.ensure_future(self._pump_pty(loop))]
                else:
                    self.proc = await asyncio.create_subprocess_exec(
                        *command,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        cwd=fake.root,
                        start_new_session=True,
                    )
                    self.pumps = [
                        asyncio.ensure_future(self._pump(self.proc.stdout, 1)),
                        asyncio.ensure_future(self._pump(self.proc.stderr, 2)),
                    ]
                asyncio.ensure_future(self._finish())

            async def _pump(self, stream, channel: int) -> None:
                while data := await stream.read(65536):
                    await self.write_message(bytes([channel]) + data, binary=True)

            async def _pump_pty(self, loop) -> None:
                while True:
                    try:
                        data = await loop.run_in_executor(None, os.read, self.master, 65536)
                    except OSError:
                        return
                    if not data:
                        return
                    await self.write_message(bytes([1]) + data, binary=True)

            async def _finish(self) -> None:
                code = await self.proc.wait()
                await asyncio.wait(self.pumps, timeout=5)
                status = (
                    {"status": "Success"}
                    if code == 0
                    else {
                        "status": "Failure",
                        "reason": "NonZeroExitCode",
                        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
                    }
                )
                try:
                    await self.write_message(bytes([3]) + json.dumps(status).encode(), binary=True)
                except websocket.WebSocketClosedError:
                    return
                self.close()

            def on_message(self, message) -> None:
                channel, payload = message[0], message[1:]
                if channel == 0:
                    if self.tty:
                        os.write(self.master, payload)
                    elif not self.proc.stdin.is_closing():
                        self.proc.stdin.write(payload)
                elif channel == 255 and payload[:1] == b"\x00" and not self.tty:
                    self.proc.stdin.close()
                elif channel == 4 and self.tty:
                    size = json.loads(payload)
                    fcntl.ioctl(
                        self.master,
                        termios.TIOCSWINSZ,
                        struct.pack("HHHH", size["Height"], size["Width"], 0, 0),
                    )

            def on_close(self) -> None:
                if self.proc.returncode is None:
                    self.proc.kill()

        return web.Application(
            [
                (r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec", Exec),
                (r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", Pod),
            ]
        )


class FixedHub(GatewayHub):
    """The hub's answer for each server, fixed (FAKE: no hub runs in these tests)."""

    def __init__(self):
        super().__init__("http://127.0.0.1:1/hub/api", "unused")

    async def workspace(self, target: Target) -> Workspace | None:
        pod = {"alice": "kubehub-alice", "bob": "kubehub-bob"}.get(target.user)
        if pod is None or target.server:
            return None
        return Workspace(target=target, ready=True, pending=None, object_ref=pod, url="")


class GatewayOnKube:
    """Fake API + real gateway (KubeEngine) on one event loop in a background thread."""

    def __init__(self, tmp: Path, protocols: tuple[str, ...]):
        self.root = tmp / "pod-root"
        self.root.mkdir()
        self.fake = FakeKubeAPI(self.root, protocols)
        self.api_port, self.ssh_port = free_port(), free_port()
        self.keys = KeyStore(f"sqlite:///{tmp / 'keys.sqlite'}")
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.kubeconfig = tmp / "kubeconfig"
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [
                        {"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.api_port}"}}
                    ],
                    "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                }
            )
        )
        threading.Thread(target=self._run, daemon=True).start()
        assert self.ready.wait(20), "gateway did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        server = HTTPServer(self.fake.app())
        server.add_sockets(bind_sockets(self.api_port, "127.0.0.1"))
        await kube_config.load_kube_config(config_file=str(self.kubeconfig))
        gateway = Gateway(
            FixedHub(), self.keys, KubeEngine(NS), HUB, token_auth=False, keys_page_url="(test)"
        )
        self.server = await asyncssh.listen(
            "127.0.0.1",
            self.ssh_port,
            server_factory=gateway.server_factory,
            server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            line_editor=False,
        )

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)


@pytest.fixture(scope="module", params=["v5", "v4"])
def kube_gw(request, tmp_path_factory):
    protocols = (
        ("v5.channel.k8s.io", "v4.channel.k8s.io") if request.param == "v5" else ("v4.channel.k8s.io",)
    )
    tmp = tmp_path_factory.mktemp(f"kube-ssh-{request.param}")
    gw = GatewayOnKube(tmp, protocols)
    key = tmp / "alice_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    gw.keys.add("alice", key.with_suffix(".pub").read_text())
    gw.key, gw.protocol = key, request.param
    yield gw
    gw.stop()


def ssh(gw, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "ssh",
            "-p",
            str(gw.ssh_port),
            "-i",
            str(gw.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            *args,
        ],
        input=input,
        capture_output=True,
        timeout=60,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def test_commands_exit_codes_and_stderr(kube_gw):
    r = ssh(kube_gw, "alice@127.0.0.1", "pwd; echo err >&2; exit 7")
    assert r.returncode == 7, r.stderr
    assert r.stdout.decode().strip() == str(kube_gw.root)
    assert b"err" in r.stderr
    (session,) = [e for e in kube_gw.fake.execs if any("echo err" in part for part in e[1])]
    pod, command, tty, protocol = session
    assert pod == "kubehub-alice" and not tty and protocol.startswith(kube_gw.protocol)


def test_pty_and_resize(kube_gw):
    r = ssh(kube_gw, "-tt", "alice@127.0.0.1", "tty; stty size; exit 3")
    assert r.returncode == 3, r.stderr
    assert b"/dev/pts/" in r.stdout
    (session,) = [e for e in kube_gw.fake.execs if any("stty size" in part for part in e[1])]
    assert session[2] is True  # asked for a TTY


def test_stdin_reaches_the_process(kube_gw):
    if kube_gw.protocol == "v4":
        # v4 cannot close stdin: a command that reads to EOF would wait forever; one that
        # reads what it needs works
        r = ssh(kube_gw, "alice@127.0.0.1", "head -c 100000 | wc -c", input=b"x" * 100000)
    else:
        r = ssh(kube_gw, "alice@127.0.0.1", "wc -c", input=b"x" * 100000)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == "100000"


def test_scp_through_sftp_server_in_the_pod(kube_gw, tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    (tmp_path / "in.bin").write_bytes(data)
    common = [
        "-P",
        str(kube_gw.ssh_port),
        "-i",
        str(kube_gw.key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    ]
    r = subprocess.run(
        ["scp", *common, str(tmp_path / "in.bin"), "alice@127.0.0.1:copied.bin"],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    assert (
        hashlib.sha256((kube_gw.root / "copied.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
    )
    r = subprocess.run(
        ["scp", *common, "alice@127.0.0.1:copied.bin", str(tmp_path / "out.bin")],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.bin").read_bytes() == data


def test_tunnel_to_the_pods_address(kube_gw):
    port, local = free_port(), free_port()
    server = subprocess.Popen(
        ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=kube_gw.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tunnel = subprocess.Popen(
        [
            "ssh",
            "-p",
            str(kube_gw.ssh_port),
            "-i",
            str(kube_gw.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-N",
            "-L",
            f"{local}:localhost:{port}",
            "alice@127.0.0.1",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                reply = requests.get(f"http://127.0.0.1:{local}/", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        assert reply.status_code == 200
    finally:
        tunnel.kill()
        server.kill()


def test_another_users_pod_is_never_reached(kube_gw):
    before = len(kube_gw.fake.execs)
    r = ssh(kube_gw, "bob@127.0.0.1", "true")  # alice's key is not bob's
    assert r.returncode == 255 and b"not registered for hub user 'bob'" in r.stderr
    assert len(kube_gw.fake.execs) == before


def test_exit_status_messages():
    assert exit_status({"status": "Success"}) == 0
    assert (
        exit_status(
            {
                "status": "Failure",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "42"}]},
            }
        )
        == 42
    )
    assert exit_status({"status": "Failure", "reason": "InternalError", "message": "boom"}) is None
