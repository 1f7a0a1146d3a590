"""What MLHub's two services (cleanup, SSH gateway) share: their web side's base handler and
app, their start (logging, settings, listening) and their end when their hub is gone.

The hub starts each service as a managed subprocess. A service whose hub died without stopping
it (``kill -9``, a crash) exits on its own (:func:`mlhub.core.lifetime.watch_hub`), so a hub started again gets
the service ports instead of "Address already in use" (docs/decisions/services-base.md).
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web

from mlhub.core.errors import MultilineFieldErrors
from mlhub.core.lifetime import watch_hub
from mlhub.services.hub_client import listen_address

__all__ = ["ServiceHandler", "listen", "make_service_app", "read_or_exit", "setup_logging", "watch_hub"]


class JSONErrors(web.RequestHandler):
    """Errors answered as JSON ``{"status", "message"}``, the message an HTTPError's log message."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": reason}))


class ServiceHandler(HubOAuthenticated, JSONErrors):
    """A service page or API: hub OAuth for browsers, hub API tokens for scripts; errors as JSON.

    Subclasses set :attr:`login_needed` (the 403 message) and whether any logged-in hub identity
    will do or only users (:attr:`users_only`).
    """

    login_needed = "log in to the hub"
    users_only = False
    #: Browsers are sent to the hub's login page on GET only (else on any method).
    redirect_on_get_only = False

    def logged_in(self) -> bool:
        user = self.current_user
        return user is not None and (not self.users_only or user.get("kind") == "user")

    def prepare(self) -> None:
        if not self.logged_in():
            wants_html = "text/html" in self.request.headers.get("Accept", "")
            if wants_html and (self.request.method == "GET" or not self.redirect_on_get_only):
                self.redirect(self.get_login_url())
                return
            raise web.HTTPError(403, self.login_needed)

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, indent=1))


def make_service_app(
    prefix: str, routes: Sequence[tuple[Any, ...]], cookie_secret: bytes | None = None
) -> web.Application:
    """A service's tornado app: the hub OAuth callback and the metrics for the hub under
    *prefix*, then *routes*."""
    from mlhub.services.metrics import MetricsHandler

    return web.Application(
        [
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            (url_path_join(prefix, "metrics"), MetricsHandler),
            *routes,
        ],
        cookie_secret=cookie_secret or secrets.token_bytes(32),
    )


def setup_logging(tag: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"[%(levelname).1s %(asctime)s {tag}] %(message)s")


def read_or_exit(read: Callable[[], Any], who: str) -> Any:
    """The service's settings, or exit naming every bad variable."""
    try:
        return read()
    except MultilineFieldErrors as exc:
        sys.exit(f"{who} cannot start:\n{exc}")


def listen(app: web.Application, service_url: str) -> None:
    """Listen where the hub said the service is (JUPYTERHUB_SERVICE_URL)."""
    url = urlparse(service_url)
    app.listen(url.port or 80, listen_address(url.hostname))
