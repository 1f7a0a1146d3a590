"""The two stacks the benchmark compares, started the same way and reached the same way.

``stock``: JupyterHub + DockerSpawner + CHP (benchmarks/stock_config.py); ``mlhub``: the
shipped jupyterhub_config.py, with the hub on the host (``HubProcess``) or as the one-container
install (``docker run mlhub/mlhub:latest``, as the README says). Both get the same
``http_timeout``/``start_timeout`` through the overrides file each config loads last, and
both reach servers by container IP on a user-defined bridge network (no Docker port
forwarding). Clients wait on the hub's progress event stream, then on the proxied URL with a
back-off: the same on both sides.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import docker
import requests

from devtools.hubprocess import REPO, TEST_HUB_PREFIX, HubProcess, address, claim_hub_name, free_port

DEADLINE_S = 600  # no single wait is longer than this
#: What both stacks are given (the overrides file is loaded last by both configs).
PARITY = {"http_timeout": 60, "start_timeout": 300}
#: JupyterHub's own settings, the same on both stacks (MLHub's default limit; stock's is 100)
PARITY_HUB = {"concurrent_spawn_limit": 300}
PARITY_CONFIG = "\n".join(
    [f"c.Spawner.{k} = {v}" for k, v in PARITY.items()]
    + [f"c.JupyterHub.{k} = {v}" for k, v in PARITY_HUB.items()]
)


STOCK_CONFIG = REPO / "benchmarks" / "stock_config.py"
MLHUB_CONFIG = REPO / "jupyterhub_config.py"


def overrides_win(config: Path, keys: tuple[str, ...] = tuple(PARITY)) -> bool:
    """True if *config* loads the overrides file (``load_subconfig``) and sets none of *keys*
    after it, so the benchmark's values for them are the ones the hub uses."""
    text = config.read_text()
    at = text.rfind("load_subconfig(")
    if at < 0:
        return False
    after = text[at:].split("\n", 1)[1] if "\n" in text[at:] else ""
    return not any(re.search(rf"\b{re.escape(key)}\s*=", after) for key in keys)


class SpawnFailed(RuntimeError):
    """A spawn the hub refused or that failed; the message is its cause."""


def backoff(start: float = 0.05, limit: float = 1.0):
    delay = start
    while True:
        yield delay
        delay = min(delay * 2, limit)


class Stack:
    """One running hub and what the benchmark does with it."""

    def __init__(self, name: str, hub: Any, client: docker.DockerClient, reached: str):
        self.name = name
        self.hub = hub
        self.client = client
        #: how the hub reaches a server, for the results' config parity
        self.reached = reached
        #: the body of every spawn request (MLHub: the CPU the stock stack's servers get)
        self.spawn_options: dict[str, Any] = {}
        self._tokens: dict[str, str] = {}

    # --- users and spawns ---------------------------------------------------------------

    def token(self, user: str) -> str:
        return self.hub.ensure_user(user)

    def spawn_until_ready(self, user: str, server: str, options: dict[str, Any] | None = None) -> float:
        """Seconds from the spawn request until the server answers through the hub's proxy."""
        token = self.token(user)
        start = time.perf_counter()
        r = self.hub.api(
            "POST",
            f"/users/{user}/servers/{server}",
            token=token,
            json=options or self.spawn_options,
            timeout=DEADLINE_S,
        )
        if r.status_code not in (201, 202):
            raise SpawnFailed(f"refused: HTTP {r.status_code} {r.text[:300]}")
        if r.status_code == 202:
            self._wait_progress(user, server, token)
        self._wait_proxied(user, server, token, start)
        return time.perf_counter() - start

    def _wait_progress(self, user: str, server: str, token: str) -> None:
        """Until the hub's progress stream says ready or failed (one connection, no polling)."""
        url = f"{self.hub.url}/hub/api/users/{user}/servers/{server}/progress"
        headers = {"Authorization": f"token {token}"}
        with requests.get(url, headers=headers, stream=True, timeout=(30, DEADLINE_S)) as r:
            if r.status_code == 200:
                for line in r.iter_lines(decode_unicode=True):
                    if not line or not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    if event.get("ready"):
                        return
                    if event.get("failed"):
                        raise SpawnFailed(event.get("message") or "failed (no message)")
        model = self.server_model(user, server)
        if not (model and model.get("ready")):
            raise SpawnFailed(f"progress stream ended, server {model}")

    def _wait_proxied(self, user: str, server: str, token: str, start: float) -> None:
        url = self.hub.at(f"/user/{user}/" + (f"{server}/" if server else "") + "api/status")
        headers = {"Authorization": f"token {token}"}
        last = ""
        for delay in backoff():
            try:
                r = requests.get(url, headers=headers, timeout=30)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last = str(exc)
            if time.perf_counter() - start > DEADLINE_S:
                raise SpawnFailed(f"ready in the hub but not through the proxy after {DEADLINE_S} s: {last}")
            time.sleep(delay)

    def server_model(self, user: str, server: str) -> dict[str, Any] | None:
        r = self.hub.api("GET", f"/users/{user}")
        return r.json().get("servers", {}).get(server) if r.status_code == 200 else None

    def delete(self, user: str, server: str) -> None:
        self.hub.api("DELETE", f"/users/{user}/servers/{server}", json={"remove": True}, timeout=DEADLINE_S)

    def container_ids(self) -> list[str]:
        """The hub's workspace containers (not the hub's own, nor the cleanup scenario's made-up ones)."""
        filters = {"label": f"mlhub.origin={self.hub.hub_name}"}
        return [
            c["Id"]
            for c in self.client.api.containers(all=True, filters=filters)
            if c["Id"] != getattr(self.hub, "container_id", None)
            and not any(f"{self.hub.hub_name}-bench-" in n for n in c.get("Names") or [])
        ]

    def wait_gone(self, start: float) -> float:
        for delay in backoff(0.1, 0.5):
            if not self.container_ids():
                return time.perf_counter() - start
            if time.perf_counter() - start > DEADLINE_S:
                raise RuntimeError(f"{self.name}: containers still there after {DEADLINE_S}s")
            time.sleep(delay)
        raise AssertionError("unreachable")

    # --- what the hub says --------------------------------------------------------------

    def metrics(self) -> str | None:
        """The hub's Prometheus text, or None if it does not answer."""
        try:
            r = requests.get(
                f"{self.hub.url}/hub/metrics",
                headers={"Authorization": f"token {self.hub.token}"},
                timeout=30,
            )
        except requests.RequestException:
            return None
        return r.text if r.status_code == 200 else None

    def log_text(self) -> str:
        return self.hub.log_text()

    def cause(self, user: str, server: str, message: str) -> str:
        """A failed spawn's cause: the hub's message plus its last log line naming the user."""
        lines = [
            line
            for line in self.log_text().splitlines()
            if user in line and any(w in line for w in ("[E ", "[W ", "Error", "error", "failed", "Timeout"))
        ]
        return message + (f" | hub log: {lines[-1][:300]}" if lines else "")


# --- the hub on the host --------------------------------------------------------------------


class HostHub(HubProcess):
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def host_stack(
    name: str, workdir: Path, client: docker.DockerClient, env: dict[str, str], extra_config: str = ""
) -> Stack:
    """``stock`` or ``mlhub`` with the hub as a process on this host (*extra_config*: lines
    after the parity config, for a setting the run varies)."""
    hub_name = claim_hub_name(f"{TEST_HUB_PREFIX}b{secrets.token_hex(2)}")
    (workdir / name).mkdir(parents=True, exist_ok=True)
    env = dict(env)
    if name == "stock":
        network = stock_network(client, hub_name)
        env["BENCH_STOCK_NETWORK"] = network
        config = STOCK_CONFIG
        reached = (
            f"container IP on one user-defined bridge network ({network}), DockerSpawner use_internal_ip"
        )
    else:
        config = MLHUB_CONFIG
        reached = "container IP on the user's own bridge network (MLHub's default)"
    hub = HostHub(
        workdir / name, hub_name, env=env, config=config, extra_config=PARITY_CONFIG + "\n" + extra_config
    )
    return Stack(name, hub.start(), client, reached)


def stock_network(client: docker.DockerClient, hub_name: str) -> str:
    """One user-defined bridge for every stock server (DockerSpawner's ``network_name``)."""
    name = f"{hub_name}-stock"
    client.api.create_network(name, driver="bridge", labels={"mlhub.origin": hub_name})
    return name


# --- the one-container install -------------------------------------------------------------


class ContainerHub:
    """``docker run -p PORT:8080 -v docker.sock -v DATA:/data mlhub/mlhub:latest`` (the README's
    install), with the benchmark's admin token and timeouts in /resources/jupyterhub_user_config.py."""

    IMAGE = "mlhub/mlhub:latest"

    def __init__(self, workdir: Path, client: docker.DockerClient, env: dict[str, str]):
        self.client = client
        self.hub_name = claim_hub_name(f"{TEST_HUB_PREFIX}c{secrets.token_hex(2)}")
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.token = secrets.token_hex(16)
        self.verify = True
        self._user_tokens: dict[str, str] = {}
        workdir.mkdir(parents=True, exist_ok=True)
        overrides = workdir / "jupyterhub_user_config.py"
        overrides.write_text(
            f'c.JupyterHub.services.append({{"name": "mlhub-bench", "api_token": "{self.token}"}})\n'
            'c.JupyterHub.load_roles.append({"name": "admin", "services": ["mlhub-bench"]})\n'
            f"{PARITY_CONFIG}\n"
        )
        overrides.chmod(0o644)
        self.log_path = workdir / f"{self.hub_name}.log"
        data = client.volumes.create(f"{self.hub_name}-data", labels={"mlhub.origin": self.hub_name})
        self.container = client.containers.run(
            self.IMAGE,
            name=f"{self.hub_name}-starting",
            environment={"HUB_NAME": self.hub_name, "MLHUB_PUBLIC_URL": self.url, **env},
            ports={"8080/tcp": ("127.0.0.1", self.port)},
            volumes={
                "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                data.name: {"bind": "/data", "mode": "rw"},
                str(overrides): {"bind": "/resources/jupyterhub_user_config.py", "mode": "ro"},
            },
            labels={"mlhub.origin": self.hub_name},
            detach=True,
        )
        self.container_id = self.container.id
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.container.reload()
            if self.container.status == "exited":
                raise RuntimeError(f"hub container exited:\n{self.log_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"hub container did not answer:\n{self.log_text()[-3000:]}")

    def at(self, path: str) -> str:
        return address(self.url, path)

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        headers = {"Authorization": f"token {token or self.token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, **kwargs)

    def ensure_user(self, name: str, admin: bool = False) -> str:
        if name not in self._user_tokens:
            r = self.api("POST", f"/users/{name}", json={"admin": admin})
            assert r.status_code in (201, 409), r.text
            r = self.api("POST", f"/users/{name}/tokens", json={"note": "benchmark"})
            assert r.status_code == 201, r.text
            self._user_tokens[name] = r.json()["token"]
        return self._user_tokens[name]

    def log_text(self) -> str:
        try:
            return self.container.logs().decode(errors="replace")
        except docker.errors.APIError:
            return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        self.log_path.write_text(self.log_text())
        self.container.remove(force=True)


def container_stack(workdir: Path, client: docker.DockerClient, env: dict[str, str]) -> Stack:
    hub = ContainerHub(workdir / "mlhub-container", client, env)
    return Stack("mlhub-container", hub, client, "the hub container joins each user's network")


def keep_log(logs_dir: Path, name: str, text: str) -> Path:
    """Keep a hub's log as ``<logs_dir>/<name>.log.gz`` (hours of a hub's log are tens of MB)."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / f"{name}.log.gz"
    with gzip.open(path, "wt", encoding="utf-8") as kept:
        kept.write(text)
    return path


def stop_stack(stack: Stack, logs_dir: Path) -> None:
    """Stop the hub and keep its log in *logs_dir*."""
    stack.hub.stop()
    keep_log(logs_dir, stack.name, stack.log_text())
