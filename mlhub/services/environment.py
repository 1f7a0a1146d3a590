"""A service's environment: the settings table's variables the hub passes it, and the variables
JupyterHub sets for a managed service (JupyterHub's, so not in the settings table)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlhub.core.settings import HubSettings, SettingsError, read_service_settings

REQUIRED = ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_URL")


@dataclass(frozen=True)
class ServiceEnv:
    api_url: str
    api_token: str
    service_url: str
    prefix: str


def read_service_env(
    environ: Mapping[str, str], default_prefix: str, errors: dict[str, str]
) -> ServiceEnv | None:
    """JupyterHub's variables, or None with *errors* naming each one missing."""
    missing = [name for name in REQUIRED if not environ.get(name)]
    for name in missing:
        errors[name] = "must be set (the hub sets it when it starts the service)"
    if missing:
        return None
    return ServiceEnv(
        api_url=environ["JUPYTERHUB_API_URL"],
        api_token=environ["JUPYTERHUB_API_TOKEN"],
        service_url=environ["JUPYTERHUB_SERVICE_URL"],
        prefix=environ.get("JUPYTERHUB_SERVICE_PREFIX", default_prefix),
    )


def read_service(
    environ: Mapping[str, str],
    service: str,
    default_prefix: str,
    check: Callable[[HubSettings, dict[str, str]], None] | None = None,
) -> tuple[HubSettings, ServiceEnv]:
    """Both parts of *service*'s environment, or :class:`SettingsError` naming every bad
    variable (*check* may add the service's own errors)."""
    errors: dict[str, str] = {}
    try:
        settings = read_service_settings(environ, service)
    except SettingsError as exc:
        errors.update(exc.errors)
        settings = HubSettings()
    if check is not None:
        check(settings, errors)
    env = read_service_env(environ, default_prefix, errors)
    if errors or env is None:
        raise SettingsError(errors)
    return settings, env


@dataclass(frozen=True)
class ServiceConfig:
    """What every service knows: its hub, the hub's API and its own place, the engine."""

    hub_name: str
    api_url: str
    api_token: str
    service_url: str
    prefix: str
    mode: str
    namespace: str


def common_config(settings: HubSettings, service: ServiceEnv, namespace: str = "") -> dict[str, Any]:
    """The :class:`ServiceConfig` fields from a service's two environments."""
    return {
        "hub_name": settings.hub_name,
        "api_url": service.api_url,
        "api_token": service.api_token,
        "service_url": service.service_url,
        "prefix": service.prefix,
        "mode": settings.execution_mode,
        "namespace": namespace or settings.namespace or "default",
    }
