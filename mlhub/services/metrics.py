"""The services' own Prometheus series, served at ``<service prefix>/metrics`` to the hub only.

The cleanup service (``mlhub_cleanup_removals``, ``mlhub_workspace_expiries``: in
``cleanup/runner.py``) and the SSH gateway (``mlhub_ssh_*``: in ``ssh/session.py``) are
separate processes, each with only its own series; the hub fetches this page
(with the service's own API token, which the hub made) and shows the series on its
``/hub/metrics`` (``mlhub.hub.service_metrics``). docs/decisions/metrics.md.
"""

from __future__ import annotations

import hmac
import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from tornado import web


class MetricsHandler(web.RequestHandler):
    """Prometheus text, only for the bearer of this service's API token (i.e. the hub)."""

    def get(self) -> None:
        expected = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        given = self.request.headers.get("Authorization", "")
        if not expected or not hmac.compare_digest(given.encode(), f"token {expected}".encode()):
            raise web.HTTPError(403, "metrics: only the hub may read them")
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))
