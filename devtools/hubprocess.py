"""A real MLHub hub for tests: ``jupyterhub -f jupyterhub_config.py`` in a subprocess.

It runs the shipped default config (NativeAuthenticator, MLHub Docker spawner, CHP started
by the hub) with its own HUB_NAME, data directory and free ports, plus a small overrides
file that registers an admin service token for the tests. Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
import requests
from jupyterhub.utils import subdomain_hook_idna

from mlhub.engines.workspace_disk import disk_of_volume

from . import loopback

loopback.install()

REPO = Path(__file__).resolve().parent.parent
LABEL_ORIGIN = "mlhub.origin"
#: Every hub started by the tests has a HUB_NAME starting with this; cleanup keys on it.
TEST_HUB_PREFIX = "mlt"


#: Test ports come from below the kernel's ephemeral range: a port the kernel hands out
#: (bind to port 0) can meanwhile become the source port of any outgoing connection, e.g. a
#: hub's to a workspace from the bridge gateway's address, and the hub's own bind on
#: ``<gateway>:<port>`` then fails with "Address already in use" (seen in CI, twice in one run).
PORTS_FROM = 20000
#: Which process reserved which test port: one file per port holding the owner's pid.
PORT_OWNERS = Path(tempfile.gettempdir()) / "mlhub-test-ports"


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _live_owner(path: Path) -> int | None:
    """The pid written in *path* when that process still lives, else None."""
    try:
        pid = int(path.read_text() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, but another user's
        return pid
    return pid


def _reserve(port: int) -> bool:
    """Reserve *port* for this process unless a live process (this one included) holds it."""
    PORT_OWNERS.mkdir(exist_ok=True)
    path = PORT_OWNERS / str(port)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if _live_owner(path) is not None:
            return False
        path.write_text(str(os.getpid()))  # its owner is gone: take it over
        return True
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    return True


def free_port() -> int:
    """A TCP port nothing listens on, below the ephemeral range, reserved for this process so
    another test process (pytest-xdist worker, benchmark) does not pick it too."""
    high = _ephemeral_low()
    rng = secrets.SystemRandom()
    for _ in range(500):
        port = rng.randrange(PORTS_FROM, high) if high > PORTS_FROM + 1000 else 0
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            port = sock.getsockname()[1]
        if _reserve(port):
            return port
    raise RuntimeError(f"no free test port between {PORTS_FROM} and {high}")


#: Which process owns which test hub name: one file per name holding the owner's pid, so that
#: a run's sweep of leftovers spares the hubs of another run (tests, soak, benchmarks) going on.
OWNERS = Path(tempfile.gettempdir()) / "mlhub-test-hubs"


def claim_hub_name(name: str) -> str:
    """Record that this process owns the test hub ``name``; returns it."""
    OWNERS.mkdir(exist_ok=True)
    (OWNERS / name).write_text(str(os.getpid()))
    return name


def _owned_by_another_live_process(name: str) -> bool:
    owner = _live_owner(OWNERS / name)
    return owner is not None and owner != os.getpid()


def stop_process_group(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group *proc* leads (started with ``start_new_session``), SIGKILL it
    after *timeout* seconds. When the leader has already ended (e.g. a hub that could not bind
    its port), what it started may live on (its proxy): the group is killed."""
    if proc.poll() is not None:
        try:  # the group's id is not reused while any of its members lives
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_started_proxy(pid_file: Path, api_port: int, timeout: float = 10) -> None:
    """End the configurable-http-proxy whose pid *pid_file* holds, if it still runs with API
    port *api_port*. JupyterHub starts its proxy in a session of its own, so ending a killed
    hub's process group misses it (the proxy then keeps the hub's ports). Another process that
    got the pid since, another hub's proxy among them, is left alone."""
    try:
        pid = int(pid_file.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    ours = any(b"configurable-http-proxy" in arg for arg in argv) and any(
        argv[i : i + 2] == [b"--api-port", str(api_port).encode()] for i in range(len(argv))
    )
    if not ours:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def new_hub_name() -> str:
    """A test hub name no other hub on this engine uses (claimed for this process)."""
    return claim_hub_name(f"{TEST_HUB_PREFIX}{secrets.token_hex(3)}")


def remove_test_objects(client: docker.DockerClient, hub_name: str | None = None) -> None:
    """Remove containers, networks and volumes of one test hub, or of every test hub whose
    owning process is gone (leftovers of interrupted runs; a concurrent run's hubs are spared)."""

    def mine(labels: dict[str, str] | None) -> bool:
        origin = (labels or {}).get(LABEL_ORIGIN, "")
        if hub_name:
            return origin == hub_name
        return origin.startswith(TEST_HUB_PREFIX) and not _owned_by_another_live_process(origin)

    # ignore_removed: another run's containers may go between the listing and their inspection
    for container in client.containers.list(all=True, filters={"label": LABEL_ORIGIN}, ignore_removed=True):
        if mine(container.labels):
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
    for network in client.networks.list(filters={"label": LABEL_ORIGIN}):
        if mine(network.attrs.get("Labels")):
            network.reload()
            for cid in network.attrs.get("Containers") or {}:
                try:
                    network.disconnect(cid, force=True)
                except docker.errors.APIError:
                    pass
            network.remove()
    for volume in client.volumes.list(filters={"label": LABEL_ORIGIN}):
        if mine(volume.attrs.get("Labels")):
            disk = disk_of_volume(volume.attrs)
            volume.remove(force=True)
            if disk is not None:
                disk.remove()


def user_origin(hub_url: str, user: str, subdomains: bool = True) -> str:
    """Where *user*'s workspaces are served: ``http://<user>.localhost:<port>`` with per-user
    origins (the default; JupyterHub's IDNA names), the hub's own URL without."""
    if not subdomains:
        return hub_url
    parsed = urlparse(hub_url)
    return parsed._replace(
        netloc=f"{subdomain_hook_idna(user, parsed.hostname, 'user')}:{parsed.port}"
    ).geturl()


def address(hub_url: str, path: str, subdomains: bool = True) -> str:
    """Absolute URL of *path* on a hub: ``/user/<name>/...`` on that user's origin, everything
    else on the hub's."""
    match = re.match(r"/user/([^/?#]+)", path)
    return (user_origin(hub_url, match.group(1), subdomains) if match else hub_url) + path


class HubProcess:
    """Start, stop and talk to one hub."""

    def __init__(
        self,
        workdir: Path,
        hub_name: str,
        env: dict[str, str] | None = None,
        extra_config: str = "",
        config: Path = REPO / "jupyterhub_config.py",
    ):
        self.workdir = workdir
        self.hub_name = hub_name
        self.port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.ssh_port = free_port()
        self.ssh_service_port = free_port()
        self.token = secrets.token_hex(16)
        self.env = dict(env or {})
        #: HTTPS with a self-signed certificate when SSL is on (requests then skip verification)
        self.verify = self.env.get("SSL_ENABLED", "false").lower() != "true"
        scheme = "http" if self.verify else "https"
        #: the host browsers use; ``localhost`` unless a test names another (``*.mlhub.test``)
        self.url = f"{scheme}://{self.env.pop('MLHUB_TEST_HOST', 'localhost')}:{self.port}"
        self.extra_config = extra_config
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{hub_name}.log"
        self._user_tokens: dict[str, str] = {}

    # --- process ------------------------------------------------------------------------

    def _write_overrides(self) -> Path:
        path = self.workdir / "test_overrides.py"
        path.write_text(
            f"""
c.JupyterHub.hub_port = {self.hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
c.JupyterHub.services.append({{"name": "mlhub-test", "api_token": "{self.token}"}})
c.JupyterHub.load_roles.append({{"name": "admin", "services": ["mlhub-test"]}})
c.Spawner.start_timeout = 90
{self.extra_config}
"""
        )
        return path

    def start(self, timeout: float = 60) -> HubProcess:
        env = {
            **os.environ,
            "HUB_NAME": self.hub_name,
            "MLHUB_DATA_DIR": str(self.workdir / "data"),
            "MLHUB_PORT": str(self.port),
            "MLHUB_CLEANUP_PORT": str(free_port()),
            "MLHUB_IP": "127.0.0.1",
            "MLHUB_SSH_PORT": str(self.ssh_port),
            "MLHUB_SSH_SERVICE_PORT": str(self.ssh_service_port),
            "MLHUB_USER_CONFIG": str(self._write_overrides()),
            "MLHUB_PUBLIC_URL": self.url,
            **self.env,
        }
        log = open(self.log_path, "ab")
        jupyterhub = Path(sys.executable).with_name("jupyterhub")
        self.proc = subprocess.Popen(
            [str(jupyterhub), "-f", str(self.config)],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2, verify=self.verify).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"hub did not answer within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc:
            stop_process_group(self.proc, timeout=30)
            # a hub that stops cleanly stops its proxy; a killed one leaves it running
            stop_started_proxy(
                Path(self.env.get("MLHUB_DATA_DIR", self.workdir / "data")) / "jupyterhub-proxy.pid",
                self.proxy_api_port,
            )
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def install_id(self) -> str:
        """This hub's install id (``mlhub.install``), kept in its data directory."""
        return (self.workdir / "data" / "install-id").read_text().strip()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def user_subdomains(self) -> bool:
        """Per-user origins: MLHub's config does them unless told not to (a stock config not)."""
        if self.config != REPO / "jupyterhub_config.py":
            return False
        return self.env.get("MLHUB_USER_SUBDOMAINS", "true").lower() not in ("false", "0", "no", "off")

    def user_origin(self, user: str) -> str:
        return user_origin(self.url, user, self.user_subdomains)

    def user_url(self, user: str, server: str = "", path: str = "") -> str:
        """URL of *user*'s workspace (``server`` named or default) plus *path*."""
        base = f"{self.user_origin(user)}/user/{user}/" + (f"{server}/" if server else "")
        return base + path.lstrip("/")

    def at(self, path: str) -> str:
        return address(self.url, path, self.user_subdomains)

    # --- REST API -----------------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {token or self.token}"}
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("verify", self.verify)
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, **kwargs)

    def ensure_user(self, name: str, admin: bool = False) -> str:
        """Create the hub user (if needed) and return an API token for them."""
        if name in self._user_tokens:
            return self._user_tokens[name]
        r = self.api("POST", f"/users/{name}", json={"admin": admin})
        assert r.status_code in (201, 409), r.text
        r = self.api("POST", f"/users/{name}/tokens", json={"note": "tests"})
        assert r.status_code == 201, r.text
        self._user_tokens[name] = r.json()["token"]
        return self._user_tokens[name]

    def server(self, user: str, server: str = "") -> dict[str, Any] | None:
        r = self.api("GET", f"/users/{user}")
        r.raise_for_status()
        return r.json().get("servers", {}).get(server)

    def spawn(
        self,
        user: str,
        server: str = "",
        options: dict[str, Any] | None = None,
        token: str | None = None,
        wait: bool = True,
    ) -> requests.Response:
        """POST the spawn request; on 201/202 wait until the server is ready."""
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        r = self.api("POST", path, token=token, json=options if options is not None else {})
        if wait and r.status_code in (201, 202):
            self.wait_ready(user, server)
        return r

    def spawn_refused(
        self,
        user: str,
        server: str = "",
        options: dict[str, Any] | None = None,
        token: str | None = None,
        status: int = 400,
    ) -> str:
        """POST a spawn that must fail and return its message: from the response (which must
        have *status*), or, when the failure came after the request returned (202), from the
        hub's log once the server has stopped."""
        r = self.spawn(user, server, options, token=token, wait=False)
        if r.status_code in (201, 202):
            self.wait_stopped(user, server)
            return self.log_tail(200)
        assert r.status_code == status, r.text
        return r.json()["message"]

    def wait_ready(self, user: str, server: str = "", timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        model: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            model = self.server(user, server)
            if model and model.get("ready"):
                return model
            if model is None or (not model.get("pending") and not model.get("ready")):
                raise AssertionError(f"{user}/{server} failed to start: {model}\n{self.log_tail()}")
            time.sleep(0.3)
        raise AssertionError(f"{user}/{server} not ready after {timeout}s: {model}\n{self.log_tail()}")

    def stop_server(self, user: str, server: str = "", remove: bool = False) -> None:
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        r = self.api("DELETE", path, json={"remove": remove} if server else None)
        assert r.status_code in (202, 204), r.text
        self.wait_stopped(user, server)

    def wait_stopped(self, user: str, server: str = "", timeout: float = 60) -> None:
        """Until the hub says the server neither runs nor is pending (or is gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.server(user, server)
            if model is None or not (model.get("pending") or model.get("ready")):
                return
            time.sleep(0.3)
        raise AssertionError(f"the hub still thinks {user}/{server} runs: {self.server(user, server)}")
