"""Run the cleanup service (started by the hub as a managed JupyterHub service).

Environment: JupyterHub's (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_URL,
JUPYTERHUB_SERVICE_PREFIX) and the settings table's variables whose receivers include
``cleanup`` (mlhub/core/settings.py; the README lists them): HUB_NAME, CLEANUP_INTERVAL_SECONDS,
EXECUTION_MODE, MLHUB_NAMESPACE (default POD_NAMESPACE), MLHUB_INSTALL_ID,
MLHUB_DELETED_USER_VOLUMES. It exits when its hub is gone (mlhub/core/lifetime.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from mlhub.core.background import background
from mlhub.engines.base import Engine
from mlhub.services.base import listen, read_or_exit, setup_logging, watch_hub
from mlhub.services.cleanup.config import CleanupConfig, read_config
from mlhub.services.cleanup.hub_api import HubAPI
from mlhub.services.cleanup.runner import Cleaner, RunInProgress

log = logging.getLogger("mlhub.services.cleanup")


async def periodic(cleaner: Cleaner, schedule: dict) -> None:
    interval = schedule["interval"]
    while True:
        schedule["next_run_at"] = time.time() + interval
        await asyncio.sleep(interval)
        for kind in ("expired", "users"):
            try:
                await cleaner.run(kind)
            except RunInProgress:
                log.info("Periodic %s cleanup skipped: a run is in progress", kind)
            except Exception:
                log.exception("Periodic %s cleanup failed; the next run retries", kind)


async def make_backend(config: CleanupConfig) -> Engine:
    """The engine adapter (mlhub/engines) for the hub's execution mode."""
    if config.mode == "k8s":
        from mlhub.engines.kube import KubeEngine, load_config

        await load_config(kubeconfig_fallback=False)
        return KubeEngine(config.namespace)
    from mlhub.engines.docker import DockerEngine

    return DockerEngine()


async def main() -> None:
    setup_logging("cleanup-service")
    config = read_or_exit(lambda: read_config(os.environ), "cleanup-service")
    backend = await make_backend(config)
    cleaner = Cleaner(
        config.hub_name,
        HubAPI(config.api_url, config.api_token),
        backend,
        install_id=config.install_id,
        deleted_user_volumes=config.deleted_user_volumes,
    )
    schedule = {"interval": config.interval, "next_run_at": None}
    from mlhub.services.cleanup.app import make_app

    listen(make_app(config.prefix, cleaner, schedule), config.service_url)
    log.info(
        "Cleanup service for hub %s (install %s, deleted accounts' volumes: %s) on %s (periodic: %s)",
        config.hub_name,
        config.install_id or "none",
        config.deleted_user_volumes,
        config.service_url,
        f"every {config.interval} s" if config.interval > 0 else "off",
    )
    if config.interval > 0:
        background(periodic(cleaner, schedule))
    await watch_hub("cleanup-service")


if __name__ == "__main__":
    asyncio.run(main())
