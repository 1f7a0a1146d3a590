"""Run the cleanup service (started by the hub as a managed JupyterHub service).

Environment (set by the hub; see the README): JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN,
JUPYTERHUB_SERVICE_URL, JUPYTERHUB_SERVICE_PREFIX (from JupyterHub), HUB_NAME,
CLEANUP_INTERVAL_SECONDS (default 3600, -1: no periodic runs), MLHUB_EXECUTION_MODE (docker).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import time
from urllib.parse import urlparse

from .config import ConfigError, read_config
from .hub_api import HubAPI
from .runner import Cleaner, RunInProgress

log = logging.getLogger("cleanup_service")


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


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s cleanup-service] %(message)s")
    try:
        config = read_config(os.environ)
    except ConfigError as exc:
        sys.exit(f"cleanup-service cannot start:\n{exc}")
    from .docker_backend import DockerBackend

    backend = DockerBackend()
    cleaner = Cleaner(config.hub_name, HubAPI(config.api_url, config.api_token), backend)
    schedule = {"interval": config.interval, "next_run_at": None}
    from .app import make_app

    app = make_app(config.prefix, cleaner, schedule, secrets.token_bytes(32))
    url = urlparse(config.service_url)
    app.listen(url.port or 80, url.hostname)
    log.info(
        "Cleanup service for hub %s on %s (periodic: %s)",
        config.hub_name,
        config.service_url,
        f"every {config.interval} s" if config.interval > 0 else "off",
    )
    if config.interval > 0:
        asyncio.ensure_future(periodic(cleaner, schedule))
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
