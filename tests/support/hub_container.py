"""The hub as one container (`docker run ... mlhub/mlhub`, the README's one-container
install) against the host's real engine, for tests."""

from __future__ import annotations

import secrets
import time

import docker
import requests
import urllib3

from devtools.hubprocess import address, free_port, new_hub_name, remove_test_objects
from tests.support.web import login, signup

HUB_IMAGE = "mlhub/mlhub:latest"
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


class HubContainer:
    """One `docker run -d -p PORT:8080 -p SSH:2222 -v docker.sock -v DATA:/data mlhub/mlhub`."""

    def __init__(
        self,
        client: docker.DockerClient,
        env: dict[str, str] | None = None,
        scheme: str = "http",
        port: int | None = None,
    ):
        """*port*: the host port to publish 8080 on (a free one by default; given when the URL
        must be known before the hub starts, e.g. to register its OAuth callback)."""
        self.client = client
        self.hub_name = (env or {}).get("HUB_NAME") or new_hub_name()
        self.port = port or free_port()
        self.ssh_port = free_port()
        self.url = f"{scheme}://localhost:{self.port}"
        self.data = client.volumes.create(f"{self.hub_name}-data", labels={"mlhub.origin": self.hub_name})
        self.container = client.containers.run(
            HUB_IMAGE,
            name=f"{self.hub_name}-starting-{secrets.token_hex(2)}",
            environment={"HUB_NAME": self.hub_name, "MLHUB_PUBLIC_URL": self.url, **(env or {})},
            ports={"8080/tcp": ("127.0.0.1", self.port), "2222/tcp": ("127.0.0.1", self.ssh_port)},
            volumes={
                "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                self.data.name: {"bind": "/data", "mode": "rw"},
            },
            labels={"mlhub.origin": self.hub_name},
            detach=True,
        )
        self.wait_up()

    def wait_up(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.container.reload()
            if self.container.status == "exited":
                raise AssertionError(f"hub container exited:\n{self.logs()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2, verify=False).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError(f"hub container did not answer:\n{self.logs()}")

    def at(self, path: str) -> str:
        return address(self.url, path)

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")[-4000:]

    def read(self, path: str) -> str:
        return self.container.exec_run(["cat", path]).output.decode().strip()

    def login(self, username: str, password: str) -> requests.Session:
        return login(self.url, username, password, verify=False)

    def signup(self, username: str, password: str) -> None:
        assert signup(self.url, username, password, verify=False).status_code == 200

    def remove(self) -> None:
        self.container.remove(force=True)
        remove_test_objects(self.client, self.hub_name)
