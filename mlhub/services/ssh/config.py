"""The gateway's settings: a view of the settings table (mlhub/core/settings.py) for the
variables the hub passes it, plus JupyterHub's service variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mlhub.core.settings import HubSettings, SettingsError, activity_interval, ssh_public_port
from mlhub.services.environment import ServiceConfig, common_config, read_service

#: The gateway's environment is invalid (kept for callers of the old name).
ConfigError = SettingsError


@dataclass(frozen=True)
class GatewayConfig(ServiceConfig):
    ssh_ip: str = ""
    ssh_port: int = 2222
    public_host: str = ""
    public_url: str = ""
    data_dir: str = ""
    keys_db_url: str = ""
    token_auth: bool = True
    activity_interval: int = 300
    #: the port users type (the hub's public port when SSH shares it; else ssh_port)
    public_port: int = 0
    service_name: str = "ssh"

    @property
    def host_key_path(self) -> str:
        return os.path.join(self.data_dir, "ssh_host_ed25519_key")


def _check_data_dir(settings: HubSettings, errors: dict[str, str]) -> None:
    if "MLHUB_DATA_DIR" not in errors and not os.path.isdir(settings.data_dir):
        errors["MLHUB_DATA_DIR"] = (
            f"must name an existing directory for the host key and key database (got {settings.data_dir!r})"
        )


def read_config(environ: Mapping[str, str]) -> GatewayConfig:
    settings, service = read_service(environ, "ssh", "/services/ssh/", _check_data_dir)
    return GatewayConfig(
        **common_config(settings, service),
        ssh_ip=settings.ip,
        ssh_port=settings.ssh_port,
        public_host=settings.ssh_public_host,
        public_url=settings.public_url,
        data_dir=settings.data_dir,
        keys_db_url=settings.ssh_keys_db_url
        or "sqlite:///" + os.path.join(settings.data_dir, "ssh-keys.sqlite"),
        token_auth=settings.ssh_token_auth,
        # an open SSH session is activity: reported as often as workspaces report theirs
        activity_interval=activity_interval(settings.cull_idle_seconds),
        public_port=ssh_public_port(settings),
        service_name=environ.get("JUPYTERHUB_SERVICE_NAME") or "ssh",
    )
