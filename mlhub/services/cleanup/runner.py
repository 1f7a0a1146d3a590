"""Carries out cleanup runs: gather facts, plan (pure), act, report; one run at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Counter

from mlhub.services.cleanup import planner
from mlhub.services.cleanup.hub_api import HubAPI, HubAPIError
from mlhub.services.cleanup.model import Action, Plan, Resource

# on the hub's /hub/metrics through mlhub.services.metrics (docs/metrics.md)
CLEANUP_REMOVALS = Counter(
    "mlhub_cleanup_removals",
    "Objects the cleanup service removed, by run (users: orphans, expired) and object kind",
    ["run", "object"],
)
EXPIRIES = Counter(
    "mlhub_workspace_expiries",
    "Workspaces (servers) deleted because their lifetime (days_to_live) ran out",
)


log = logging.getLogger("mlhub.services.cleanup")

#: A running container whose server the hub calls stopped is a leftover only if it was created
#: this long before the hub was asked (clock skew between the engine and this service, and a
#: spawn that began while the run gathered its facts, are never mistaken for one).
STALE_MARGIN = 30.0
#: Objects are removed one at a time. Eight at once was no faster (10,000 objects, 5,000 of
#: them orphaned: 79.7 s against 75.6 s one at a time; the engine removes networks one after
#: another, about 0.13 s each, and they are most of the time), and it slowed spawns during the
#: run by 29 % against 18 % (benchmark runs of 2026-12-01, docs/decisions/cleanup-pace.md).


class Backend(Protocol):
    async def list_resources(self, hub_name: str) -> list[Resource]: ...

    async def remove(self, resource: Resource) -> None: ...


class RunInProgress(RuntimeError):
    """Another cleanup run is under way; this one was refused, not queued."""


@dataclass
class RunReport:
    kind: str
    dry_run: bool
    started_at: float
    finished_at: float = 0.0
    removed: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "removed": self.removed,
            "kept": self.kept,
            "errors": self.errors,
            "ok": not self.errors,
        }


class Cleaner:
    """Runs ``users`` (orphans) and ``expired`` cleanups against one hub and one engine."""

    def __init__(
        self,
        hub_name: str,
        hub: HubAPI,
        backend: Backend,
        install_id: str = "",
        deleted_user_volumes: str = "remove",
    ):
        self.hub_name = hub_name
        self.hub = hub
        self.backend = backend
        self.install_id = install_id
        self.deleted_user_volumes = deleted_user_volumes
        self._lock = asyncio.Lock()
        self.last: dict[str, RunReport] = {}

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def run(self, kind: str, dry_run: bool = False) -> RunReport:
        if self._lock.locked():
            raise RunInProgress("a cleanup run is in progress; try again when it has finished")
        async with self._lock:
            report = RunReport(kind=kind, dry_run=dry_run, started_at=time.time())
            try:
                plan = await self._plan(kind, report.started_at)
            except (HubAPIError, OSError, RuntimeError) as exc:
                report.errors.append({"step": "gather", "error": str(exc)})
                plan = Plan()
            await self._act(plan, report, dry_run)
            report.finished_at = time.time()
            self.last[kind] = report
            log.info(
                "Cleanup %s%s for hub %s: removed %d, kept %d, errors %d",
                kind,
                " (dry run)" if dry_run else "",
                self.hub_name,
                len(report.removed),
                len(report.kept),
                len(report.errors),
            )
            return report

    async def _plan(self, kind: str, now: float) -> Plan:
        asked_at = time.time()
        users = await self.hub.users()
        servers = self.hub.servers_of(users)
        resources = await self.backend.list_resources(self.hub_name)
        if kind == "users":
            return planner.plan_orphans(
                self.hub_name,
                HubAPI.accounts_of(users),
                servers,
                resources,
                stale_before=asked_at - STALE_MARGIN,
                install_id=self.install_id,
                deleted_user_volumes=self.deleted_user_volumes,
            )
        if kind == "expired":
            return planner.plan_expired(self.hub_name, servers, resources, now, install_id=self.install_id)
        raise ValueError(f"unknown cleanup kind {kind!r}")

    async def _act(self, plan: Plan, report: RunReport, dry_run: bool) -> None:
        report.kept = [a.to_json() for a in plan.keep]
        for action in plan.remove_servers:
            if dry_run:
                report.removed.append(action.to_json())
                continue
            try:
                await self.hub.delete_server(action.user or "", action.server_name or "")
            except HubAPIError as exc:
                log.error("Could not delete server %s: %s", action.name, exc)
                report.errors.append({**action.to_json(), "error": str(exc)})
                continue
            log.info("Deleted server %s (%s)", action.name, action.reason)
            CLEANUP_REMOVALS.labels(run=report.kind, object="server").inc()
            if report.kind == "expired":
                EXPIRIES.inc()
            report.removed.append(action.to_json())
        # in the plan's order (containers, then volumes, then networks: planner._ordered)
        for resource, action in plan.remove_resources:
            entry, error = await self._remove(resource, action, report, dry_run)
            (report.errors if error else report.removed).append(entry)

    async def _remove(
        self, resource: Resource, action: Action, report: RunReport, dry_run: bool
    ) -> tuple[dict[str, Any], bool]:
        """Remove one object; returns its report entry and whether it failed."""
        if dry_run:
            return action.to_json(), False
        try:
            await self.backend.remove(resource)
        except (RuntimeError, OSError) as exc:
            # keep going: the next run retries what is left, nothing depends on order
            # except networks, which are removed last and retried next time
            log.error("Could not remove %s %s: %s", resource.kind, resource.name, exc)
            return {**action.to_json(), "error": str(exc)}, True
        log.info("Removed %s %s of %s (%s)", resource.kind, resource.name, action.user, action.reason)
        CLEANUP_REMOVALS.labels(run=report.kind, object=resource.kind).inc()
        return action.to_json(), False
