"""The gateway's environment, read and validated once at start (the hub sets it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mlhub.core.errors import MultilineFieldErrors
from mlhub.core.names import is_valid_hub_name
from mlhub.core.parsing import parse_bool


class ConfigError(MultilineFieldErrors):
    """The gateway's environment is invalid."""


@dataclass(frozen=True)
class GatewayConfig:
    hub_name: str
    ssh_ip: str
    ssh_port: int
    public_host: str
    public_url: str
    data_dir: str
    keys_db_url: str
    token_auth: bool
    api_url: str
    api_token: str
    service_url: str
    prefix: str
    mode: str
    namespace: str
    activity_interval: int = 300
    #: the port users type (the hub's public port when SSH shares it; else ssh_port)
    public_port: int = 0
    service_name: str = "ssh"

    @property
    def host_key_path(self) -> str:
        return os.path.join(self.data_dir, "ssh_host_ed25519_key")


def _port(raw: str, name: str, errors: dict[str, str]) -> int:
    try:
        port = int(raw)
        if not 1 <= port <= 65535:
            raise ValueError
        return port
    except ValueError:
        errors[name] = f"must be a port number 1-65535 (got {raw!r})"
        return 0


def read_config(environ: Mapping[str, str]) -> GatewayConfig:
    errors: dict[str, str] = {}
    hub_name = environ.get("HUB_NAME") or "mlhub"
    if not is_valid_hub_name(hub_name):
        errors["HUB_NAME"] = "must be 1-12 lowercase letters, digits or '-'"
    ssh_port = _port(environ.get("MLHUB_SSH_PORT") or "2222", "MLHUB_SSH_PORT", errors)
    public_port = _port(
        environ.get("MLHUB_SSH_PUBLIC_PORT") or str(ssh_port or 2222), "MLHUB_SSH_PUBLIC_PORT", errors
    )
    try:
        token_auth = parse_bool(environ.get("MLHUB_SSH_TOKEN_AUTH") or "true")
    except ValueError as exc:
        errors["MLHUB_SSH_TOKEN_AUTH"] = str(exc)
        token_auth = False
    mode = environ.get("MLHUB_EXECUTION_MODE") or "docker"
    if mode not in ("docker", "k8s"):
        errors["MLHUB_EXECUTION_MODE"] = f"must be docker or k8s (got {mode!r})"
    try:
        activity_interval = int(environ.get("MLHUB_SSH_ACTIVITY_INTERVAL") or "300")
        if activity_interval < 1:
            raise ValueError
    except ValueError:
        errors["MLHUB_SSH_ACTIVITY_INTERVAL"] = (
            f"must be a whole number of seconds >= 1 (got {environ.get('MLHUB_SSH_ACTIVITY_INTERVAL')!r})"
        )
        activity_interval = 300
    data_dir = environ.get("MLHUB_DATA_DIR") or ""
    if not data_dir or not os.path.isdir(data_dir):
        errors["MLHUB_DATA_DIR"] = (
            f"must name an existing directory for the host key and key database (got {data_dir!r})"
        )
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_URL"):
        if not environ.get(name):
            errors[name] = "must be set (the hub sets it when it starts the service)"
    if errors:
        raise ConfigError(errors)
    return GatewayConfig(
        hub_name=hub_name,
        ssh_ip=environ.get("MLHUB_SSH_IP") or "",
        ssh_port=ssh_port,
        public_host=environ.get("MLHUB_SSH_PUBLIC_HOST") or "",
        public_url=(environ.get("MLHUB_PUBLIC_URL") or "").rstrip("/"),
        data_dir=data_dir,
        keys_db_url=environ.get("MLHUB_SSH_KEYS_DB_URL")
        or "sqlite:///" + os.path.join(data_dir, "ssh-keys.sqlite"),
        token_auth=token_auth,
        api_url=environ["JUPYTERHUB_API_URL"],
        api_token=environ["JUPYTERHUB_API_TOKEN"],
        service_url=environ["JUPYTERHUB_SERVICE_URL"],
        prefix=environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/ssh/"),
        mode=mode,
        namespace=environ.get("MLHUB_NAMESPACE") or "default",
        activity_interval=activity_interval,
        public_port=public_port,
        service_name=environ.get("JUPYTERHUB_SERVICE_NAME") or "ssh",
    )
