"""Where a spawn's time goes, read from a hub's ``/hub/metrics`` (Prometheus text format).

The contract with the spawner: MLHub records each step of a start and a stop as histograms
``mlhub_spawn_step_seconds{step=...}`` and ``mlhub_stop_step_seconds{step=...}``. Stock
JupyterHub has ``jupyterhub_server_spawn_duration_seconds`` (whole spawn, by status),
``jupyterhub_server_poll_duration_seconds`` and ``jupyterhub_server_stop_seconds``; MLHub's
hub has those too. A metric a hub does not export is reported as "not measured". Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

MLHUB_STEP_METRICS = ("mlhub_spawn_step_seconds", "mlhub_stop_step_seconds")
#: JupyterHub's own histograms, comparable on both stacks: (metric, label that splits it)
JUPYTERHUB_METRICS = (
    ("jupyterhub_server_spawn_duration_seconds", "status"),
    ("jupyterhub_server_stop_seconds", "status"),
    ("jupyterhub_proxy_add_duration_seconds", "status"),
)
NOT_MEASURED = "not measured"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_histograms(text: str) -> dict[str, dict[str, dict[str, float]]]:
    """``{metric: {label-set: {"count": n, "sum": s}}}`` from the ``_count``/``_sum`` samples;
    a label set is written ``k=v,k=v`` (sorted, ``le`` left out)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        for suffix in ("_count", "_sum"):
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                key = ",".join(f"{k}={v}" for k, v in sorted(_LABEL.findall(labels)) if k != "le")
                try:
                    out.setdefault(base, {}).setdefault(key, {})[suffix[1:]] = float(value)
                except ValueError:
                    pass
    return out


def difference(
    after: dict[str, dict[str, dict[str, float]]], before: dict[str, dict[str, dict[str, float]]]
) -> dict[str, dict[str, dict[str, float]]]:
    """What happened between two scrapes (counters only grow; a restart resets them)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for metric, series in after.items():
        for key, values in series.items():
            old = before.get(metric, {}).get(key, {})
            count = values.get("count", 0.0) - old.get("count", 0.0)
            total = values.get("sum", 0.0) - old.get("sum", 0.0)
            if count < 0:  # the hub restarted in between: the later scrape is the whole story
                count, total = values.get("count", 0.0), values.get("sum", 0.0)
            out.setdefault(metric, {})[key] = {"count": count, "sum": total}
    return out


def _label(key: str, name: str) -> str:
    for part in key.split(","):
        k, _, v = part.partition("=")
        if k == name:
            return v
    return key or "all"


def step_report(histograms: dict[str, dict[str, dict[str, float]]] | None) -> dict[str, Any]:
    """Mean seconds per step for one stack: ``{metric: {step: {"count", "mean_s"}} | "not measured"}``."""
    out: dict[str, Any] = {}
    wanted = [(m, "step") for m in MLHUB_STEP_METRICS] + list(JUPYTERHUB_METRICS)
    for metric, label in wanted:
        series = (histograms or {}).get(metric)
        if not series:
            out[metric] = NOT_MEASURED
            continue
        steps: dict[str, dict[str, float]] = {}
        for key, values in series.items():
            step = _label(key, label)
            into = steps.setdefault(step, {"count": 0.0, "sum": 0.0})
            into["count"] += values.get("count", 0.0)
            into["sum"] += values.get("sum", 0.0)
        out[metric] = {
            step: {"count": int(v["count"]), "mean_s": (v["sum"] / v["count"]) if v["count"] else None}
            for step, v in sorted(steps.items())
        }
    return out
