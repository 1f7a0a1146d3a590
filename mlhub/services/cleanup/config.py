"""The cleanup service's settings: a view of the settings table (mlhub/core/settings.py) for
the variables the hub passes it, plus JupyterHub's service variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlhub.core.settings import SettingsError
from mlhub.services.environment import ServiceConfig, common_config, read_service

#: The cleanup service's environment is invalid (kept for callers of the old name).
ConfigError = SettingsError


@dataclass(frozen=True)
class CleanupConfig(ServiceConfig):
    interval: int = 3600
    install_id: str = ""
    deleted_user_volumes: str = "remove"


def read_config(environ: Mapping[str, str]) -> CleanupConfig:
    settings, service = read_service(environ, "cleanup", "/services/cleanup-service/")
    return CleanupConfig(
        # the hub passes MLHUB_NAMESPACE when it has one; in a pod, POD_NAMESPACE
        **common_config(settings, service, namespace=settings.namespace or environ.get("POD_NAMESPACE", "")),
        interval=settings.cleanup_interval,
        install_id=settings.install_id,
        deleted_user_volumes=settings.deleted_user_volumes,
    )
