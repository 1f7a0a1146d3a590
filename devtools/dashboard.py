"""MLHub's Grafana dashboard (docs/grafana-dashboard.json) and a picture of its panels.

``python -m devtools.dashboard json`` writes the dashboard from :data:`PANELS`.
``python -m devtools.dashboard picture`` starts a real hub (devtools.hubprocess), does a few
spawns, stops, deletions, one cleanup removal and one SSH session, scrapes ``/hub/metrics``
and draws each panel's query evaluated on that one scrape with matplotlib
(docs/images/grafana-dashboard.png). Grafana itself cannot be installed here, so the picture
is a rendering of the dashboard's queries, not a Grafana screenshot: quantiles are over all
observations since the hub started (one scrape has no ``rate``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "docs" / "grafana-dashboard.json"
PICTURE = REPO / "docs" / "images" / "grafana-dashboard.png"


def _q(metric: str, by: str, q: float) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket[$__rate_interval])))"


#: (title, kind, [(PromQL, legend)], unit); kind: how the picture draws it
PANELS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    (
        "Start: seconds per step (p50, p95)",
        "quantiles",
        [
            (_q("mlhub_spawn_step_seconds", "step", 0.5), "p50 {{step}}"),
            (_q("mlhub_spawn_step_seconds", "step", 0.95), "p95 {{step}}"),
        ],
        "s",
    ),
    (
        "Stop and delete: seconds per step (p50, p95)",
        "quantiles",
        [
            (_q("mlhub_stop_step_seconds", "step", 0.5), "p50 {{step}}"),
            (_q("mlhub_stop_step_seconds", "step", 0.95), "p95 {{step}}"),
        ],
        "s",
    ),
    (
        "Workspaces by state",
        "gauge",
        [("sum by (state) (mlhub_workspaces)", "{{state}}")],
        "short",
    ),
    (
        "Running workspaces by image",
        "gauge",
        [('sum by (image) (mlhub_workspaces{state="running"})', "{{image}}")],
        "short",
    ),
    (
        "Cleanup removals and expiries",
        "counter",
        [
            ("sum by (run, object) (increase(mlhub_cleanup_removals_total[$__range]))", "{{run}} {{object}}"),
            ("increase(mlhub_workspace_expiries_total[$__range])", "expiries"),
        ],
        "short",
    ),
    (
        "SSH sessions and bytes",
        "counter",
        [
            ("sum by (kind) (increase(mlhub_ssh_sessions_total[$__range]))", "sessions {{kind}}"),
            ("mlhub_ssh_sessions_open", "open now"),
            ("sum by (direction) (increase(mlhub_ssh_bytes_total[$__range]))", "bytes {{direction}}"),
        ],
        "short",
    ),
    (
        "JupyterHub: whole spawn (p50, p95)",
        "quantiles",
        [
            (_q("jupyterhub_server_spawn_duration_seconds", "status", 0.5), "p50 {{status}}"),
            (_q("jupyterhub_server_spawn_duration_seconds", "status", 0.95), "p95 {{status}}"),
        ],
        "s",
    ),
    (
        "JupyterHub: route added to the proxy (p50, p95)",
        "quantiles",
        [
            (_q("jupyterhub_proxy_add_duration_seconds", "status", 0.5), "p50 {{status}}"),
            (_q("jupyterhub_proxy_add_duration_seconds", "status", 0.95), "p95 {{status}}"),
        ],
        "s",
    ),
]


def dashboard() -> dict[str, Any]:
    panels = []
    for i, (title, _kind, queries, unit) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "title": title,
                "type": "timeseries",
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(65 + n), "expr": expr, "legendFormat": legend}
                    for n, (expr, legend) in enumerate(queries)
                ],
            }
        )
    return {
        "title": "MLHub",
        "uid": "mlhub",
        "tags": ["jupyterhub", "mlhub"],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}
            ]
        },
        "panels": panels,
    }


# --- evaluating the queries on one scrape -------------------------------------------------


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples
    ]


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile over cumulative (le, count) buckets."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0
    if not total:
        return float("nan")
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-9)
        prev_le, prev_count = le, count
    return prev_le


def evaluate(text: str) -> list[tuple[str, str, dict[str, float]]]:
    """(title, unit, {legend: value}) per panel, from one scrape."""
    samples = _samples(text)
    out = []
    for title, kind, queries, unit in PANELS:
        values: dict[str, float] = {}
        for expr, legend in queries:
            if kind == "quantiles":
                metric = expr.split("(rate(")[1].split("_bucket")[0]
                by = expr.split("sum by (")[1].split(",")[0]
                q = float(expr.split("(")[1].split(",")[0])
                groups: dict[str, list[tuple[float, float]]] = {}
                for name, labels, value in samples:
                    if name == metric + "_bucket":
                        groups.setdefault(labels.get(by, ""), []).append((float(labels["le"]), value))
                for key, buckets in groups.items():
                    values[legend.replace("{{" + by + "}}", key)] = quantile(buckets, q)
            else:
                metric = next(
                    w.strip("()[]")
                    for w in expr.replace("(", " ").replace("{", " ").replace("[", " ").split()
                    if w.startswith("mlhub_")
                )
                where = (
                    expr.split("{", 1)[1].split("}")[0]
                    if "{" in expr and "mlhub_" in expr.split("{")[0]
                    else ""
                )
                want = dict(p.split("=") for p in where.replace('"', "").split(",")) if where else {}
                by = (
                    expr.split("sum by (")[1].split(")")[0].replace(" ", "").split(",")
                    if "sum by (" in expr
                    else []
                )
                for name, labels, value in samples:
                    if name != metric or any(labels.get(k) != v for k, v in want.items()):
                        continue
                    key = legend
                    for label in by:
                        key = key.replace("{{" + label + "}}", labels.get(label, "") or "-")
                    values[key] = values.get(key, 0.0) + value
        out.append((title, unit, values))
    return out


def draw(text: str, path: Path = PICTURE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = evaluate(text)
    fig, axes = plt.subplots(4, 2, figsize=(15, 16), facecolor="#111217")
    for ax, (title, unit, values) in zip(axes.flat, panels, strict=True):
        ax.set_facecolor("#181b1f")
        ax.set_title(title, color="#d8d9da", fontsize=11, loc="left")
        ax.tick_params(colors="#a0a0a0", labelsize=8)
        for spine in ax.spines.values():
            spine.set_color("#333")
        if not values:
            ax.text(0.5, 0.5, "no data", color="#888", ha="center", va="center", transform=ax.transAxes)
            continue
        names = list(values)
        colors = [
            "#73bf69" if n.startswith("p50") else "#f2cc0c" if n.startswith("p95") else "#5794f2"
            for n in names
        ]
        ax.barh(names, [values[n] for n in names], color=colors)
        ax.invert_yaxis()
        for i, n in enumerate(names):
            v = values[n]
            ax.text(
                v, i, f" {v:.3f} s" if unit == "s" else f" {v:g}", color="#d8d9da", va="center", fontsize=8
            )
        ax.set_xlabel("seconds" if unit == "s" else "", color="#a0a0a0")
    fig.suptitle(
        "MLHub dashboard (docs/grafana-dashboard.json): its queries evaluated with matplotlib on one real "
        "scrape of /hub/metrics — not a Grafana screenshot",
        color="#d8d9da",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, facecolor=fig.get_facecolor())


def scrape_real_hub() -> str:
    """A real hub: 3 users spawn, one stops, one is deleted; a cleanup removal; an SSH session."""
    import time

    import docker
    import requests

    from devtools.hubprocess import HubProcess, new_hub_name, remove_test_objects

    name = new_hub_name()
    hub = HubProcess(Path(tempfile.mkdtemp()), name, env={"CLEANUP_INTERVAL_SECONDS": "-1"})
    client = docker.from_env()
    hub.start()
    try:
        admin = hub.ensure_user("admin-a", admin=True)
        for user in ("ann", "bo", "cy"):
            hub.ensure_user(user)
            hub.spawn(user, "", {})
        hub.spawn("ann", "two", {})
        hub.stop_server("bo")
        hub.stop_server("ann", "two", remove=True)
        client.networks.create(
            f"{name}-ghost",
            labels={"mlhub.origin": name, "mlhub.user": "ghost", "mlhub.install": hub.install_id()},
        )
        requests.get(
            f"{hub.url}/services/cleanup-service/users",
            headers={"Authorization": f"token {admin}"},
            timeout=120,
        )
        key_dir = Path(tempfile.mkdtemp())
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_dir / "k")], check=True)
        token = hub.ensure_user("cy")
        requests.post(
            f"{hub.url}/services/ssh/api/keys",
            headers={"Authorization": f"token {token}"},
            json={"key": (key_dir / "k.pub").read_text()},
            timeout=30,
        )
        subprocess.run(
            [
                "ssh",
                "-p",
                str(hub.ssh_port),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-i",
                str(key_dir / "k"),
                "cy@127.0.0.1",
                "head -c 100000 /dev/zero | wc -c",
            ],
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(8)  # the deletion and the services' counts arrive in the background
        hub.api("GET", "/../metrics")
        time.sleep(2)
        return hub.api("GET", "/../metrics").text
    finally:
        hub.stop()
        remove_test_objects(client, name)


def main(argv: list[str]) -> None:
    what = argv[1] if len(argv) > 1 else "json"
    if what == "json":
        DASHBOARD.write_text(json.dumps(dashboard(), indent=2) + "\n")
        print(f"wrote {DASHBOARD}")
    elif what == "picture":
        text = scrape_real_hub()
        (PICTURE.with_suffix(".prom")).write_text(text)
        draw(text)
        print(f"wrote {PICTURE} (scrape kept in {PICTURE.with_suffix('.prom')})")
    else:
        sys.exit("usage: python -m devtools.dashboard json|picture")


if __name__ == "__main__":
    main(sys.argv)
