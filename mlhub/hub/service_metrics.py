"""The services' MLHub series (cleanup removals, expiries, SSH sessions and bytes) on the
hub's ``/hub/metrics``.

The services are separate processes, each serving Prometheus text at ``<prefix>/metrics`` to
the bearer of its own API token (``mlhub.services.metrics``). JupyterHub renders
``/hub/metrics`` synchronously on its event loop, so a scrape never waits for a service: it
shows what the services said at most :data:`MAX_AGE` seconds ago and starts a refresh in the
background (1 s timeout per service). Only ``mlhub_*`` families are passed on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger("JupyterHub")

MAX_AGE = 5.0
TIMEOUT = 1.0


def _services() -> list[Any]:
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return []
    app = JupyterHub.instance()
    return [s for s in getattr(app, "_service_map", {}).values() if s.url and s.api_token]


def parse_families(text: str) -> list[Metric]:
    """The ``mlhub_*`` metric families of a service's Prometheus text."""
    return [
        f
        for f in text_string_to_metric_families(text)
        if f.name.startswith("mlhub_") and not f.name.endswith("_created")  # creation times: noise
    ]


class ServiceMetrics(Collector):
    def __init__(self) -> None:
        self._families: dict[str, list[Metric]] = {}
        self._fetched_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # nothing is computed when the collector is registered

    def collect(self) -> Iterable[Metric]:
        self._refresh_soon()
        seen: set[str] = set()  # a family twice would make the page invalid: first wins
        for families in list(self._families.values()):
            for family in families:
                if family.name not in seen:
                    seen.add(family.name)
                    yield family

    def _refresh_soon(self) -> None:
        if time.monotonic() - self._fetched_at < MAX_AGE or (self._task and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the hub's loop (e.g. registering): nothing to do
            return
        self._task = loop.create_task(self.refresh())

    async def refresh(self) -> None:
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        self._fetched_at = time.monotonic()
        client = AsyncHTTPClient()
        for service in _services():
            url = service.url.rstrip("/") + service.prefix.rstrip("/") + "/metrics"
            try:
                r = await client.fetch(
                    url, headers={"Authorization": f"token {service.api_token}"}, request_timeout=TIMEOUT
                )
                self._families[service.name] = parse_families(r.body.decode())
            except (HTTPClientError, OSError, ValueError) as exc:
                # a service without metrics (the idle culler, an admin's own) or not answering
                code = getattr(exc, "code", None)
                if code != 404:
                    log.debug("No metrics from service %s: %s", service.name, exc)
                self._families.pop(service.name, None)


def _register_once() -> None:
    try:
        REGISTRY.register(ServiceMetrics())
    except ValueError:
        pass


_register_once()
