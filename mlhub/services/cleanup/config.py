"""The cleanup service's settings: a view of the settings table (mlhub/core/settings.py) for
the variables the hub passes it, plus JupyterHub's service variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlhub.core.settings import SettingsError, read_service_settings
from mlhub.services.jupyterhub_env import ServiceEnv, read_service_env

#: The cleanup service's environment is invalid (kept for callers of the old name).
ConfigError = SettingsError


@dataclass(frozen=True)
class CleanupConfig:
    hub_name: str
    interval: int
    api_url: str
    api_token: str
    service_url: str
    prefix: str
    mode: str
    namespace: str
    install_id: str = ""
    deleted_user_volumes: str = "remove"


def read_config(environ: Mapping[str, str]) -> CleanupConfig:
    errors: dict[str, str] = {}
    try:
        settings = read_service_settings(environ, "cleanup")
    except SettingsError as exc:
        errors.update(exc.errors)
    service: ServiceEnv | None = read_service_env(environ, "/services/cleanup-service/", errors)
    if errors or service is None:
        raise ConfigError(errors)
    return CleanupConfig(
        hub_name=settings.hub_name,
        interval=settings.cleanup_interval,
        api_url=service.api_url,
        api_token=service.api_token,
        service_url=service.service_url,
        prefix=service.prefix,
        mode=settings.execution_mode,
        # the hub passes MLHUB_NAMESPACE when it has one; in a pod, POD_NAMESPACE
        namespace=settings.namespace or environ.get("POD_NAMESPACE") or "default",
        install_id=settings.install_id,
        deleted_user_volumes=settings.deleted_user_volumes,
    )
