"""What the engine holds for a test hub's users, and ways to reach it."""

from __future__ import annotations

import docker
import requests

from mlhub.core.names import user_network_name, workspace_name


def containers_of(
    client: docker.DockerClient, hub_name: str, user: str, server: str | None = None, all: bool = True
):
    labels = [f"mlhub.origin={hub_name}", f"mlhub.user={user}"]
    if server is not None:
        labels.append(f"mlhub.server_name={server}")
    return client.containers.list(all=all, filters={"label": labels})


def objects_of(client: docker.DockerClient, hub_name: str, user: str) -> dict[str, list[str]]:
    """Everything the engine holds for one user of one hub, by label and by name."""
    label = {"label": [f"mlhub.origin={hub_name}", f"mlhub.user={user}"]}
    net_name = user_network_name(hub_name, user)
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)]
        + [n.name for n in client.networks.list(names=[net_name])],
        "volumes": [v.name for v in client.volumes.list(filters=label)],
        "named": [
            c.name
            for c in client.containers.list(all=True, filters={"name": workspace_name(hub_name, user, "")})
        ],
    }


def through_proxy(hub, user: str, server: str, token: str, path: str = "api/status") -> requests.Response:
    prefix = f"/user/{user}/{server}/" if server else f"/user/{user}/"
    return requests.get(hub.at(f"{prefix}{path}"), headers={"Authorization": f"token {token}"}, timeout=30)


def exists(client: docker.DockerClient, kind: str, name: str) -> bool:
    try:
        {"network": client.networks.get, "volume": client.volumes.get, "container": client.containers.get}[
            kind
        ](name)
        return True
    except docker.errors.NotFound:
        return False


PROBE = "import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\nexcept OSError:\n    sys.exit(1)\n"


def can_connect(container, host: str, port: int) -> bool:
    return container.exec_run(["python3", "-c", PROBE, host, str(port)]).exit_code == 0


def cleanup(hub, path: str, token: str | None = None, **params) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(
        f"{hub.url}/services/cleanup-service/{path}",
        headers=headers,
        params=params,
        timeout=120,
        allow_redirects=False,
    )
