"""How long the hub takes to start, with and without jsonschema's ``rfc3987_syntax``.

    python -m benchmarks.hub_start [--reps 5] [--out benchmarks/results/hub-start]

``jupyterhub.app`` imports ``jupyter_events``, whose validators import ``jsonschema._format``,
which imports ``rfc3987_syntax`` when it is installed (it comes with
``jsonschema[format-nongpl]``); that module builds its Lark grammars at import time. MLHub's
set-up removes it (docs/decisions/workspace-start-time.md). This script measures what that saves,
in one run, interleaved (ABBA): the import of ``jupyterhub.app`` and a whole hub start (the
process until ``/hub/api/`` answers: JupyterHub, its proxy, MLHub's services) in the set-up's
venv, once as it is and once with ``rfc3987_syntax`` shadowed by a module that refuses to
import (jsonschema then skips it, as when it is not installed). When the venv has no
``rfc3987_syntax``, both variants are the same and the results say so.
Writes ``<out>/<date>-hub-start.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from benchmarks.machine import machine
from benchmarks.stats import interleaved_order, summary
from devtools.hubprocess import REPO, HubProcess, new_hub_name, remove_test_objects

RESULTS = REPO / "benchmarks" / "results" / "hub-start"
VARIANTS = ("as set up", "rfc3987_syntax left out")


def shadow_dir() -> Path:
    """A directory that, first on PYTHONPATH, makes ``import rfc3987_syntax`` fail."""
    root = Path(tempfile.mkdtemp(prefix="mlhub-shadow-"))
    (root / "rfc3987_syntax").mkdir()
    (root / "rfc3987_syntax" / "__init__.py").write_text(
        'raise ImportError("left out by benchmarks.hub_start")\n'
    )
    return root


def installed() -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('rfc3987_syntax') is None)"
    return subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def import_seconds(env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import jupyterhub.app"], env=env, check=True)
    return time.perf_counter() - t


def hub_start_seconds(client: docker.DockerClient, env: dict[str, str]) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="mlhub-hubstart-"))
    hub = HubProcess(workdir, new_hub_name(), env=env)
    try:
        t = time.perf_counter()
        hub.start()
        return time.perf_counter() - t
    finally:
        hub.stop()
        remove_test_objects(client, hub.hub_name)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="starts per variant (default 5)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where results go (default {RESULTS})")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps: at least 1")
    client = docker.from_env()
    shadow = shadow_dir()
    envs = {VARIANTS[0]: {}, VARIANTS[1]: {"PYTHONPATH": str(shadow)}}
    order = interleaved_order(list(VARIANTS), args.reps, seed=None)
    imports: dict[str, list[float]] = {v: [] for v in VARIANTS}
    starts: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for variant in order:
            env = {**os.environ, **envs[variant]}
            imports[variant].append(import_seconds(env))
            starts[variant].append(hub_start_seconds(client, envs[variant]))
            print(
                f"{variant}: import {imports[variant][-1]:.2f} s, hub start {starts[variant][-1]:.2f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(shadow, ignore_errors=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    results = {
        "machine": machine(),
        "rfc3987_syntax_installed": installed(),
        "order": order,
        "import_s": {v: summary(imports[v]) for v in VARIANTS},
        "hub_start_s": {v: summary(starts[v]) for v in VARIANTS},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stamp}-hub-start.json").write_text(json.dumps(results, indent=1) + "\n")
    same = "" if results["rfc3987_syntax_installed"] else " (not installed here: both variants are the same)"
    lines = [
        f"# Hub start with and without `rfc3987_syntax` — {stamp}",
        "",
        f"Machine: {results['machine']}. Command: `python -m benchmarks.hub_start --reps {args.reps}`.",
        f"`rfc3987_syntax` installed in the venv: {results['rfc3987_syntax_installed']}{same}.",
        "Variants interleaved (ABBA); written by `benchmarks/hub_start.py` only.",
        "Hub start: the process until `/hub/api/` answers (JupyterHub, its proxy, MLHub's services).",
        "",
        "| measure | as set up: median (range) | `rfc3987_syntax` left out: median (range) | saved (medians) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label in (("import_s", "`import jupyterhub.app`"), ("hub_start_s", "hub start")):
        a, b = results[key][VARIANTS[0]], results[key][VARIANTS[1]]
        lines.append(
            f"| {label} | {a['median_s']:.2f} s ({a['min_s']:.2f}–{a['max_s']:.2f}) | "
            f"{b['median_s']:.2f} s ({b['min_s']:.2f}–{b['max_s']:.2f}) | {a['median_s'] - b['median_s']:.2f} s |"
        )
    lines.append(f"\n{args.reps} of each.\n")
    (args.out / f"{stamp}-hub-start.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
