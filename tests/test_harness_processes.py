"""The test harness's process handling (devtools.hubprocess): a hub that exits at start (e.g.
its port taken) leaves its proxy running in its process group; stopping it ends the group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from devtools.hubprocess import stop_process_group


def test_stopping_an_ended_leader_ends_what_it_started(tmp_path) -> None:
    pidfile = tmp_path / "child.pid"
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; "
            f"p = subprocess.Popen(['sleep', '300']); open({str(pidfile)!r}, 'w').write(str(p.pid))",
        ],
        start_new_session=True,
    )
    leader.wait(timeout=30)
    child = int(pidfile.read_text())
    os.kill(child, 0)  # the leader is gone, its child lives on
    stop_process_group(leader)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"the leader's child {child} still runs after stop_process_group")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stopping_a_killed_hub_ends_its_proxy(hub_factory) -> None:
    """JupyterHub starts configurable-http-proxy in a session of its own, so a hub killed
    outright (a test's crash, a timeout) leaves its proxy running with the hub's ports; the
    harness's stop ends it too, found by the proxy's pid file."""
    hub = hub_factory()
    proxy = int((hub.workdir / "data" / "jupyterhub-proxy.pid").read_text())
    assert _alive(proxy)
    assert hub.proc is not None
    os.kill(hub.proc.pid, signal.SIGKILL)  # the hub only: it cannot stop its proxy
    hub.proc.wait(timeout=30)
    assert _alive(proxy), "the proxy ended with its hub; nothing to test"
    hub.stop()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(proxy):
        time.sleep(0.1)
    assert not _alive(proxy), f"the killed hub's proxy {proxy} still runs after HubProcess.stop()"
