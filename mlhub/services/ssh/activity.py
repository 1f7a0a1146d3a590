"""Open SSH sessions count as activity of their workspace.

The gateway runs shells, commands, sftp and tunnels in the workspace through the engine's
exec API; jupyter-server inside never sees them, so without this the idle culler would stop a
workspace in the middle of an SSH session. While at least one session (shell, command, sftp,
``-L`` tunnel) to a workspace is open, :class:`ActivityReporter` tells the hub so
(``POST /hub/api/users/<name>/activity``, scope ``users:activity``): when the session opens,
every *interval* seconds while it stays open, and once more when the last one closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import quote

from mlhub.core.background import background
from mlhub.services.hub_client import HubAPIError, HubClient
from mlhub.services.ssh.targets import Target

log = logging.getLogger("mlhub.services.ssh")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class ActivityReporter:
    """Counts open sessions per workspace and reports the open ones to the hub."""

    def __init__(self, hub: HubClient, interval: float):
        self.hub = hub
        self.interval = interval
        self.open: Counter[Target] = Counter()
        self._task: asyncio.Task | None = None

    def session(self, target: Target) -> SessionActivity:
        """A handle for one session: call ``opened()`` once it runs, ``closed()`` when it ends."""
        return SessionActivity(self, target)

    def _opened(self, target: Target) -> None:
        self.open[target] += 1
        if self.open[target] == 1:
            self._report_soon([target])
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def _closed(self, target: Target) -> None:
        self.open[target] -= 1
        if self.open[target] <= 0:
            del self.open[target]
            self._report_soon([target])  # the session's end is its last activity

    def _report_soon(self, targets: list[Target]) -> None:
        background(self.report(targets))

    async def _run(self) -> None:
        while self.open:
            await asyncio.sleep(self.interval)
            await self.report(list(self.open))

    async def report(self, targets: list[Target]) -> None:
        """One request per user, naming each of their servers with an open session."""
        now = _now()
        by_user: dict[str, set[str]] = {}
        for target in targets:
            by_user.setdefault(target.user, set()).add(target.server)
        for user, servers in by_user.items():
            body = {
                "last_activity": now,
                "servers": {name: {"last_activity": now} for name in sorted(servers)},
            }
            try:
                await self.hub.request("POST", f"/users/{quote(user, safe='')}/activity", body)
            except (HubAPIError, ValueError) as exc:  # e.g. the server was deleted meanwhile
                log.warning(
                    "Could not report SSH activity of %s's servers %s to the hub: %s",
                    user,
                    sorted(servers),
                    exc,
                )
            else:
                log.debug("Reported SSH activity of %s's servers %s", user, sorted(servers))


class SessionActivity:
    """One session's part in :class:`ActivityReporter` (each call counts once)."""

    def __init__(self, reporter: ActivityReporter, target: Target):
        self.reporter = reporter
        self.target = target
        self.state = "new"

    def opened(self) -> None:
        if self.state == "new":
            self.state = "open"
            self.reporter._opened(self.target)

    def closed(self) -> None:
        if self.state == "open":
            self.reporter._closed(self.target)
        self.state = "closed"
