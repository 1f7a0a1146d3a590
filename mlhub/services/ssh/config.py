"""The gateway's settings: a view of the settings table (mlhub/core/settings.py) for the
variables the hub passes it, plus JupyterHub's service variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mlhub.core.settings import SettingsError, activity_interval, read_service_settings
from mlhub.services.jupyterhub_env import read_service_env

#: The gateway's environment is invalid (kept for callers of the old name).
ConfigError = SettingsError


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

    @property
    def host_key_path(self) -> str:
        return os.path.join(self.data_dir, "ssh_host_ed25519_key")


def read_config(environ: Mapping[str, str]) -> GatewayConfig:
    errors: dict[str, str] = {}
    try:
        settings = read_service_settings(environ, "ssh")
    except SettingsError as exc:
        errors.update(exc.errors)
    data_dir = environ.get("MLHUB_DATA_DIR") or ""
    if "MLHUB_DATA_DIR" not in errors and not os.path.isdir(data_dir):
        errors["MLHUB_DATA_DIR"] = (
            f"must name an existing directory for the host key and key database (got {data_dir!r})"
        )
    service = read_service_env(environ, "/services/ssh/", errors)
    if errors or service is None:
        raise ConfigError(errors)
    return GatewayConfig(
        hub_name=settings.hub_name,
        ssh_ip=settings.ip,
        ssh_port=settings.ssh_port,
        public_host=settings.ssh_public_host,
        public_url=settings.public_url,
        data_dir=settings.data_dir,
        keys_db_url=settings.ssh_keys_db_url
        or "sqlite:///" + os.path.join(settings.data_dir, "ssh-keys.sqlite"),
        token_auth=settings.ssh_token_auth,
        api_url=service.api_url,
        api_token=service.api_token,
        service_url=service.service_url,
        prefix=service.prefix,
        mode=settings.execution_mode,
        namespace=settings.namespace or "default",
        # an open SSH session is activity: reported as often as workspaces report theirs
        activity_interval=activity_interval(settings.cull_idle_seconds),
    )
