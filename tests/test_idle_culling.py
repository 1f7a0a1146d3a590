"""Idle culling for real: a hub with a short MLHUB_CULL_IDLE_SECONDS, real workspaces on the
real engine, the real OpenSSH client and a real kernel.

One hub, four named workspaces of one user, started together so their waits overlap:

- ``idle``: nobody touches it; the culler stops it.
- ``ssh``: an SSH session through the gateway runs a loop; the gateway reports the open session
  as activity, so it outlives the timeout, and is culled once the session ends.
- ``kernel``: a notebook kernel computes (``time.sleep``: busy, silent, no CPU) with no browser
  attached; the workspace image's extension reports the busy kernel, so it outlives the
  timeout, and is culled once the kernel is interrupted.
- ``terminal``: a JupyterLab terminal runs a command (``sleep``), its tab closed; the extension
  sees the shell's child process, so it outlives the timeout, and is culled after Ctrl-C.
- ``detached``: a process started detached (``nohup``-like, no terminal, no kernel) uses CPU;
  the extension reports the CPU use, so it outlives the timeout, and is culled once it ends.

No timing is asserted: each wait polls for the expected state, bounded. The busy workspaces are
watched for longer than the idle timeout plus two culler rounds; then all four activities end at
once, so their waits for the culler overlap.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from devtools.openssh import SSH_OPTS, keygen
from tests.support.images import WORKSPACE_IMAGE
from tests.support.web import login

TIMEOUT = 30  # MLHUB_CULL_IDLE_SECONDS; the culler then looks every 15 s
CULL_EVERY = 15
USER = "carol"
ADMIN_PASSWORD = "cull-Admin-pw-1"
BUSY = ("ssh", "kernel", "terminal", "detached")
SERVERS = ("idle", *BUSY)
WORKSPACE = Path(__file__).resolve().parent.parent / "docker" / "workspace"
# The workspace image's activity extension and config as they are in this checkout (the image
# may have been built before them): mounted over the image's copies.
MOUNT_EXTENSION = f"""
c.DockerSpawner.volumes = {{
    "{WORKSPACE / "mlhub_activity.py"}": {{"bind": "/opt/mlhub/python/mlhub_activity.py", "mode": "ro"}},
    "{WORKSPACE / "jupyter_server_config.py"}": {{"bind": "/etc/jupyter/jupyter_server_config.py", "mode": "ro"}},
}}
"""


def running(hub, server: str) -> bool:
    model = hub.server(USER, server)
    return bool(model and model.get("ready"))


def culler_lines(hub) -> str:
    """What the culler and the activity reports did, from the hub's log."""
    keep = ("Culling", "idle-culler", "/activity", "MLHub: workspace")
    return "\n".join(line for line in hub.log_tail(5000).splitlines() if any(k in line for k in keep))[-6000:]


def wait_culled(hub, server: str, timeout: float = 180) -> None:
    """Until the hub says *server* stopped, and its log says the culler stopped it."""
    hub.wait_stopped(USER, server, timeout=timeout)
    assert f"Culling server {USER}/{server} " in hub.log_tail(5000), culler_lines(hub)


async def _start_busy_cell(hub, server: str, token: str, code: str) -> str:
    """Start a kernel, send *code* to it over its WebSocket, wait until it is busy, hang up
    (like a closed browser tab). Returns the kernel's id."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    auth = {"Authorization": f"token {token}"}
    base = hub.at(f"/user/{USER}/{server}/api")
    r = requests.post(f"{base}/kernels", headers=auth, json={"name": "python3"}, timeout=60)
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    ws = await websocket_connect(
        HTTPRequest(f"{base.replace('http://', 'ws://')}/kernels/{kernel}/channels", headers=auth)
    )
    msg_id = uuid.uuid4().hex
    ws.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": USER,
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    while True:
        message = await asyncio.wait_for(ws.read_message(), 60)
        assert message is not None, "the kernel's WebSocket closed"
        reply = json.loads(message)
        if (
            reply.get("msg_type") == "status"
            and reply["parent_header"].get("msg_id") == msg_id
            and reply["content"]["execution_state"] == "busy"
        ):
            break
    ws.close()
    return kernel


async def _terminal(hub, server: str, token: str, keys: list[str], name: str = "", wait_for: str = "") -> str:
    """Type each of *keys* (half a second apart) into a JupyterLab terminal (a new one unless *name*) over its WebSocket,
    wait until its output shows *wait_for*, hang up (like a closed tab). Returns its name."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    auth = {"Authorization": f"token {token}"}
    base = hub.at(f"/user/{USER}/{server}")
    if not name:
        r = requests.post(f"{base}/api/terminals", headers=auth, timeout=60)
        assert r.status_code == 200, r.text
        name = r.json()["name"]
    url = f"{base.replace('http://', 'ws://')}/terminals/websocket/{name}"
    ws = await websocket_connect(HTTPRequest(url, headers=auth))
    for i, typed in enumerate(keys):
        if i:
            await asyncio.sleep(0.5)  # Ctrl-C flushes what was typed with it
        ws.write_message(json.dumps(["stdin", typed]))
    seen = ""
    while wait_for not in seen:
        message = await asyncio.wait_for(ws.read_message(), 60)
        assert message is not None, f"the terminal's WebSocket closed; it printed {seen!r}"
        kind, *rest = json.loads(message)
        if kind == "stdout":
            seen += rest[0]
    ws.close()
    return name


@pytest.fixture(scope="module")
def culling(hub_factory, docker_client, tmp_path_factory):
    hub = hub_factory(
        env={
            "MLHUB_CULL_IDLE_SECONDS": str(TIMEOUT),
            "MLHUB_MAX_CPU_LIMIT": "1",
            "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        },
        extra_config=MOUNT_EXTENSION,
    )
    token = hub.ensure_user(USER)
    key = keygen(tmp_path_factory.mktemp("cull") / "carol_key")
    r = requests.post(
        f"{hub.url}/services/ssh/api/keys",
        headers={"Authorization": f"token {token}"},
        json={"key": key.with_suffix(".pub").read_text()},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    for server in SERVERS:
        # the CPU-bound process gets half a core, so it does not slow the machine's other work
        options = {"image": WORKSPACE_IMAGE, "cpu_limit": 0.5 if server == "detached" else 1}
        r = hub.spawn(USER, server, options, token=token, wait=False)
        assert r.status_code in (201, 202), r.text
    for server in SERVERS:
        hub.wait_ready(USER, server)

    # ssh: a session running a loop, through the gateway
    session = subprocess.Popen(
        [
            "ssh",
            "-p",
            str(hub.ssh_port),
            *SSH_OPTS,
            "-i",
            str(key),
            f"{USER},ssh@127.0.0.1",
            "echo started; while true; do sleep 1; done",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert session.stdout.readline() == b"started\n", (
        session.stderr.read() if session.poll() is not None else ""
    )
    # kernel: a silent computation, no browser attached
    kernel = asyncio.run(_start_busy_cell(hub, "kernel", token, "import time; time.sleep(3600)"))
    # terminal: a command running in a JupyterLab terminal, no browser attached
    terminal = asyncio.run(
        _terminal(hub, "terminal", token, ["echo started-$((40+2)); sleep 3600\r"], wait_for="started-42")
    )
    # detached: a CPU-bound process with no terminal, started like `nohup python train.py &`
    detached = docker_client.containers.get(hub.server(USER, "detached")["state"]["object_id"])
    started = detached.exec_run(
        ["sh", "-c", "nohup python3 -c 'while True: pass' >/dev/null 2>&1 & echo $! > /tmp/busy.pid"]
    )
    assert started.exit_code == 0, started.output

    # Everything is busy from here on: watch for longer than the timeout plus two culler rounds.
    hold_until = time.monotonic() + TIMEOUT + 2 * CULL_EVERY
    yield {
        "hub": hub,
        "token": token,
        "session": session,
        "kernel": kernel,
        "terminal": terminal,
        "detached": detached,
        "hold_until": hold_until,
    }
    if session.poll() is None:
        session.terminate()
        session.wait(timeout=30)


def test_the_culler_runs_by_the_variable(culling):
    hub = culling["hub"]
    culler = hub.api("GET", "/services").json()["idle-culler"]
    assert f"--timeout={TIMEOUT}" in culler["command"] and f"--cull-every={CULL_EVERY}" in culler["command"]


def test_the_home_page_says_when_workspaces_are_stopped(culling):
    hub = culling["hub"]
    page = login(hub.url, "admin", ADMIN_PASSWORD).get(f"{hub.url}/hub/home", timeout=30)
    assert page.status_code == 200
    assert f"Workspaces are stopped after {TIMEOUT} seconds idle" in " ".join(page.text.split())


def test_an_untouched_workspace_is_culled(culling):
    wait_culled(culling["hub"], "idle")
    # stopped, not deleted: the user starts it again with their files
    model = culling["hub"].api("GET", f"/users/{USER}?include_stopped_servers=1").json()
    assert "idle" in model["servers"] and not model["servers"]["idle"]["ready"]


def _end_activity(culling: dict, server: str) -> None:
    """End what keeps *server* busy: the SSH session, the kernel's computation (it must still be
    busy), the terminal's command (Ctrl-C; the shell answers at its prompt), the detached process."""
    hub, token = culling["hub"], culling["token"]
    if server == "ssh":
        session = culling["session"]
        assert session.poll() is None, session.stderr.read()
        session.terminate()
        session.wait(timeout=30)
    elif server == "kernel":
        base = hub.at(f"/user/{USER}/kernel/api/kernels/{culling['kernel']}")
        auth = {"Authorization": f"token {token}"}
        assert requests.get(base, headers=auth, timeout=30).json()["execution_state"] == "busy"
        assert requests.post(f"{base}/interrupt", headers=auth, timeout=30).status_code == 204
    elif server == "terminal":
        keys = ["\x03", "echo back-$((40+2))\r"]
        asyncio.run(_terminal(hub, "terminal", token, keys, name=culling["terminal"], wait_for="back-42"))
    else:
        container = culling["detached"]
        assert container.exec_run(["sh", "-c", "kill $(cat /tmp/busy.pid)"]).exit_code == 0


@pytest.fixture(scope="module")
def released(culling) -> dict[str, str]:
    """Watch the busy workspaces past the timeout (each must keep running), then end all their
    activities at once, so that the four waits for the culler overlap. Returns, per workspace,
    what went wrong ("" when nothing did); each test reports its own."""
    hub = culling["hub"]
    problems = dict.fromkeys(BUSY, "")
    while True:
        for server in BUSY:
            if not problems[server] and not running(hub, server):
                problems[server] = f"{USER}/{server} was stopped while busy:\n{culler_lines(hub)}"
        if time.monotonic() >= culling["hold_until"]:
            break
        time.sleep(2)
    for server in BUSY:
        if not problems[server]:
            try:
                _end_activity(culling, server)
            except Exception as exc:  # each test reports its own; the others still end theirs
                problems[server] = f"ending {server}'s activity failed: {type(exc).__name__}: {exc}"
    return problems


@pytest.mark.parametrize("server", BUSY)
def test_a_busy_workspace_is_kept_until_its_activity_ends(released, culling, server: str) -> None:
    """ssh: an open SSH session; kernel: a computing kernel; terminal: a command in a terminal;
    detached: a process using CPU. Each keeps its workspace past the timeout, then it is culled."""
    assert not released[server], released[server]
    wait_culled(culling["hub"], server)
