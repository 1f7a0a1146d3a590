"""The services' own Prometheus series, served at ``<service prefix>/metrics`` to the hub only.

The cleanup service and the SSH gateway are separate processes; the hub fetches this page
(with the service's own API token, which the hub made) and shows the series on its
``/hub/metrics`` (``mlhub.hub.service_metrics``). docs/decisions/metrics.md.
"""

from __future__ import annotations

import hmac
import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest
from tornado import web

# cleanup service
CLEANUP_REMOVALS = Counter(
    "mlhub_cleanup_removals",
    "Objects the cleanup service removed, by run (users: orphans, expired) and object kind",
    ["run", "object"],
)
EXPIRIES = Counter(
    "mlhub_workspace_expiries",
    "Workspaces (servers) deleted because their lifetime (days_to_live) ran out",
)
# SSH gateway
SSH_SESSIONS = Counter(
    "mlhub_ssh_sessions",
    "SSH channels opened to workspaces: shell, exec, sftp, or tcp (ssh -L)",
    ["kind"],
)
SSH_OPEN = Gauge("mlhub_ssh_sessions_open", "SSH channels to workspaces open now")
SSH_BYTES = Counter(
    "mlhub_ssh_bytes",
    "Bytes through the SSH gateway: in = from clients to workspaces, out = back",
    ["direction"],
)


class MetricsHandler(web.RequestHandler):
    """Prometheus text, only for the bearer of this service's API token (i.e. the hub)."""

    def get(self) -> None:
        expected = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        given = self.request.headers.get("Authorization", "")
        if not expected or not hmac.compare_digest(given.encode(), f"token {expected}".encode()):
            raise web.HTTPError(403, "metrics: only the hub may read them")
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))
