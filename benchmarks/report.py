"""The benchmark's results: the JSON document, its required keys, prose computed from the
numbers, the Markdown table and the plots. Only the benchmark script writes these files.

Everything here but ``write_all``/``plot_*`` is pure (tested in tests/unit/test_bench_report.py).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.plots import plot_all
from benchmarks.stats import finite, ratio

CONCURRENCY = ("10", "20", "50", "100", "200")
STACKS = ("stock", "mlhub")
#: The keys issue 18 asks every results file to have (dotted paths).
REQUIRED_KEYS = (
    *[f"single_spawn.{s}.{k}" for s in STACKS for k in ("median_s", "p95_s", "runs")],
    *[f"concurrent.{n}.{s}.{k}" for n in CONCURRENCY for s in STACKS for k in ("all_ready_s", "errors")],
    "interleaved",
    "config_parity.http_timeout_equal",
    *[f"hub_restart.{s}.seconds_to_all_routes" for s in STACKS],
    "cleanup.objects",
    "cleanup.seconds",
)


def missing_keys(results: dict[str, Any]) -> list[str]:
    """Required dotted keys absent from *results* (a value of None counts as present)."""
    missing = []
    for dotted in REQUIRED_KEYS:
        node: Any = results
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(dotted)
                break
            node = node[part]
    return missing


def skeleton() -> dict[str, Any]:
    """A results document with every required key, nothing measured yet (None)."""
    none_summary = {"median_s": None, "p95_s": None, "min_s": None, "max_s": None, "runs": 0, "values": []}
    return {
        "interleaved": False,
        "config_parity": {"http_timeout_equal": False},
        "floor": dict(none_summary),
        "single_spawn": {s: dict(none_summary) for s in STACKS},
        "concurrent": {n: {s: {"all_ready_s": None, "errors": None} for s in STACKS} for n in CONCURRENCY},
        "hub_restart": {s: {"seconds_to_all_routes": None} for s in STACKS},
        "cleanup": {"objects": 0, "seconds": None},
        "failures": [],
    }


def jsonable(value: Any) -> Any:
    """NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _num(value: Any) -> float:
    return float(value) if finite(value) else float("nan")


def _s(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f} s" if finite(value) else "not measured"


def _get(results: dict[str, Any], dotted: str) -> Any:
    node: Any = results
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


# --- Targets and prose ------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 18's targets: what was measured and whether it was met (None: not measured)."""
    out = []
    s, m = results["single_spawn"]["stock"], results["single_spawn"]["mlhub"]
    both = all(finite(x) for x in (s.get("median_s"), m.get("median_s"), s.get("p95_s"), m.get("p95_s")))
    out.append(
        {
            "target": "one spawn: MLHub median <= stock median and p95 <= stock p95",
            "measured": f"median {_s(s.get('median_s'))} stock / {_s(m.get('median_s'))} MLHub, "
            f"p95 {_s(s.get('p95_s'))} / {_s(m.get('p95_s'))}",
            "met": (m["median_s"] <= s["median_s"] and m["p95_s"] <= s["p95_s"]) if both else None,
        }
    )
    out.append(
        {
            "target": "one spawn of the bundled image: MLHub median <= 2 s",
            "measured": _s(m.get("median_s")),
            "met": (m["median_s"] <= 2.0) if finite(m.get("median_s")) else None,
        }
    )
    for n in CONCURRENCY:
        row = results["concurrent"].get(n, {})
        st, ml = row.get("stock", {}), row.get("mlhub", {})
        if n == "200":
            met = (ml.get("errors") == 0) if ml.get("errors") is not None else None
            what = f"{n} concurrent: MLHub 0 errors"
        else:
            ok = (
                finite(st.get("all_ready_s"))
                and finite(ml.get("all_ready_s"))
                and ml.get("errors") is not None
            )
            met = (ml["all_ready_s"] <= st["all_ready_s"] and ml["errors"] == 0) if ok else None
            what = f"{n} concurrent: MLHub all ready no later than stock, 0 errors"
        measured = (
            f"all ready {_s(st.get('all_ready_s'), 1)} stock / {_s(ml.get('all_ready_s'), 1)} MLHub; "
            f"errors {st.get('errors')} / {ml.get('errors')}"
            if ml.get("errors") is not None
            else "not measured"
        )
        out.append({"target": what, "measured": measured, "met": met})
    r = results["hub_restart"].get("mlhub", {})
    routes, disturbed = r.get("seconds_to_all_routes"), r.get("disturbed")
    out.append(
        {
            "target": f"hub restart with {r.get('servers', 100)} running servers: every route back <= 10 s, none stopped",
            "measured": f"{_s(routes, 1)}, {disturbed} disturbed" if finite(routes) else "not measured",
            "met": (routes <= 10 and disturbed == 0) if finite(routes) else None,
        }
    )
    c = results["cleanup"]
    slow = c.get("spawn_slowdown")
    out.append(
        {
            "target": "cleanup over 10,000 objects <= 30 s, spawns during it no more than 10 % slower",
            "measured": (
                f"{c.get('objects')} objects in {_s(c.get('seconds'), 1)}; spawns during it "
                + (f"{slow:+.0%}" if finite(slow) else "not measured")
            )
            if finite(c.get("seconds"))
            else "not measured",
            "met": (
                c["seconds"] <= 30 and c.get("objects", 0) >= 10_000 and (not finite(slow) or slow <= 0.10)
            )
            if finite(c.get("seconds"))
            else None,
        }
    )
    return out


def _top_steps(steps: Any, metric: str, k: int = 3) -> str:
    if not isinstance(steps, dict) or not isinstance(steps.get(metric), dict):
        return ""
    ranked = sorted(
        ((name, v["mean_s"]) for name, v in steps[metric].items() if finite(v.get("mean_s"))),
        key=lambda item: -item[1],
    )[:k]
    return ", ".join(f"{name} {mean:.2f} s" for name, mean in ranked)


def _spread(stock: dict[str, Any], mlhub: dict[str, Any]) -> str:
    """Whether the two stacks' run-to-run ranges overlap (a difference then within the spread)."""
    bounds = [stock.get("min_s"), stock.get("max_s"), mlhub.get("min_s"), mlhub.get("max_s")]
    if not all(finite(b) for b in bounds) or min(stock.get("runs", 0), mlhub.get("runs", 0)) < 2:
        return ""
    s_lo, s_hi, m_lo, m_hi = bounds
    ranges = f"stock {s_lo:.1f}–{s_hi:.1f} s, MLHub {m_lo:.1f}–{m_hi:.1f} s"
    if m_lo <= s_hi and s_lo <= m_hi:
        return f" The runs' ranges overlap ({ranges}): the difference is within this run's spread."
    return f" The runs' ranges do not overlap ({ranges})."


def common_causes(failures: list[dict[str, Any]], stack: str, scenario: str, k: int = 3) -> str:
    causes = Counter(
        f.get("cause", "?")[:160]
        for f in failures
        if f.get("stack") == stack and f.get("scenario") == scenario
    )
    return "; ".join(f"{count}× {cause}" for cause, count in causes.most_common(k))


def prose(results: dict[str, Any]) -> list[str]:
    """One sentence per missed (or unmeasured) target, built from the measured numbers only."""
    lines: list[str] = []
    floor = _num(_get(results, "floor.median_s"))
    s = _num(_get(results, "single_spawn.stock.median_s"))
    m = _num(_get(results, "single_spawn.mlhub.median_s"))
    steps = results.get("steps", {}).get("mlhub")
    by_scenario = results.get("steps_by_scenario") or {}
    for t in targets(results):
        if t["met"] is True:
            continue
        if t["met"] is None:
            lines.append(f"- {t['target']}: not measured in this run.")
            continue
        text = f"- {t['target']}: missed ({t['measured']})."
        if t["target"].startswith("one spawn") and finite(m):
            if finite(floor):
                text += f" The floor (`docker run` until the server answers) was {floor:.2f} s: "
                text += f"stock spent {s - floor:+.2f} s above it, MLHub {m - floor:+.2f} s."
            single = (by_scenario.get("single") or {}).get("mlhub") or steps
            top = _top_steps(single, "mlhub_spawn_step_seconds")
            text += f" MLHub's slowest steps (mean): {top}." if top else " MLHub's steps: not measured."
        elif " concurrent" in t["target"]:
            n = t["target"].split()[0]
            row = results["concurrent"].get(n, {})
            st, ml = row.get("stock", {}), row.get("mlhub", {})
            if finite(st.get("all_ready_s")) and finite(ml.get("all_ready_s")):
                text += f" MLHub took {ml['all_ready_s'] / st['all_ready_s']:.2f}× stock's time."
            if ml.get("errors"):
                text += f" MLHub's failures: {common_causes(results.get('failures', []), 'mlhub', f'concurrent-{n}') or 'cause not found'}."
            text += _spread(st.get("all_ready", {}), ml.get("all_ready", {}))
            nets = row.get("network_floor") or {}
            if finite(nets.get("create_s")):
                text += (
                    f" Creating {nets.get('networks')} bridge networks like MLHub's per-user ones (stock's"
                    f" servers share one) with docker-py alone took {nets['create_s']:.1f} s, in which the machine"
                    f" spent {_s(nets.get('create_cpu_s'), 1)} of CPU, in this run"
                )
                gap = _num(ml.get("all_ready_s")) - _num(st.get("all_ready_s"))
                text += f", against MLHub's extra {gap:.1f} s." if finite(gap) and gap > 0 else "."
            top = _top_steps(
                (by_scenario.get(f"concurrent-{n}") or {}).get("mlhub"), "mlhub_spawn_step_seconds"
            )
            if top:
                text += f" MLHub's slowest steps at {n} (mean): {top}."
            busy_st, busy_ml = st.get("machine_busy"), ml.get("machine_busy")
            if finite(busy_st) and finite(busy_ml):
                text += (
                    f" The machine was {busy_ml:.0%} busy while MLHub's servers started and"
                    f" {busy_st:.0%} while stock's did"
                    + (
                        " (both at least 90 %: the cores were nearly saturated for both stacks)."
                        if min(busy_st, busy_ml) >= 0.9
                        else "."
                    )
                )
            elif finite(busy_ml):
                text += f" The machine was {busy_ml:.0%} busy while MLHub's servers started."
        elif t["target"].startswith("hub restart"):
            r = results["hub_restart"]["mlhub"]
            text += (
                f" The hub answered after {_s(r.get('seconds_to_answer'), 1)}, every server was polled after "
                f"{_s(r.get('seconds_to_all_polled'), 1)}."
            )
        elif t["target"].startswith("cleanup"):
            c = results["cleanup"]
            if c.get("objects", 0) < 10_000:
                text += f" Only {c.get('objects')} objects were made in this run (not the target's 10,000)."
            if finite(c.get("seconds")) and c.get("removed"):
                text += f" {c['removed']} removed at {c['seconds'] / c['removed'] * 1000:.1f} ms each."
            floor = c.get("engine_floor_seconds")
            if finite(floor) and finite(c.get("seconds")):
                text += (
                    f" The engine alone (docker-py, no MLHub) removed objects like these in {_s(floor, 1)}"
                    f" (floor), so the run was {_s(c['seconds'] - floor, 1)} above it"
                    + ("; the 30-s target is below this engine's floor." if floor > 30 else ".")
                )
        lines.append(text)
    return lines


# --- Markdown -----------------------------------------------------------------------------


def _row(name: str, stock: Any, mlhub: Any, unit: str = "s", note: str = "", compare: bool = True) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if finite(v) else ("—" if v is None else str(v))

    r = ratio(_num(stock), _num(mlhub)) if unit == "s" and compare else float("nan")
    return (
        f"| {name} | {fmt(stock)} | {fmt(mlhub)} | {f'{r:.2f}×' if finite(r) else 'n/a'} | {unit} | {note} |"
    )


def _range(summary: dict[str, Any]) -> str:
    if not finite(summary.get("min_s")):
        return ""
    return f"{summary['min_s']:.2f}–{summary['max_s']:.2f}"


def _one_container(one: dict[str, Any]) -> list[str]:
    """MLHub's one-container install against MLHub with the hub on the host (not against stock)."""
    if not one:
        return []

    def fmt(v: Any) -> str:
        return f"{v:.3g}" if finite(v) else "—"

    lines = [
        "## MLHub's hub on the host vs in one container (the README's `docker run`)",
        "",
        "| scenario | hub on the host | hub in one container | unit | note |",
        "| --- | ---: | ---: | --- | --- |",
        f"| one spawn (median) | {fmt(_get(one, 'host_single_spawn.median_s'))} | "
        f"{fmt(_get(one, 'single_spawn.median_s'))} | s | interleaved; a user's first spawn in the "
        f"container (with their network): {_s(one.get('first_spawn_s'))} |",
    ]
    for n, pair in sorted((one.get("concurrent") or {}).items(), key=lambda item: int(item[0])):
        c, h = pair.get("container", {}), pair.get("host", {})
        lines.append(
            f"| {n} concurrent: all ready (median) | {fmt(h.get('all_ready_s'))} | {fmt(c.get('all_ready_s'))} "
            f"| s | errors {h.get('errors')} / {c.get('errors')} |"
        )
    return [*lines, ""]


SPAWN_TOTAL = "jupyterhub_server_spawn_duration_seconds"


def _steps_by_scenario(by_scenario: dict[str, Any]) -> list[str]:
    """A table per scenario: MLHub's mean time per spawn step, and each stack's whole spawn as
    JupyterHub times it (the one step stock has)."""
    scenarios = list(by_scenario)
    if not scenarios:
        return []

    def mean(stack: str, scenario: str, metric: str, step: str) -> str:
        value = (by_scenario[scenario].get(stack) or {}).get(metric) or {}
        v = value.get(step, {}).get("mean_s") if isinstance(value, dict) else None
        return f"{v:.3f}" if finite(v) else "—"

    ml = [by_scenario[sc].get("mlhub") or {} for sc in scenarios]
    steps = sorted(
        {
            step
            for r in ml
            if isinstance(r.get("mlhub_spawn_step_seconds"), dict)
            for step in r["mlhub_spawn_step_seconds"]
        }
    )
    lines = [
        "## Where the time goes, by scenario (mean seconds per spawn)",
        "",
        "| step | " + " | ".join(scenarios) + " |",
        "| --- | " + " | ".join("---:" for _ in scenarios) + " |",
    ]
    for stack in STACKS:
        lines.append(
            f"| {stack}: whole spawn (JupyterHub's `{SPAWN_TOTAL}`) | "
            + " | ".join(mean(stack, sc, SPAWN_TOTAL, "success") for sc in scenarios)
            + " |"
        )
    for step in steps:
        lines.append(
            f"| MLHub: {step} | "
            + " | ".join(mean("mlhub", sc, "mlhub_spawn_step_seconds", step) for sc in scenarios)
            + " |"
        )
    return [*lines, ""]


def _code_line(code: dict[str, Any] | None) -> str:
    if not code:
        return "Code: not recorded (the run predates the record)."
    changed = code.get("changed_files") or []
    state = (
        "the working tree as committed"
        if not changed
        else "with uncommitted changes to " + ", ".join(f"`{f}`" for f in changed)
    )
    return f"Code: commit `{code.get('commit', '?')}`, {state}."


def markdown(results: dict[str, Any], stamp: str) -> str:
    p = results["config_parity"]
    lines = [
        f"# MLHub vs stock JupyterHub + DockerSpawner + CHP — {stamp}",
        "",
        f"Machine: {results.get('machine', '?')}. Command: `{results.get('command', '?')}`.",
        _code_line(results.get("code")),
        f"Hub: {results.get('hub_mode', 'host')}. Workspace image `{results.get('image', '?')}` on both stacks.",
        f"One-container install: `{results.get('hub_image', '?')}`.",
        f"Stacks interleaved: {'yes' if results['interleaved'] else 'no'} (order: {results.get('order_rule', '?')}).",
        "Written by `benchmarks/bench.py` only; ratio = stock / MLHub (above 1: MLHub faster).",
        "",
        "## Configuration parity",
        "",
        f"- `http_timeout` equal: {p.get('http_timeout_equal')} ({p.get('http_timeout')}); "
        f"`start_timeout` equal: {p.get('start_timeout_equal')} ({p.get('start_timeout')}); "
        f"`concurrent_spawn_limit` equal: {p.get('concurrent_spawn_limit_equal')} "
        f"({p.get('concurrent_spawn_limit')}).",
        f"- How the hub reaches a server: stock {p.get('server_reached', {}).get('stock', '?')}; "
        f"MLHub {p.get('server_reached', {}).get('mlhub', '?')}.",
        *[f"- Declared difference: {d}" for d in p.get("declared_differences", [])],
        f"- This run's CPU: stock {p.get('cpu_limit', {}).get('stock', '?')}; MLHub `cpu_limit` "
        f"{p.get('cpu_limit', {}).get('mlhub', '?')}, boot CPU burst "
        f"{p.get('boot_cpu_burst', {}).get('mlhub', 'not recorded (the run predates the option)')}.",
        "",
        "## Results",
        "",
        "| scenario | stock | MLHub | ratio | unit | note |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    fl = results["floor"]
    lines.append(
        _row(
            "floor: `docker run` until the server answers, no hub (median)",
            fl.get("median_s"),
            fl.get("median_s"),
            "s",
            f"the same for both stacks; range {_range(fl)}, {fl.get('runs')} runs",
            compare=False,
        )
    )
    s, m = results["single_spawn"]["stock"], results["single_spawn"]["mlhub"]
    lines.append(
        _row(
            f"one spawn, median of {m.get('runs')}",
            s.get("median_s"),
            m.get("median_s"),
            "s",
            f"range {_range(s)} / {_range(m)}",
        )
    )
    lines.append(_row("one spawn, p95", s.get("p95_s"), m.get("p95_s")))
    for n in sorted(set(CONCURRENCY) | set(results["concurrent"]), key=int):
        row = results["concurrent"].get(n, {})
        st, ml = row.get("stock", {}), row.get("mlhub", {})
        if st.get("errors") is None and ml.get("errors") is None:
            lines.append(f"| {n} concurrent | not measured | not measured | n/a | s | |")
            continue
        rs, rm = st.get("all_ready", {}), ml.get("all_ready", {})
        lines.append(
            _row(
                f"{n} concurrent: all ready (median of {rm.get('runs')})",
                st.get("all_ready_s"),
                ml.get("all_ready_s"),
                "s",
                f"range {_range(rs)} / {_range(rm)}",
            )
        )
        lines.append(
            _row(f"{n} concurrent: per-server p50", st.get("per_server_p50_s"), ml.get("per_server_p50_s"))
        )
        lines.append(_row(f"{n} concurrent: errors (all runs)", st.get("errors"), ml.get("errors"), "count"))
        lines.append(_row(f"{n} concurrent: stop and delete all", st.get("stop_all_s"), ml.get("stop_all_s")))
        nets = row.get("network_floor") or {}
        if finite(nets.get("create_s")):
            lines.append(
                _row(
                    f"{n} concurrent: docker-py alone creates {nets.get('networks')} per-user networks",
                    None,
                    nets.get("create_s"),
                    "s",
                    f"the machine's CPU meanwhile {_s(nets.get('create_cpu_s'), 1)}; removing them {_s(nets.get('remove_s'), 1)};"
                    " stock's servers share one network",
                    compare=False,
                )
            )
    for key, label in (
        ("seconds_to_answer", "hub answers"),
        ("seconds_to_all_routes", "every route back"),
        ("seconds_to_all_polled", "every server polled"),
    ):
        rs, rm = results["hub_restart"].get("stock", {}), results["hub_restart"].get("mlhub", {})
        lines.append(
            _row(
                f"hub restart with {rm.get('servers', '?')} servers: {label}",
                rs.get(key),
                rm.get(key),
                "s",
                f"disturbed {rs.get('disturbed')} / {rm.get('disturbed')}",
            )
        )
    c = results["cleanup"]
    lines.append(
        _row(
            f"cleanup over {c.get('objects')} objects ({c.get('orphaned')} orphaned): run",
            None,
            c.get("seconds"),
            "s",
            f"{c.get('removed')} removed, {c.get('errors')} errors; stock has no cleanup service",
        )
    )
    lines.append(
        _row(
            "floor: the engine removes objects like the orphans directly (docker-py, no MLHub)",
            None,
            c.get("engine_floor_seconds"),
            "s",
            "same mix and state, one at a time as the cleanup",
        )
    )
    lines.append(
        _row(
            "one spawn while the cleanup runs (median)",
            None,
            _get(results, "cleanup.spawn_during.median_s"),
            "s",
            f"baseline {_s(_get(results, 'cleanup.spawn_baseline.median_s'))}",
        )
    )
    for flavor, mb in (results.get("idle_memory_mb") or {}).items():
        lines.append(_row(f"memory of one idle workspace, `{flavor}`", None, mb, "MB"))
    busy = results.get("busy_host") or {}
    if busy:
        lines.append(
            _row(
                f"one spawn with {busy.get('burners')} CPU burners (median)",
                _get(busy, "stock.median_s"),
                _get(busy, "mlhub.median_s"),
                "s",
            )
        )
    lines += ["", "## Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
    for t in targets(results):
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    why = prose(results)
    if why:
        lines += ["", "### Misses (computed from the numbers above)", "", *why]
    lines += ["", "## Where the time goes (hub metrics, mean per step)", ""]
    for stack in STACKS:
        report = (results.get("steps") or {}).get(stack) or {}
        lines.append(f"**{stack}**")
        lines.append("")
        if not report:
            lines += ["- not measured", ""]
            continue
        for metric, value in report.items():
            if not isinstance(value, dict):
                lines.append(f"- `{metric}`: {value}")
            else:
                parts = ", ".join(
                    f"{k} {v['mean_s']:.3f} s ×{v['count']}"
                    for k, v in value.items()
                    if finite(v.get("mean_s"))
                )
                lines.append(f"- `{metric}`: {parts or 'no samples'}")
        lines.append("")
    lines += _one_container(results.get("one_container") or {})
    lines += _steps_by_scenario(results.get("steps_by_scenario") or {})
    failures = results.get("failures") or []
    lines += ["## Failed spawns and their causes", ""]
    lines += [
        f"- {f['stack']} {f['scenario']} {f.get('user')}: {f.get('cause')}" for f in failures[:100]
    ] or ["- none"]
    if len(failures) > 100:
        lines.append(f"- … {len(failures) - 100} more in the JSON")
    lines += ["", f"Hub logs (gzip): `{results.get('logs_dir', '?')}/`, next to this file.", ""]
    return "\n".join(lines)


# --- Files ----------------------------------------------------------------------------------


def write_all(out: Path, stamp: str, results: dict[str, Any]) -> list[Path]:
    """``<stamp>.json``, ``<stamp>.md`` and the plots in *out*; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    missing = missing_keys(results)
    if missing:
        raise ValueError(f"results lack required keys: {missing}")
    paths = [out / f"{stamp}.json", out / f"{stamp}.md"]
    paths[0].write_text(json.dumps(jsonable(results), indent=2, sort_keys=True) + "\n")
    paths[1].write_text(markdown(results, stamp))
    paths += plot_all(out, stamp, results)
    return paths
