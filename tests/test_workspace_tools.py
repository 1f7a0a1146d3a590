"""The bundled workspace image: its tools through the hub's routes, the ML Workspace variables,
run-as-job. Real hub, real containers, the owner's and another user's real tokens."""

from __future__ import annotations

import json
import os
import time

import docker
import pytest
import requests

from tests.support.images import WORKSPACE_IMAGE
from tests.support.wheels import make_wheel, tar_of

TOOLS = ("vscode", "tensorboard", "monitor")
FULL_IMAGE = os.environ.get("MLHUB_TEST_FULL_IMAGE", "mlhub/workspace:full")


@pytest.fixture(scope="module")
def tools_hub(hub_factory, docker_client):
    hub = hub_factory(
        env={"MLHUB_MAX_CPU_LIMIT": "2", "MLHUB_ALLOWED_IMAGES": f"{WORKSPACE_IMAGE},{FULL_IMAGE}"}
    )
    tokens = {name: hub.ensure_user(name) for name in ("alice", "bob")}
    r = hub.spawn("alice", "", {"cpu_limit": 1, "image": WORKSPACE_IMAGE}, token=tokens["alice"])
    assert r.status_code in (201, 202), r.text
    hub.tokens = tokens
    hub.container = lambda: docker_client.containers.get(hub.server("alice")["state"]["object_id"])
    return hub


def get(hub, path: str, user: str, timeout: float = 90, **kwargs) -> requests.Response:
    """GET through the hub's public port with the user's token; tools may take a moment to start."""
    headers = {"Authorization": f"token {hub.tokens[user]}"}
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(hub.at(path), headers=headers, timeout=60, allow_redirects=True, **kwargs)
        if r.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            return r
        time.sleep(1)


@pytest.mark.parametrize("tool", TOOLS)
def test_each_tool_answers_its_owner_and_refuses_others(tools_hub, tool):
    r = get(tools_hub, f"/user/alice/tools/{tool}/", "alice")
    assert r.status_code == 200, (tool, r.status_code, r.text[:300])
    assert "<html" in r.text.lower()
    other = get(tools_hub, f"/user/alice/tools/{tool}/", "bob")
    assert other.status_code == 403, (tool, other.status_code)
    anonymous = requests.get(tools_hub.at(f"/user/alice/tools/{tool}/"), allow_redirects=False, timeout=30)
    assert anonymous.status_code in (302, 403)
    if anonymous.status_code == 302:
        assert "/hub/" in anonymous.headers["Location"]


def test_any_port_at_proxy(tools_hub):
    container = tools_hub.container()
    container.exec_run(
        ["sh", "-c", "cd /tmp && nohup python3 -m http.server 8765 >/dev/null 2>&1 &"], detach=True
    )
    deadline = time.monotonic() + 20
    while b":223D " not in container.exec_run(["cat", "/proc/net/tcp"]).output.upper():  # port 8765 listening
        assert time.monotonic() < deadline, "the test server in the workspace never listened"
        time.sleep(0.3)
    r = get(tools_hub, "/user/alice/proxy/8765/", "alice", timeout=30)
    assert r.status_code == 200 and "Directory listing" in r.text
    assert get(tools_hub, "/user/alice/proxy/8765/", "bob").status_code == 403


def test_launcher_and_open_tool_menu_list_the_tools(tools_hub):
    info = get(tools_hub, "/user/alice/server-proxy/servers-info", "alice")
    assert info.status_code == 200, info.text[:200]
    names = {server["name"] for server in info.json()["server_processes"]}
    assert {f"tools/{tool}" for tool in TOOLS} <= names
    assert all(s["launcher_entry"]["enabled"] for s in info.json()["server_processes"] if s["name"] in names)
    menu = get(tools_hub, "/user/alice/lab/api/settings/@jupyterlab/mainmenu-extension:plugin", "alice")
    assert menu.status_code == 200, menu.text[:200]
    text = json.dumps(menu.json())
    assert "Open tool" in text and "/user/alice/tools/vscode/" in text


def test_lab_and_terminal(tools_hub):
    assert get(tools_hub, "/user/alice/lab", "alice").status_code == 200
    headers = {"Authorization": f"token {tools_hub.tokens['alice']}"}
    r = requests.post(tools_hub.at("/user/alice/api/terminals"), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    requests.delete(
        tools_hub.at(f"/user/alice/api/terminals/{r.json()['name']}"), headers=headers, timeout=30
    )


def _server_env(container) -> dict[str, str]:
    out = container.exec_run(["sh", "-c", "cat /proc/$(pgrep -f -o jupyterhub-singleuser)/environ"]).output
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def test_thread_counts_follow_the_cpu_limit_and_tutorials_are_there(tools_hub):
    env = _server_env(tools_hub.container())
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        assert env.get(name) == "1", (name, env.get(name))
    listing = tools_hub.container().exec_run(["ls", "/workspace/tutorials"]).output.decode()
    assert "01-welcome.ipynb" in listing


def test_node_is_in_login_shells_and_not_on_the_servers_path(tools_hub):
    """With node on the server's PATH, importing JupyterLab runs `node yarn config` at every
    start (0.25 s at full CPU, 0.85 s at half a core): code-server's node is for login shells
    (terminals, SSH) and VS Code only."""
    container = tools_hub.container()
    path = _server_env(container)["PATH"].split(":")
    assert "/opt/code-server/bin" not in path, path
    shell = container.exec_run(["bash", "-lc", "command -v node && node --version"])
    assert shell.exit_code == 0 and shell.output.decode().startswith("/opt/code-server/bin/node"), (
        shell.output
    )


def test_settings_in_workspace_survive_stop_and_start(tools_hub):
    container = tools_hub.container()
    done = container.exec_run(["git", "config", "--global", "user.name", "Alice Example"])
    assert done.exit_code == 0, done.output
    container.exec_run(["sh", "-c", "mkdir -p ~/.ssh && echo kept > ~/.ssh/known_hosts"])
    tools_hub.stop_server("alice")
    r = tools_hub.spawn(
        "alice", "", {"cpu_limit": 1, "image": WORKSPACE_IMAGE}, token=tools_hub.tokens["alice"]
    )
    assert r.status_code in (201, 202)
    fresh = tools_hub.container()
    assert fresh.id != container.id
    assert (
        fresh.exec_run(["git", "config", "--global", "user.name"]).output.decode().strip() == "Alice Example"
    )
    assert fresh.exec_run(["cat", "/home/jovyan/.ssh/known_hosts"]).output.decode().strip() == "kept"


def test_execute_code_runs_a_job_with_its_exit_code(docker_client, tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    (job / "setup.sh").write_text("echo prepared > /tmp/prepared\n")
    (job / "main.py").write_text(
        "import os, sys\nprint('job ran with', os.environ['OMP_NUM_THREADS'], open('/tmp/prepared').read().strip())\n"
        "sys.exit(7)\n"
    )
    job.chmod(0o755)
    container = docker_client.containers.run(
        WORKSPACE_IMAGE,
        environment={"EXECUTE_CODE": "/job", "MAX_NUM_THREADS": "3", "INCLUDE_TUTORIALS": "false"},
        volumes={str(job): {"bind": "/job", "mode": "ro"}},
        labels={"mlhub.origin": "mlt-job"},
        detach=True,
    )
    try:
        assert container.wait(timeout=120)["StatusCode"] == 7
        assert "job ran with 3 prepared" in container.logs().decode()
    finally:
        container.remove(force=True)


def test_shells_get_typed_values_and_run_none_of_them(docker_client):
    """Values from the form's environment block reach a login shell (as SSH and terminals start
    one) exactly as typed; none of them runs as a command."""
    typed = {
        "OMP_NUM_THREADS": "1; touch /tmp/ran-1",
        "MKL_NUM_THREADS": "$(touch /tmp/ran-2)",
        "NUMBA_NUM_THREADS": "`touch /tmp/ran-3` 'q\"",
    }
    shown = (
        'printf "%s\\n" "$OMP_NUM_THREADS" "$MKL_NUM_THREADS" "$NUMBA_NUM_THREADS"; '
        'for f in /tmp/ran-1 /tmp/ran-2 /tmp/ran-3; do [ -e "$f" ] && echo "RAN $f"; done; true'
    )
    output = docker_client.containers.run(
        WORKSPACE_IMAGE,
        ["bash", "-ic", shown],
        environment={**typed, "INCLUDE_TUTORIALS": "false"},
        labels={"mlhub.origin": "mlt-job"},
        remove=True,
        stdout=True,
        stderr=False,
    ).decode()
    assert output.splitlines() == list(typed.values()), output  # and no "RAN ..." line


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_NUM_THREADS", "lots"),
        ("SHUTDOWN_INACTIVE_KERNELS", "soon"),
        ("CONFIG_BACKUP_ENABLED", "maybe"),
        ("VNC_RESOLUTION", "big"),
        ("VNC_PW", "abc"),
        ("NOTEBOOK_ARGS", "--a='unbalanced"),
        ("NOTEBOOK_ARGS", "rm -rf /"),
        ("EXECUTE_CODE", "git+ext::sh -c id"),
    ],
)
def test_bad_variables_stop_the_workspace_naming_them(docker_client, name, value):
    try:
        output = docker_client.containers.run(
            WORKSPACE_IMAGE,
            environment={name: value},
            remove=True,
            labels={"mlhub.origin": "mlt-job"},
            stderr=True,
            stdout=True,
        )
        raise AssertionError(f"started with {name}={value}: {output[:200]}")
    except docker.errors.ContainerError as exc:
        assert exc.exit_status == 2
        assert f"{name}: must be" in exc.stderr.decode()


def test_desktop_over_novnc_in_the_full_flavor(tools_hub):
    import asyncio

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    r = tools_hub.spawn("alice", "desk", {"image": FULL_IMAGE}, token=tools_hub.tokens["alice"])
    assert r.status_code in (201, 202), r.text
    page = get(tools_hub, "/user/alice/desk/tools/desktop/vnc.html", "alice")
    assert page.status_code == 200 and "noVNC" in page.text
    info = get(tools_hub, "/user/alice/desk/server-proxy/servers-info", "alice").json()["server_processes"]
    (desktop,) = [s for s in info if s["name"] == "tools/desktop"]
    assert desktop["launcher_entry"]["path_info"].endswith("path=user/alice/desk/tools/desktop/websockify")
    assert get(tools_hub, "/user/alice/desk/tools/desktop/vnc.html", "bob").status_code == 403

    async def handshake() -> bytes:
        url = tools_hub.at("/user/alice/desk/tools/desktop/websockify").replace("http://", "ws://")
        request = HTTPRequest(url, headers={"Authorization": f"token {tools_hub.tokens['alice']}"})
        ws = await websocket_connect(request, subprotocols=["binary"])
        message = await asyncio.wait_for(ws.read_message(), 30)
        ws.close()
        return message

    # the VNC server itself answers through the hub: the RFB protocol's greeting
    assert asyncio.run(handshake()).startswith(b"RFB 003.")
    tools_hub.stop_server("alice", "desk", remove=True)


def sh(container, command: str, login: bool = True) -> tuple[int, str]:
    """Run *command* in the workspace as its user (a login shell: as terminals and SSH start one)."""
    result = container.exec_run(["bash", "-lc" if login else "-c", command])
    return result.exit_code, result.output.decode()


def test_pip_install_as_the_user_lasts_across_stop_and_start(tools_hub, tmp_path):
    """No sudo, no network: wheels handed in; pip from a login shell, from a plain shell and as a
    notebook's %pip runs it (the kernel's python -m pip); all still importable in a new container."""
    container = tools_hub.container()
    wheels = [
        make_wheel(tmp_path, "mlhubtinyone", script="tinyone-hello"),
        make_wheel(tmp_path, "mlhubtinytwo"),
        make_wheel(tmp_path, "mlhubtinythree"),
    ]
    assert container.put_archive("/tmp", tar_of(*wheels))
    code, out = sh(container, "id -u; command -v pip python; sudo -n true 2>&1 || echo no-sudo")
    assert out.split()[:3] == ["1000", "/opt/venv/bin/pip", "/opt/venv/bin/python"], out  # not Debian's pip
    assert "no-sudo" in out
    code, out = sh(container, "pip install --no-index /tmp/mlhubtinyone-1.0-py3-none-any.whl")
    assert code == 0, out
    code, out = sh(container, "pip install --no-index /tmp/mlhubtinytwo-1.0-py3-none-any.whl", login=False)
    assert code == 0, out
    code, out = sh(
        container, "python -m pip install --no-index /tmp/mlhubtinythree-1.0-py3-none-any.whl", login=False
    )
    assert code == 0, out
    code, out = sh(container, "tinyone-hello")  # its console script is on PATH
    assert (code, out.strip()) == (0, "mlhubtinyone 1.0"), out

    tools_hub.stop_server("alice")
    r = tools_hub.spawn(
        "alice", "", {"cpu_limit": 1, "image": WORKSPACE_IMAGE}, token=tools_hub.tokens["alice"]
    )
    assert r.status_code in (201, 202), r.text
    fresh = tools_hub.container()
    assert fresh.id != container.id
    check = "python -c 'import mlhubtinyone, mlhubtinytwo, mlhubtinythree; print(mlhubtinytwo.WHO)' && tinyone-hello"
    for login in (True, False):
        code, out = sh(fresh, check, login=login)
        assert (code, out.split()) == (0, ["mlhubtinytwo", "1.0", "mlhubtinyone", "1.0"]), (login, out)
    # the kernel's environment (the server's): the same Python and user site
    env = _server_env(fresh)
    assert env["PYTHONUSERBASE"] == "/workspace/.workspace/python" and env["PIP_USER"] == "1"
    assert (
        env["TENSORBOARD_PROXY_URL"] == "/user/alice/proxy/%PORT%/"
    )  # %tensorboard's frame, through the hub

    # the escape hatch for an install that breaks the server: PYTHONNOUSERSITE=1 ignores the folder
    code, out = sh(fresh, "PYTHONNOUSERSITE=1 python -c 'import mlhubtinyone' 2>&1")
    assert code != 0 and "No module named 'mlhubtinyone'" in out, out
    # starting clean, as the README says: remove the folder; the image's packages stay
    code, out = sh(
        fresh,
        "rm -rf /workspace/.workspace/python && python -c 'import mlhubtinyone' 2>&1; python -c 'import jupyterlab'",
    )
    assert code == 0 and "No module named 'mlhubtinyone'" in out, out


def test_jupyterlab_git_nbdime_and_jupytext_load(tools_hub):
    code, out = sh(tools_hub.container(), "jupyter server extension list 2>&1")
    for extension in ("jupyterlab_git", "nbdime", "jupyterlab_jupytext"):
        assert any(line.strip().startswith(extension) and "enabled" in line for line in out.splitlines()), (
            extension,
            out,
        )
    assert "X " not in out  # no extension failed to load
    git = get(tools_hub, "/user/alice/git/settings", "alice")
    assert git.status_code == 200 and "gitVersion" in git.json(), git.text[:300]
    nbdime = get(tools_hub, "/user/alice/nbdime/difftool", "alice")
    assert nbdime.status_code == 200 and "nbdime" in nbdime.text.lower(), nbdime.text[:300]
    assert get(tools_hub, "/user/alice/git/settings", "bob").status_code == 403


def test_ml_workspace_tool_paths_reach_the_tools(tools_hub):
    container = tools_hub.container()
    container.exec_run(
        ["sh", "-c", "cd /tmp && nohup python3 -m http.server 8766 >/dev/null 2>&1 &"], detach=True
    )
    deadline = time.monotonic() + 20
    while b":223E " not in container.exec_run(["cat", "/proc/net/tcp"]).output.upper():  # port 8766 listening
        assert time.monotonic() < deadline, "the test server in the workspace never listened"
        time.sleep(0.3)
    port = get(tools_hub, "/user/alice/tools/8766/", "alice", timeout=30)
    assert port.status_code == 200 and "Directory listing" in port.text, port.text[:200]
    glances = get(tools_hub, "/user/alice/tools/glances/", "alice")
    assert glances.status_code == 200 and glances.url.endswith("/user/alice/tools/monitor/"), glances.url
    assert "glances" in glances.text.lower()
    for alias in ("tools/8766/", "tools/glances/", "tools/vnc/"):
        assert get(tools_hub, f"/user/alice/{alias}", "bob").status_code == 403, alias
        anonymous = requests.get(tools_hub.at(f"/user/alice/{alias}"), allow_redirects=False, timeout=30)
        assert anonymous.status_code in (302, 403), (alias, anonymous.status_code)
        if anonymous.status_code == 302:
            assert "/hub/" in anonymous.headers["Location"], (alias, anonymous.headers["Location"])


def test_desktop_variables_and_vnc_alias_in_the_full_flavor(tools_hub):
    r = tools_hub.spawn(
        "alice",
        "vnc",
        {"image": FULL_IMAGE, "env": {"VNC_PW": "s3cretpw", "VNC_RESOLUTION": "1024x768"}},
        token=tools_hub.tokens["alice"],
    )
    assert r.status_code in (201, 202), r.text
    page = get(tools_hub, "/user/alice/vnc/tools/vnc/?password=s3cretpw", "alice")
    assert page.status_code == 200 and "noVNC" in page.text, page.text[:200]
    assert "/user/alice/vnc/tools/desktop/vnc.html?autoconnect=true" in page.url and page.url.endswith(
        "&password=s3cretpw"
    )
    container = docker.from_env().containers.get(tools_hub.server("alice", "vnc")["state"]["object_id"])
    code, out = sh(container, "ps -o args= -C Xvnc")
    assert "-geometry 1024x768" in out and "VncAuth" in out, out
    code, out = sh(container, "firefox-esr --version")  # a web browser on the desktop
    assert code == 0 and "Firefox" in out, out
    tools_hub.stop_server("alice", "vnc", remove=True)


def test_tensorboard_magic_frame_loads_through_the_hub(tools_hub):
    """%tensorboard starts TensorBoard on a port and shows a frame at TENSORBOARD_PROXY_URL with
    %PORT% filled in: that address answers through the hub (and not for another user)."""
    container = tools_hub.container()
    template = _server_env(container)["TENSORBOARD_PROXY_URL"]
    container.exec_run(
        ["sh", "-c", "nohup tensorboard --logdir /tmp --port 6011 >/dev/null 2>&1 &"], detach=True
    )
    deadline = time.monotonic() + 60
    while (
        b":177B " not in container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"]).output.upper()
    ):  # 6011
        assert time.monotonic() < deadline, "TensorBoard in the workspace never listened"
        time.sleep(0.5)
    frame = template.replace("%PORT%", "6011")
    r = get(tools_hub, frame, "alice", timeout=120)
    assert r.status_code == 200 and "tensorboard" in r.text.lower(), (frame, r.status_code, r.text[:200])
    assert get(tools_hub, frame, "bob").status_code == 403


def test_ungit_in_the_full_flavor_answers_its_owner(tools_hub):
    """ungit, ML Workspace's web git client, is a tool like the others: through the hub's route
    for its owner (its pages and its API on a repository in /workspace), refused to others."""
    r = tools_hub.spawn("alice", "ungit", {"image": FULL_IMAGE}, token=tools_hub.tokens["alice"])
    assert r.status_code in (201, 202), r.text
    container = docker.from_env().containers.get(tools_hub.server("alice", "ungit")["state"]["object_id"])
    code, out = sh(container, "git init -q /workspace/project && echo hello > /workspace/project/new.txt")
    assert code == 0, out
    page = get(tools_hub, "/user/alice/ungit/tools/ungit/", "alice")
    assert page.status_code == 200 and "<title>ungit</title>" in page.text, page.text[:300]
    assert 'src="/user/alice/ungit/tools/ungit/serverdata.js"' in page.text  # its links stay under its route
    status = get(tools_hub, "/user/alice/ungit/tools/ungit/api/status?path=/workspace/project", "alice")
    assert status.status_code == 200, status.text[:300]
    assert "new.txt" in status.json()["files"], status.text[:300]
    info = get(tools_hub, "/user/alice/ungit/server-proxy/servers-info", "alice").json()["server_processes"]
    (ungit,) = [s for s in info if s["name"] == "tools/ungit"]
    assert ungit["launcher_entry"]["path_info"] == "tools/ungit/#/repository?path=/workspace"
    assert get(tools_hub, "/user/alice/ungit/tools/ungit/", "bob").status_code == 403
    anonymous = requests.get(
        tools_hub.at("/user/alice/ungit/tools/ungit/"), allow_redirects=False, timeout=30
    )
    assert anonymous.status_code in (302, 403)
    tools_hub.stop_server("alice", "ungit", remove=True)


def test_a_job_in_a_hub_runs_beside_the_server_and_keeps_its_exit_status(tools_hub):
    """EXECUTE_CODE behind a hub (docs/decisions/jobs-in-a-hub.md): the workspace starts and
    serves; the job runs beside it, its output in /workspace/.workspace/jobs/<time>.log and its
    exit status, 3 here, in <time>.status."""
    token = tools_hub.tokens["alice"]
    r = tools_hub.spawn("alice", "job", {"image": WORKSPACE_IMAGE}, token=token)
    assert r.status_code in (201, 202), r.text
    container = docker.from_env().containers.get(tools_hub.server("alice", "job")["state"]["object_id"])
    code, out = sh(
        container,
        "mkdir -p /workspace/train && printf 'import sys\\nprint(\"trained\", flush=True)\\nsys.exit(3)\\n'"
        " > /workspace/train/main.py",
    )
    assert code == 0, out
    tools_hub.stop_server("alice", "job")
    options = {"image": WORKSPACE_IMAGE, "env": {"EXECUTE_CODE": "/workspace/train"}}
    r = tools_hub.spawn("alice", "job", options, token=token)
    assert r.status_code in (201, 202), r.text  # a workspace with a job is a server
    container = docker.from_env().containers.get(tools_hub.server("alice", "job")["state"]["object_id"])
    deadline = time.monotonic() + 120
    while True:
        code, out = sh(container, "cat /workspace/.workspace/jobs/*.status 2>/dev/null")
        if code == 0:
            break
        assert time.monotonic() < deadline, "the job never wrote its status"
        time.sleep(1)
    assert out.split() == ["3"], out
    code, log = sh(container, "cat /workspace/.workspace/jobs/*.log")
    assert "trained" in log and "job finished with exit status 3" in log, log
    lab = get(tools_hub, "/user/alice/job/api/status", "alice")  # the server answers after the job ended
    assert lab.status_code == 200, lab.text[:300]
    tools_hub.stop_server("alice", "job", remove=True)
