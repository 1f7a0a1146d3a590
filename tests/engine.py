"""Stop the local Docker engine and start it again, for tests of the hub across an engine restart.

Only for a dockerd this machine runs itself (as CI and ``scripts/lib/setup.sh`` start it) or
one managed by systemd; the engine comes back even when the test body fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

LOG = Path("/var/log/mlhub-dockerd.log")


def _dockerd_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "dockerd":
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _systemd_managed() -> bool:
    return bool(shutil.which("systemctl")) and Path("/run/systemd/system").is_dir() and (
        subprocess.run(["systemctl", "is-active", "--quiet", "docker"], check=False).returncode == 0
    )


def wait_for_engine(timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            docker.from_env(timeout=5).ping()
            return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"the Docker engine did not come back within {timeout}s (see {LOG})")


@contextlib.contextmanager
def engine_stopped() -> Iterator[None]:
    """The engine is down inside the block and answering again after it."""
    if os.geteuid() != 0:
        pytest.skip("restarting the Docker engine needs root")
    if os.environ.get("DOCKER_HOST", "unix://").split("://")[0] not in ("unix", ""):
        pytest.skip("DOCKER_HOST is a remote engine; it cannot be restarted from here")
    if _systemd_managed():
        subprocess.run(["systemctl", "stop", "docker.socket", "docker"], check=True)
        try:
            yield
        finally:
            subprocess.run(["systemctl", "start", "docker"], check=True)
            wait_for_engine()
        return
    pids = _dockerd_pids()
    if len(pids) != 1:
        pytest.skip(f"expected one local dockerd process, found {len(pids)}")
    pid = pids[0]
    proc = Path(f"/proc/{pid}")
    cmdline = [arg.decode() for arg in (proc / "cmdline").read_bytes().split(b"\0") if arg]
    env = dict(
        item.decode().split("=", 1) for item in (proc / "environ").read_bytes().split(b"\0") if b"=" in item
    )
    os.kill(pid, signal.SIGTERM)
    if not _ended(pid, timeout=60):
        os.kill(pid, signal.SIGKILL)
        _ended(pid, timeout=10)
    try:
        yield
    finally:
        with open(LOG, "ab") as log:
            subprocess.Popen(cmdline, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_engine()


def _ended(pid: int, timeout: float) -> bool:
    """Whether the process exits within *timeout* (a zombie nobody reaps counts as ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        time.sleep(0.2)
    return False
