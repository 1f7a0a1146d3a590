"""The variables JupyterHub sets for a managed service (not MLHub's: not in the settings table)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
