"""The Docker engine failing under the hub, for fault tests.

``engine_stopped``: stop the local engine and start it again (every container stops with it).
Only for a dockerd this machine runs itself (as CI and ``scripts/lib/setup.sh`` start it) or
one managed by systemd; the engine comes back even when the test body fails.

``engine_relay``: a socket in front of the engine that a test cuts and restores, so the hub
loses the engine while the engine and its containers run on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
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
    return (
        bool(shutil.which("systemctl"))
        and Path("/run/systemd/system").is_dir()
        and (subprocess.run(["systemctl", "is-active", "--quiet", "docker"], check=False).returncode == 0)
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


class EngineRelay:
    """A unix socket that forwards every connection to the real engine's socket, and that a
    test can cut (listener and live connections closed: the engine is unreachable for whoever
    uses ``DOCKER_HOST=self.url``) and restore, while the engine and its containers keep running.
    """

    def __init__(self, path: Path, engine_socket: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.engine_socket = engine_socket
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def restore(self) -> None:
        """Listen (again) and forward."""
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and close every forwarded connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self.path.unlink(missing_ok=True)
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.engine_socket)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # wakes the other direction's pump; each pump closes the socket it reads
            for conn in (src, dst):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            src.close()


@contextlib.contextmanager
def engine_relay(path: Path) -> Iterator[EngineRelay]:
    relay = EngineRelay(path)
    relay.restore()
    try:
        yield relay
    finally:
        relay.cut()
