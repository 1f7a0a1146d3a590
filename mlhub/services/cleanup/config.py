"""The cleanup service's environment, read and validated once at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlhub.core.errors import MultilineFieldErrors
from mlhub.core.names import is_valid_hub_name, is_valid_install_id
from mlhub.core.ownership import DELETED_USER_VOLUMES


class ConfigError(MultilineFieldErrors):
    """The cleanup service's environment is invalid."""


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
    hub_name = environ.get("HUB_NAME", "mlhub") or "mlhub"
    if not is_valid_hub_name(hub_name):
        errors["HUB_NAME"] = "must be 1-12 lowercase letters, digits or '-'"
    raw_interval = environ.get("CLEANUP_INTERVAL_SECONDS", "3600") or "3600"
    try:
        interval = int(raw_interval)
        if interval == 0 or interval < -1:
            raise ValueError
    except ValueError:
        errors["CLEANUP_INTERVAL_SECONDS"] = (
            f"must be a whole number of seconds > 0, or -1 for off (got {raw_interval!r})"
        )
        interval = -1
    mode = environ.get("MLHUB_EXECUTION_MODE", "docker") or "docker"
    if mode not in ("docker", "k8s"):
        errors["MLHUB_EXECUTION_MODE"] = f"must be docker or k8s (got {mode!r})"
    namespace = environ.get("MLHUB_NAMESPACE") or environ.get("POD_NAMESPACE") or "default"
    install_id = environ.get("MLHUB_INSTALL_ID", "")
    if install_id and not is_valid_install_id(install_id):
        errors["MLHUB_INSTALL_ID"] = f"must be 8-40 lowercase letters or digits (got {install_id[:60]!r})"
    deleted_user_volumes = environ.get("MLHUB_DELETED_USER_VOLUMES", "remove") or "remove"
    if deleted_user_volumes not in DELETED_USER_VOLUMES:
        errors["MLHUB_DELETED_USER_VOLUMES"] = (
            f"must be {' or '.join(DELETED_USER_VOLUMES)} (got {deleted_user_volumes[:60]!r})"
        )
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_URL"):
        if not environ.get(name):
            errors[name] = "must be set (the hub sets it when it starts the service)"
    if errors:
        raise ConfigError(errors)
    return CleanupConfig(
        hub_name=hub_name,
        interval=interval,
        api_url=environ["JUPYTERHUB_API_URL"],
        api_token=environ["JUPYTERHUB_API_TOKEN"],
        service_url=environ["JUPYTERHUB_SERVICE_URL"],
        prefix=environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/cleanup-service/"),
        mode=mode,
        namespace=namespace,
        install_id=install_id,
        deleted_user_volumes=deleted_user_volumes,
    )
