"""The results' plots (matplotlib, installed by run.sh with the "bench" extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.stats import finite

STACKS = ("stock", "mlhub")


def plot_all(out: Path, stamp: str, results: dict[str, Any]) -> list[Path]:
    try:
        import matplotlib
    except ImportError:  # run.sh installs it (the "bench" extra); a bare run still gets JSON and Markdown
        print("plots skipped: matplotlib is not installed (pip install -e '.[bench]')")
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    series = {
        "floor": results["floor"].get("values") or [],
        "stock": results["single_spawn"]["stock"].get("values") or [],
        "mlhub": results["single_spawn"]["mlhub"].get("values") or [],
    }
    series = {k: v for k, v in series.items() if v}
    if series:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.boxplot(list(series.values()), tick_labels=list(series.keys()), orientation="horizontal")
        ax.set_title("Spawn to ready, one server")
        ax.set_xlabel("seconds")
        fig.tight_layout()
        path = out / f"{stamp}-single-spawn.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for stack in STACKS:
        xs, ys, lo, hi = [], [], [], []
        for n in sorted(results["concurrent"], key=int):
            summary = results["concurrent"].get(n, {}).get(stack, {}).get("all_ready") or {}
            if finite(summary.get("median_s")):
                xs.append(int(n))
                ys.append(summary["median_s"])
                lo.append(summary["median_s"] - summary["min_s"])
                hi.append(summary["max_s"] - summary["median_s"])
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=stack)
            drawn = True
    if drawn:
        ax.set_title("Time until all servers are ready (median, range)")
        ax.set_xlabel("concurrent spawns")
        ax.set_ylabel("seconds")
        ax.legend()
        fig.tight_layout()
        path = out / f"{stamp}-concurrent.png"
        fig.savefig(path, dpi=100)
        written.append(path)
    plt.close(fig)
    return written
