"""MLHub vs stock JupyterHub + DockerSpawner + CHP: same machine, same image, same run.

    bash benchmarks/run.sh                      # issue 18's full protocol (hours on 2 cores)
    bash benchmarks/run.sh --smoke --out /tmp/b # a small run to check the harness (minutes)

Both stacks get the same timeouts and reach servers the same way (stacks.py); the stacks run
interleaved; results (``<stamp>.json``, ``<stamp>.md``, plots, hub logs in ``<stamp>-logs/``) are
written by this script only (report.py). A run smaller than the full protocol is stamped
``<date>-smoke`` so it is never mistaken for a published one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from benchmarks import report, scenarios
from benchmarks.machine import image_facts, machine
from benchmarks.stacks import (
    MLHUB_CONFIG,
    PARITY,
    PARITY_HUB,
    STOCK_CONFIG,
    Stack,
    container_stack,
    host_stack,
    overrides_win,
    stop_stack,
)
from benchmarks.stats import summary
from benchmarks.steps import difference, parse_histograms, step_report
from devtools.hubprocess import REPO, remove_test_objects

RESULTS = REPO / "benchmarks" / "results"
IMAGE = "mlhub/workspace:latest"
FLAVORS = ("mlhub/workspace:minimal", "mlhub/workspace:full")
SCENARIOS = ("single", "concurrent", "busy", "cleanup", "memory", "restart", "container")
FULL = {
    "reps": 10,
    "runs": 3,
    "concurrency": "10,20,50,100,200",
    "restart_servers": 100,
    "cleanup_objects": 10_000,
    "cleanup_spawns": 5,
    "busy_reps": 5,
}
SMOKE = {
    "reps": 2,
    "runs": 2,
    "concurrency": "3,5",
    "restart_servers": 3,
    "cleanup_objects": 200,
    "cleanup_spawns": 2,
    "busy_reps": 1,
}
DECLARED = [
    "MLHub creates a network and a volume per user, labels and validates each spawn; stock does none of it "
    "(this is the work being measured).",
    "Stock's servers share one user-defined network; MLHub gives each user their own.",
    "Authenticator: stock `dummy`, MLHub NativeAuthenticator; the benchmark uses API tokens on both.",
    "MLHub serves each user on their own origin (`<user>.localhost`); stock on the hub's origin.",
    "CPU: stock's servers have no limit; MLHub's ask for `cpu_limit` = this machine's cores (`--mlhub-cpu host`, "
    "the default) or get MLHub's fair default, a quarter of the host (`--mlhub-cpu default`; 0.5 core on 2 cores).",
    "MLHub runs its cleanup service (periodic runs off: CLEANUP_INTERVAL_SECONDS=-1) and SSH gateway; "
    "stock runs no services.",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="small run to check the harness: " + str(SMOKE))
    p.add_argument("--out", type=Path, default=RESULTS, help="where results go (default benchmarks/results)")
    p.add_argument("--reps", type=int, help="single spawns per stack (>= 5 for a published run; default 10)")
    p.add_argument("--runs", type=int, help="runs of each concurrency per stack (>= 3 published; default 3)")
    p.add_argument("--concurrency", help="comma-separated N (default 10,20,50,100,200)")
    p.add_argument("--restart-servers", type=int, help="servers running across a hub restart (default 100)")
    p.add_argument("--cleanup-objects", type=int, help="engine objects for the cleanup run (default 10000)")
    p.add_argument("--cleanup-spawns", type=int, help="spawns before and during the cleanup run")
    p.add_argument("--busy-reps", type=int, help="single spawns per stack with the CPU burners")
    p.add_argument(
        "--memory-settle", type=float, default=30, help="seconds a workspace idles before its memory is read"
    )
    p.add_argument(
        "--mlhub-cpu",
        choices=("host", "default"),
        default="host",
        help="MLHub's spawns ask for cpu_limit = this machine's cores, as stock's unlimited servers "
        "get (host, default), or send no cpu_limit, so MLHub's fair default applies (a quarter of the host)",
    )
    p.add_argument(
        "--mlhub-cpu-burst",
        choices=("on", "off"),
        default="on",
        help="MLHub's workspaces boot at boot_cpu_limit (1 core) and get their own CPU limit once they "
        "answer (on, MLHub's default: c.MLHubDockerSpawner.boot_cpu_burst) or hold it from the start (off)",
    )
    p.add_argument(
        "--seed", type=int, help="shuffle each pair's order with this seed (default: ABBA alternation)"
    )
    p.add_argument(
        "--skip", default="", help=f"comma-separated scenarios to leave out: {','.join(SCENARIOS)}"
    )
    args = p.parse_args(argv)
    base = SMOKE if args.smoke else FULL
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.ns = [int(n) for n in str(args.concurrency).split(",") if n.strip()]
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if unknown := args.skip - set(SCENARIOS):
        p.error(f"--skip: unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    if not (1 <= args.reps <= 100 and 1 <= args.runs <= 20 and all(1 <= n <= 500 for n in args.ns)):
        p.error("--reps 1-100, --runs 1-20, --concurrency each 1-500")
    return args


def is_full(args: argparse.Namespace) -> bool:
    return (
        not args.skip
        and args.reps >= 5
        and args.runs >= 3
        and {10, 20, 50, 100, 200} <= set(args.ns)
        and args.restart_servers >= 100
        and args.cleanup_objects >= 10_000
    )


def snapshot(stacks: dict[str, Stack]) -> dict[str, Any]:
    """Each stack's histograms now (scraped between scenarios, never while one is timed)."""
    return {name: parse_histograms(s.metrics() or "") for name, s in stacks.items()}


def steps_of(stacks: dict[str, Stack], before: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, stack in stacks.items():
        now = stack.metrics()
        out[name] = step_report(difference(parse_histograms(now), before[name]) if now is not None else None)
    return out


def scenario_failed(failures: list[dict[str, Any]], scenario: str, exc: BaseException) -> None:
    """Record a scenario that raised, so a long run still writes what the other scenarios measured."""
    print(f"{scenario}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    failures.append({"scenario": scenario, "stack": "harness", "cause": f"{type(exc).__name__}: {exc}"})


def new_stamp(out: Path, day: str, full: bool) -> str:
    """``<day>`` (full protocol) or ``<day>-smoke``; ``-2``, ``-3``, ... after it when *out*
    already holds a run of that name, so a run never overwrites another's results."""
    base = day + ("" if full else "-smoke")
    stamp, n = base, 1
    while (out / f"{stamp}.json").exists() or (out / f"{stamp}-logs").exists():
        n += 1
        stamp = f"{base}-{n}"
    return stamp


def changed_files(porcelain: str) -> list[str]:
    """Paths in ``git status --porcelain`` output (``XY path`` lines; X or Y may be a space)."""
    return [line[3:] for line in porcelain.splitlines() if len(line) > 3]


def code_state() -> dict[str, Any]:
    """The commit the run measures and the files changed since it: the hubs run this working
    tree (an editable install), so a run with changes measures code no commit holds."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short=12", "HEAD").strip() or "unknown",
        "changed_files": changed_files(git("status", "--porcelain", "--untracked-files=no")),
    }


def changed_code_refusal(code: dict[str, Any], full: bool) -> str:
    """Why a run may not start (empty: it may): a full-protocol run publishes results for one
    commit, so it refuses a working tree with changes; a partial run records them."""
    if not (full and code.get("changed_files")):
        return ""
    return (
        f"A full-protocol run measures one commit ({code.get('commit')}), and this working tree has "
        f"changes: {', '.join(code['changed_files'])}. Commit or stash them (or move them to another "
        "worktree) first."
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    code = code_state()
    refusal = changed_code_refusal(code, is_full(args))
    if refusal:
        raise SystemExit(refusal)
    client = docker.from_env(timeout=300)
    remove_test_objects(client)
    stamp = new_stamp(args.out, dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"), is_full(args))
    logs = args.out / f"{stamp}-logs"
    workdir = Path(tempfile.mkdtemp(prefix="mlhub-bench-"))
    env = {"CLEANUP_INTERVAL_SECONDS": "-1", "MLHUB_ALLOWED_IMAGES": ",".join((IMAGE, *FLAVORS))}
    results = report.skeleton()
    failures: list[dict[str, Any]] = results["failures"]
    results.update(
        {
            "machine": machine(),
            "code": code,
            "image": image_facts(IMAGE),
            "hub_image": image_facts("mlhub/mlhub:latest"),
            "command": "python -m benchmarks.bench " + shlex.join(sys.argv[1:]),
            "hub_mode": "on the host (both stacks)"
            + ("" if "container" in args.skip else "; MLHub's one-container install in `one_container`"),
            "interleaved": True,
            "order_rule": f"pairs shuffled with seed {args.seed}"
            if args.seed is not None
            else "ABBA alternation",
            "logs_dir": logs.name,  # next to the results files
            "full_protocol": is_full(args),
        }
    )
    stacks: dict[str, Stack] = {}
    extra: list[Stack] = []
    try:
        burst_off = "" if args.mlhub_cpu_burst == "on" else "c.MLHubDockerSpawner.boot_cpu_burst = False"
        for name in ("stock", "mlhub"):
            stacks[name] = host_stack(name, workdir, client, env, burst_off if name == "mlhub" else "")
        cpu_options = {"cpu_limit": os.cpu_count() or 1} if args.mlhub_cpu == "host" else {}
        stacks["mlhub"].spawn_options = dict(cpu_options)

        def equal(key: str) -> bool:  # both configs let the overrides file's value win
            return overrides_win(STOCK_CONFIG, (key,)) and overrides_win(MLHUB_CONFIG, (key,))

        results["config_parity"] = {
            "http_timeout_equal": equal("http_timeout"),
            "start_timeout_equal": equal("start_timeout"),
            "concurrent_spawn_limit_equal": equal("concurrent_spawn_limit"),
            "cpu_limit": {
                "stock": "none (all cores)",
                "mlhub": cpu_options.get("cpu_limit", "MLHub's fair default (a quarter of the host)"),
            },
            "boot_cpu_burst": {"stock": "n/a", "mlhub": args.mlhub_cpu_burst},
            "concurrent_spawn_limit": {name: PARITY_HUB["concurrent_spawn_limit"] for name in stacks},
            "http_timeout": {name: PARITY["http_timeout"] for name in stacks},
            "start_timeout": {name: PARITY["start_timeout"] for name in stacks},
            "set_by": "the overrides file both configs load last (MLHUB_USER_CONFIG)",
            "server_reached": {name: s.reached for name, s in stacks.items()},
            "same_reach": True,
            "declared_differences": DECLARED,
        }
        before = snapshot(stacks)
        by_scenario: dict[str, Any] = results.setdefault("steps_by_scenario", {})
        if "single" not in args.skip:
            try:
                print("single spawn (with the floor)", flush=True)
                mark = snapshot(stacks)
                stock_net = stacks["stock"].hub.env["BENCH_STOCK_NETWORK"]
                times, order = scenarios.single_spawn(
                    stacks, args.reps, args.seed, failures, (client, IMAGE, stock_net)
                )
                results["floor"] = summary(times.pop("floor"))
                results["single_spawn"] = {name: summary(v) for name, v in times.items()}
                results["order"] = {"single": order}
                by_scenario["single"] = steps_of(stacks, mark)
            except Exception as exc:  # the other scenarios still run and are written
                scenario_failed(failures, "single", exc)
        if "concurrent" not in args.skip:
            try:
                for n in args.ns:
                    print(f"{n} concurrent spawns", flush=True)
                    mark = snapshot(stacks)
                    results["concurrent"][str(n)], order = scenarios.concurrent(
                        stacks, n, args.runs, args.seed, failures
                    )
                    by_scenario[f"concurrent-{n}"] = steps_of(stacks, mark)
                    try:
                        results["concurrent"][str(n)]["network_floor"] = scenarios.network_floor(
                            client, n, stacks["mlhub"].hub.hub_name
                        )
                    except Exception as exc:  # the next N still runs
                        scenario_failed(failures, f"network-floor-{n}", exc)
                    results.setdefault("order", {})[f"concurrent-{n}"] = order
            except Exception as exc:  # the other scenarios still run and are written
                scenario_failed(failures, "concurrent", exc)
        results["steps"] = steps_of(stacks, before)
        if "busy" not in args.skip:
            try:
                print("single spawn on a busy host", flush=True)
                results["busy_host"] = scenarios.busy_host(stacks, args.busy_reps, args.seed, failures)
            except Exception as exc:  # the other scenarios still run and are written
                scenario_failed(failures, "busy", exc)
        if "cleanup" not in args.skip:
            try:
                print(f"cleanup over {args.cleanup_objects} objects", flush=True)
                results["cleanup"] = scenarios.cleanup(
                    stacks["mlhub"], args.cleanup_objects, IMAGE, args.cleanup_spawns, failures
                )
            except Exception as exc:  # the other scenarios still run and are written
                scenario_failed(failures, "cleanup", exc)
        if "memory" not in args.skip:
            try:
                print("memory of an idle workspace per flavor", flush=True)
                results["idle_memory_mb"] = scenarios.idle_memory(
                    stacks["mlhub"], list(FLAVORS), args.memory_settle, failures
                )
            except Exception as exc:  # the other scenarios still run and are written
                scenario_failed(failures, "memory", exc)
        if "restart" not in args.skip:
            try:
                for name, stack in stacks.items():
                    print(f"{name}: hub restart with {args.restart_servers} servers", flush=True)
                    results["hub_restart"][name] = scenarios.hub_restart(
                        stack, args.restart_servers, failures
                    )
            except Exception as exc:  # the other scenarios still run and are written
                scenario_failed(failures, "restart", exc)
        if "container" not in args.skip:
            try:
                print("MLHub as one container", flush=True)
                box = container_stack(workdir, client, env)
                box.spawn_options = dict(cpu_options)
                extra.append(box)
                t0 = time.perf_counter()
                first = box.spawn_until_ready("first", "w")
                box.delete("first", "w")
                box.wait_gone(t0)
                both = {"mlhub": stacks["mlhub"], "mlhub-container": box}
                times, order = scenarios.single_spawn(
                    both, args.reps, args.seed, failures, None, scenario="container"
                )
                results["one_container"] = {
                    "first_spawn_s": first,
                    "single_spawn": summary(times["mlhub-container"]),
                    "host_single_spawn": summary(times["mlhub"]),
                    "order": order,
                    "concurrent": {},
                }
                for n in [n for n in args.ns if n <= 20] if "concurrent" not in args.skip else []:
                    print(f"{n} concurrent spawns, hub in a container vs on the host", flush=True)
                    out, _ = scenarios.concurrent(both, n, args.runs, args.seed, failures)
                    results["one_container"]["concurrent"][str(n)] = {
                        "container": out["mlhub-container"],
                        "host": out["mlhub"],
                    }
            except Exception as exc:  # the other scenarios still run and are written
                scenario_failed(failures, "container", exc)
    finally:
        for stack in [*stacks.values(), *extra]:
            try:
                stop_stack(stack, logs)
            except Exception as exc:  # keep going: the results are still written
                print(f"stopping {stack.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            try:
                remove_test_objects(client, stack.hub.hub_name)
            except Exception as exc:
                print(f"removing {stack.name}'s objects: {type(exc).__name__}: {exc}", file=sys.stderr)
    paths = report.write_all(args.out, stamp, results)
    print("\n".join(f"wrote {p}" for p in paths))
    print((args.out / f"{stamp}.md").read_text())
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = run(args)
    raise SystemExit(1 if results["failures"] else 0)


if __name__ == "__main__":
    main()
