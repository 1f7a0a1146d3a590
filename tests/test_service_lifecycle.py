"""MLHub's services live and die with their hub.

The hub starts the cleanup service and the SSH gateway as managed subprocesses. When the hub
process is killed (``kill -9``: no chance to stop them), they must exit on their own, so that a
hub started again with the same command gets the ports 8091, 8092 and 2222 (here: this test's
ports) for its own services instead of failing with "Address already in use".
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devtools.hubprocess import REPO, HubProcess, free_port, new_hub_name, remove_test_objects
from mlhub.core.lifetime import alive

#: MLHub's services, and JupyterHub's idle culler (started through mlhub.services.idle_culler)
SERVICES = ("cleanup-service", "ssh", "idle-culler")


def processes_in(directory: Path) -> set[int]:
    """Processes whose working directory is *directory* (the hub's, which its children keep)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == directory:
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


def service_pids(hub: HubProcess) -> dict[str, int]:
    services = hub.api("GET", "/services").json()
    return {name: int(services[name]["pid"]) for name in SERVICES}


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s: {what}")


def ssh_banner(port: int) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            return sock.recv(64)
    except OSError:
        return b""


def cleanup_answers(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/services/cleanup-service/status", timeout=5)
    except requests.RequestException:
        return False
    return True


@pytest.fixture
def fixed_port_hub(tmp_path, docker_client):
    """A hub whose every port stays the same across restarts (as with the README's command)."""
    hub = HubProcess(
        tmp_path,
        new_hub_name(),
        env={"MLHUB_CLEANUP_PORT": str(free_port()), "CLEANUP_INTERVAL_SECONDS": "-1"},
    )
    started: list[int] = []
    yield hub, started
    hub.stop()
    # What a failing run leaves behind (the services, and the proxy and idle culler the killed
    # hub could not stop): this test's own processes only, those running in its directory.
    for pid in set(started) | processes_in(tmp_path):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    remove_test_objects(docker_client, hub.hub_name)


def test_services_exit_when_their_hub_is_killed_and_a_new_hub_gets_the_ports(fixed_port_hub):
    hub, started = fixed_port_hub
    hub.start()
    old = service_pids(hub)
    started += old.values()
    assert all(alive(pid) for pid in old.values())

    assert hub.proc is not None
    os.kill(hub.proc.pid, signal.SIGKILL)  # the hub only, not its services
    hub.proc.wait()
    hub.proc = None

    wait_until(
        lambda: not any(alive(pid) for pid in old.values()),
        timeout=60,
        what=f"the orphaned services {old} exit after their hub was killed",
    )

    # they said why, in the log they share with the hub
    log = hub.log_tail(400)
    assert "cleanup-service: the hub (pid" in log and "ssh gateway: the hub (pid" in log

    hub.start()
    cleanup_port = int(hub.env["MLHUB_CLEANUP_PORT"])
    wait_until(lambda: ssh_banner(hub.ssh_port).startswith(b"SSH-"), 60, "the new SSH gateway answers")
    wait_until(lambda: cleanup_answers(cleanup_port), 60, "the new cleanup service answers")
    new = service_pids(hub)
    started += new.values()
    assert not set(new.values()) & set(old.values())
    assert all(alive(pid) for pid in new.values()), hub.log_tail()
    assert "Address already in use" not in hub.log_tail(400)


# A "hub" (a shell) starts a service and exits before the service asks Linux for a death
# signal (the service waits for that): Linux then sends nothing, so only the pid the hub passed
# (MLHUB_HUB_PID) tells the service that its hub is gone.
LATE_STARTERS = {
    "the idle culler's wrapper": "from mlhub.core.lifetime import die_with_parent\n"
    "die_with_parent()\nimport time; time.sleep(60)",
    "a service watching its hub": "import asyncio\nfrom mlhub.core.lifetime import watch_hub\n"
    "asyncio.run(watch_hub('late-service', interval=0.2))",
}


@pytest.mark.parametrize("what", LATE_STARTERS)
def test_a_service_whose_hub_died_while_it_started_exits(what: str, tmp_path: Path) -> None:
    code = tmp_path / "service.py"
    code.write_text(LATE_STARTERS[what])
    hub = subprocess.run(
        [
            "bash",
            "-c",
            # the service starts once the "hub" is gone (and reaped: a zombie still answers kill -0)
            f"(while kill -0 $$ 2>/dev/null; do sleep 0.05; done; MLHUB_HUB_PID=$$ exec {sys.executable} {code})"
            " >/dev/null 2>&1 & echo $!",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    service = int(hub.stdout.strip())
    try:
        wait_until(
            lambda: not alive(service), timeout=15, what=f"{what} (pid {service}) exits without its hub"
        )
    finally:
        if alive(service):
            os.kill(service, signal.SIGKILL)


def test_a_hub_stopping_its_services_leaves_one_line_each_and_no_traceback(hub_factory) -> None:
    """JupyterHub stops a service with SIGINT first: MLHub's services say so in one line (a
    KeyboardInterrupt's traceback in the log reads like a crash on every normal stop)."""
    hub = hub_factory()
    start = len(hub.log_path.read_text())
    hub.stop()
    log = hub.log_path.read_text()[start:]
    assert "cleanup-service: stopped by SIGINT" in log and "ssh gateway: stopped by SIGINT" in log, log[
        -3000:
    ]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]


def test_a_service_behind_a_wrapper_runs_while_its_hub_runs(tmp_path: Path) -> None:
    """An admin's service command may wrap Python (``sh -c``): the service's parent is then not
    the hub, yet the hub runs; the service keeps running, and ends with the wrapper."""
    code = tmp_path / "wrapped.py"
    code.write_text(LATE_STARTERS["a service watching its hub"])
    hub = subprocess.Popen(
        ["bash", "-c", f'MLHUB_HUB_PID=$$ bash -c "{sys.executable} {code}; true" & wait'],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    try:
        wait_until(lambda: processes_running(str(code)), timeout=15, what="the wrapped service starts")
        time.sleep(3)  # fifteen of its looks at its parent
        service = processes_running(str(code))
        assert service, "the wrapped service exited while its hub and its wrapper ran"
        wrapper = int(Path(f"/proc/{service[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert wrapper != hub.pid, "the service's parent is the hub itself; nothing is wrapped"
        for pid in (wrapper, hub.pid):  # not the service: it ends on its own
            os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: not any(alive(pid) for pid in service),
            timeout=15,
            what="the service ends with its wrapper",
        )
    finally:
        for pid in processes_running(str(code)):
            os.kill(pid, signal.SIGKILL)
        if hub.poll() is None:
            os.killpg(hub.pid, signal.SIGKILL)
        hub.wait()


def processes_running(script: str) -> list[int]:
    """Live processes running *script* as an argument of its own (``python script``; not a
    shell whose command string mentions it)."""
    found = []
    marker = b"\0" + script.encode() + b"\0"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found
