"""The cleanup service's web app: admin-only endpoints under /services/cleanup-service/."""

from __future__ import annotations

import time
from typing import Any

from jupyterhub.services.auth import UserNotAllowed
from jupyterhub.utils import url_path_join
from tornado import web

from mlhub.services.base import ServiceHandler, make_service_app
from mlhub.services.cleanup.page import report_page
from mlhub.services.cleanup.runner import Cleaner, RunInProgress


class AdminHandler(ServiceHandler):
    """Admins only: hub OAuth for browsers, API tokens (with access to this service) for scripts."""

    login_needed = "admin rights on this hub are needed"

    def initialize(self, cleaner: Cleaner, schedule: dict[str, Any]) -> None:
        self.cleaner = cleaner
        self.schedule = schedule

    def check_hub_user(self, model: dict[str, Any]) -> dict[str, Any]:
        model = super().check_hub_user(model)
        if model.get("kind") != "user" or not model.get("admin"):
            raise UserNotAllowed(model)
        return model


class RunHandler(AdminHandler):
    """/users and /expired: run that cleanup now (``?dry_run=1``: only report).

    Scripts (an admin's API token) run it with GET, as ML Hub's did, or POST. A browser (the
    service's OAuth cookie) only previews on GET, so a link or an image on another page can
    never start a run; the preview's button POSTs with ``_xsrf`` to run it. The XSRF check is
    JupyterHub's (HubOAuth): a cookie-authenticated POST without the right ``_xsrf``, or a
    cross-site request, is not logged in, so ``prepare`` answers 403.
    """

    @web.authenticated
    async def get(self, kind: str) -> None:
        by_token = getattr(self, "_token_authenticated", False)
        await self._run(kind, dry_run=self._dry_run_asked() or not by_token)

    @web.authenticated
    async def post(self, kind: str) -> None:
        await self._run(kind, dry_run=self._dry_run_asked())

    def _dry_run_asked(self) -> bool:
        return self.get_argument("dry_run", "0").lower() in ("1", "true", "yes")

    async def _run(self, kind: str, dry_run: bool) -> None:
        try:
            report = await self.cleaner.run(kind, dry_run=dry_run)
        except RunInProgress as exc:
            raise web.HTTPError(409, str(exc)) from None
        result = {**report.to_json(), "requested_by": self.current_user["name"]}
        if dry_run and not getattr(self, "_token_authenticated", False):
            result["note"] = "a browser's GET only previews; POST with _xsrf (the page's button) runs it"
        if "text/html" in self.request.headers.get("Accept", ""):
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(report_page(result, self.xsrf_token.decode("ascii")))
            return
        self.write_json(result)


class StatusHandler(AdminHandler):
    """GET / and /status: what the last runs did, and when the next one is due."""

    @web.authenticated
    async def get(self) -> None:
        interval = self.schedule["interval"]
        self.write_json(
            {
                "hub_name": self.cleaner.hub_name,
                "interval_seconds": interval,
                "running": self.cleaner.running,
                "next_run_at": self.schedule.get("next_run_at") if interval > 0 else None,
                "now": time.time(),
                "last_runs": {kind: report.to_json() for kind, report in self.cleaner.last.items()},
            }
        )


def make_app(
    prefix: str, cleaner: Cleaner, schedule: dict[str, Any], cookie_secret: bytes | None = None
) -> web.Application:
    args = {"cleaner": cleaner, "schedule": schedule}
    return make_service_app(
        prefix,
        [
            (url_path_join(prefix, r"(users|expired)/?"), RunHandler, args),
            (url_path_join(prefix, "status/?"), StatusHandler, args),
            (prefix.rstrip("/") + "/?", StatusHandler, args),
        ],
        cookie_secret,
    )
