"""MLHub's Prometheus series, next to JupyterHub's on ``/hub/metrics`` (same default registry).

- ``mlhub_spawn_step_seconds{step}`` / ``mlhub_stop_step_seconds{step}``: histograms of each
  step of a start and a stop (benchmarks/steps.py reads these names; keep them).
- ``mlhub_workspaces{state,image}``: computed at scrape time from the hub's in-memory
  spawners (:func:`install_workspace_collector`), so nothing has to keep it up to date.
- the services' series (cleanup removals, expiries, SSH sessions and bytes), fetched from
  them at scrape time (``mlhub.hub.service_metrics``).

docs/metrics.md lists every series; docs/decisions/metrics.md says why this shape.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

#: from a few ms (options) to a slow image pull or a server that needs a minute
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)

SPAWN_STEP_SECONDS = Histogram(
    "mlhub_spawn_step_seconds",
    "Seconds each step of a successful workspace start took (options, image, network, volume, "
    "create, start, first_answer on Docker; options, start on Kubernetes)",
    ["step"],
    buckets=STEP_BUCKETS,
)
STOP_STEP_SECONDS = Histogram(
    "mlhub_stop_step_seconds",
    "Seconds each step of a workspace stop (stop, remove) and of its deletion (volume, network) took",
    ["step"],
    buckets=STEP_BUCKETS,
)

STATES = ("running", "pending", "stopped")


def observe_steps(histogram: Histogram, durations: Mapping[str, float]) -> None:
    for step, seconds in durations.items():
        histogram.labels(step=step).observe(seconds)


def workspace_state(spawner: Any) -> str:
    """running | pending (starting or stopping) | stopped, from JupyterHub's own flags."""
    if getattr(spawner, "pending", None):
        return "pending"
    if getattr(spawner, "ready", False):
        return "running"
    return "stopped"


def workspace_image(spawner: Any) -> str:
    options = getattr(spawner, "mlhub_options", None)
    image = getattr(options, "image", "") or (getattr(spawner, "user_options", None) or {}).get("image", "")
    return str(image or "")


def _hub_workspaces() -> Iterable[tuple[str, str]]:
    """(state, image) of every server row of the running hub: its in-memory spawner when
    loaded, else the row (a server address = running). Nothing before the hub is up."""
    from jupyterhub import orm
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return []
    app = JupyterHub.instance()
    db = getattr(app, "db", None)
    if db is None:
        return []
    out = []
    for row in db.query(orm.Spawner).all():
        user = app.users.get(row.user_id)
        spawner = user.spawners.get(row.name) if user is not None else None
        if spawner is not None:
            state = workspace_state(spawner)
            out.append((state, workspace_image(spawner) if state != "stopped" else ""))
        else:
            out.append(("running" if row.server_id else "stopped", ""))
    return out


class WorkspaceCollector(Collector):
    """``mlhub_workspaces{state,image}`` counted at scrape time (one DB query, no engine call)."""

    def __init__(self, workspaces: Callable[[], Iterable[tuple[str, str]]] = _hub_workspaces) -> None:
        self._workspaces = workspaces

    def describe(self) -> Iterable[Metric]:
        return []  # nothing is computed when the collector is registered

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mlhub_workspaces",
            "Workspaces (servers) known to the hub, by state and image",
            labels=["state", "image"],
        )
        tally: Tally[tuple[str, str]] = Tally()
        for state, image in self._workspaces():
            tally[(state, image)] += 1
        for state in STATES:  # every state is a series, also at zero
            if not any(s == state for s, _ in tally):
                tally[(state, "")] += 0
        for (state, image), n in sorted(tally.items()):
            family.add_metric([state, image], n)
        yield family


def _register_once() -> None:
    try:
        REGISTRY.register(WorkspaceCollector())
    except ValueError:  # already registered in this process
        pass


_register_once()

# the services' series, re-exposed next to these
from mlhub.hub import service_metrics as _service_metrics  # noqa: E402,F401
