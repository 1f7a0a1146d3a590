"""Soak: many users start, use and stop workspaces at random for a bounded time.

    python -m benchmarks.soak [--minutes 30] [--users 50] [--max-running 10] [--workers 6] [--seed 1]

One MLHub hub (shipped config, real Docker, the stock test image). Workers pick users at
random: start a stopped workspace and call its API, or stop a running one; at most
``--max-running`` run at once (a few more for a moment: a worker's check and its start are not
one step). Before the clock starts, ``--workers`` users start, use and
stop a workspace at once (a warm-up: the hub's HTTP and Docker connection pools fill to what
that concurrency needs), and the quiet hub's open file descriptors are the baseline. Every
15 s the hub's memory (RSS), open file descriptors, the proxy's memory and the engine's
containers, volumes and networks are sampled. At the end every workspace is stopped and the run
checks that nothing leaked (any container left, running or not; more volumes or networks than
users, which own one each; fds above the quiet baseline + 20; hub or proxy RSS in the last third
of the run over 10 % above the middle third, i.e. still growing under steady load) and nothing was lost
(every accepted start became ready, every stop removed its container). Writes
``benchmarks/results/<date>-soak.md``; exits 1 if anything leaked or was lost.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import os
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import requests

from devtools.hubprocess import REPO, TEST_HUB_PREFIX, HubProcess, claim_hub_name, remove_test_objects

IMAGE = "mlhub/test-stock:latest"
RESULTS = REPO / "benchmarks" / "results"


@dataclass
class Sample:
    t: float
    rss_mb: float
    fds: int
    running: int
    containers: int
    volumes: int
    networks: int
    proxy_rss_mb: float


@dataclass
class Tally:
    starts: int = 0
    uses: int = 0
    stops: int = 0
    errors: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + n)

    def error(self, text: str, lost: bool = False) -> None:
        with self.lock:
            (self.lost if lost else self.errors).append(text)


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _proxy_pid(hub_pid: int) -> int | None:
    """The configurable-http-proxy the hub started (its child)."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == hub_pid and b"configurable-http-proxy" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


def _containers(client: docker.DockerClient, *labels: str) -> list[dict]:
    """Containers by label, as the engine lists them (docker-py's ``containers.list`` inspects
    each one afterwards, which fails for a container removed in between)."""
    return client.api.containers(all=True, filters={"label": list(labels)})


def sample(hub: HubProcess, client: docker.DockerClient, t0: float, proxy: int | None) -> Sample:
    pid = hub.proc.pid
    origin = f"mlhub.origin={hub.hub_name}"
    containers = _containers(client, origin)
    return Sample(
        t=time.monotonic() - t0,
        rss_mb=_proc_rss_mb(pid),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        running=sum(c["State"] == "running" for c in containers),
        containers=len(containers),
        volumes=len(client.api.volumes(filters={"label": origin}).get("Volumes") or []),
        networks=len(client.api.networks(filters={"label": origin})),
        proxy_rss_mb=_proc_rss_mb(proxy) if proxy else 0.0,
    )


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    client = docker.from_env(timeout=120)
    remove_test_objects(client)
    workdir = Path(tempfile.mkdtemp(prefix="mlhub-soak-"))
    hub = HubProcess(
        workdir,
        claim_hub_name(f"{TEST_HUB_PREFIX}s{rng.randrange(16**4):04x}"),
        env={"MLHUB_WORKSPACE_IMAGE": IMAGE, "CLEANUP_INTERVAL_SECONDS": "300"},
    ).start()
    proxy = _proxy_pid(hub.proc.pid)  # the same process for the whole run
    users = [f"soak{i:02d}" for i in range(args.users)]
    tokens = {u: hub.ensure_user(u) for u in users}
    user_locks = {u: threading.Lock() for u in users}
    running: set[str] = set()
    running_lock = threading.Lock()
    tally = Tally()
    samples: list[Sample] = []
    t0 = time.monotonic()
    stop_sampling = threading.Event()

    def sampler() -> None:
        while not stop_sampling.is_set():
            samples.append(sample(hub, client, t0, proxy))
            stop_sampling.wait(15)

    def use(user: str) -> None:
        got = requests.get(
            hub.at(f"/user/{user}/api/status"), headers={"Authorization": f"token {tokens[user]}"}, timeout=30
        )
        if got.status_code != 200:
            tally.error(f"use {user}: {got.status_code}")
        tally.add("uses")

    def step(user: str) -> None:
        token = tokens[user]
        with running_lock:
            is_running = user in running
            crowded = len(running) >= args.max_running
        if not is_running and crowded:
            return
        if not is_running:
            r = hub.api("POST", f"/users/{user}/server", token=token, json={})
            if r.status_code not in (201, 202):
                tally.error(f"start {user}: {r.status_code} {r.text[:120]}")
                return
            try:
                hub.wait_ready(user, "", timeout=120)
            except AssertionError as exc:
                tally.error(f"start {user} accepted, never ready: {str(exc)[:160]}", lost=True)
                return
            tally.add("starts")
            with running_lock:
                running.add(user)
            for _ in range(rng.randint(1, 3)):
                use(user)
        elif rng.random() < 0.5:
            use(user)
        else:
            try:
                hub.stop_server(user)
            except AssertionError as exc:
                tally.error(f"stop {user}: {str(exc)[:160]}", lost=True)
                return
            tally.add("stops")
            with running_lock:
                running.discard(user)
            left = _containers(client, f"mlhub.origin={hub.hub_name}", f"mlhub.user={user}")
            if any(c["State"] == "running" for c in left):
                tally.error(f"stop {user}: container still running", lost=True)

    def warm_up(user: str) -> None:
        r = hub.api("POST", f"/users/{user}/server", token=tokens[user], json={})
        assert r.status_code in (201, 202), f"warm-up start {user}: {r.status_code} {r.text[:200]}"
        hub.wait_ready(user, "", timeout=120)
        use(user)
        hub.stop_server(user)

    def worker() -> None:
        while time.monotonic() < deadline:
            user = rng.choice(users)
            lock = user_locks[user]
            if not lock.acquire(blocking=False):
                continue
            try:
                step(user)
            except Exception as exc:  # a crash in the harness is an error of the run
                tally.error(f"{user}: {type(exc).__name__}: {exc}")
            finally:
                lock.release()

    try:
        with cf.ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(warm_up, users[: args.workers]))
        time.sleep(5)
        baseline = sample(hub, client, t0, proxy)
        threading.Thread(target=sampler, daemon=True).start()
        deadline = time.monotonic() + args.minutes * 60
        with cf.ThreadPoolExecutor(args.workers) as pool:
            for f in [pool.submit(worker) for _ in range(args.workers)]:
                f.result()
        for user in sorted(running):
            hub.stop_server(user)
        time.sleep(5)
        stop_sampling.set()
        final = sample(hub, client, t0, proxy)
        samples.append(final)
    finally:
        hub.stop()
        remove_test_objects(client, hub.hub_name)

    rss_middle, rss_late = _middle_and_late(samples, "rss_mb")
    proxy_middle, proxy_late = _middle_and_late(samples, "proxy_rss_mb")
    leaks = []
    if final.containers:
        leaks.append(
            f"{final.containers} workspace containers left after every stop ({final.running} running)"
        )
    if final.volumes > args.users or final.networks > args.users:
        leaks.append(
            f"{final.volumes} volumes and {final.networks} networks for {args.users} users (one each)"
        )
    if proxy_late > proxy_middle * 1.10:
        leaks.append(
            f"proxy RSS still growing: {proxy_middle:.1f} MB → {proxy_late:.1f} MB from the middle to the last third"
        )
    if final.fds > baseline.fds + 20:
        leaks.append(
            f"open fds grew from {baseline.fds} (quiet, after warm-up) to {final.fds} (quiet, at the end)"
        )
    if rss_late > rss_middle * 1.10:
        leaks.append(
            f"hub RSS still growing: {rss_middle:.1f} MB → {rss_late:.1f} MB from the middle to the last third"
        )
    write_report(
        args, samples, tally, baseline, (rss_middle, rss_late), (proxy_middle, proxy_late), final, leaks
    )
    return 1 if leaks or tally.lost else 0


def _middle_and_late(samples: list[Sample], field: str) -> tuple[float, float]:
    """Medians of *field* over the middle and the last third of the run."""
    third = max(1, len(samples) // 3)
    values = [getattr(s, field) for s in samples]
    return statistics.median(values[third:-third] or values), statistics.median(values[-third:])


def write_report(args, samples, tally, baseline, hub_rss, proxy_rss, final, leaks) -> None:
    rss_middle, rss_late = hub_rss
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    path = RESULTS / f"{stamp}-soak.md"
    lines = [
        f"# Soak run, {stamp}",
        "",
        f"`python -m benchmarks.soak --minutes {args.minutes} --users {args.users} --max-running {args.max_running} "
        f"--workers {args.workers} --seed {args.seed}` on {os.cpu_count()} cores; image `{IMAGE}`.",
        "",
        "| result | value |",
        "| --- | --- |",
        f"| starts (each became ready) / API uses / stops | {tally.starts} / {tally.uses} / {tally.stops} |",
        f"| errors (refused or failed requests) | {len(tally.errors)} |",
        f"| lost (accepted but never ready, or not removed) | {len(tally.lost)} |",
        f"| hub RSS: quiet after warm-up / median of middle third → last third / quiet at the end | "
        f"{baseline.rss_mb:.1f} MB / {rss_middle:.1f} MB → {rss_late:.1f} MB / {final.rss_mb:.1f} MB |",
        f"| hub open fds: quiet after warm-up → quiet at the end (max during the run) | "
        f"{baseline.fds} → {final.fds} ({max(s.fds for s in samples)}) |",
        f"| proxy RSS: median of middle third → last third | {proxy_rss[0]:.1f} MB → {proxy_rss[1]:.1f} MB |",
        f"| after the last stop: workspace containers (running) / volumes / networks | "
        f"{final.containers} ({final.running}) / {final.volumes} / {final.networks} (one volume and network per user) |",
        f"| verdict | {'LEAK: ' + '; '.join(leaks) if leaks else ('LOST requests' if tally.lost else 'nothing leaked, nothing lost')} |",
        "",
        "## Samples (every 15 s)",
        "",
        "| t (s) | hub RSS (MB) | hub fds | proxy RSS (MB) | running | containers | volumes | networks |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {s.t:.0f} | {s.rss_mb:.1f} | {s.fds} | {s.proxy_rss_mb:.1f} | {s.running} | {s.containers} | {s.volumes} | {s.networks} |"
        for s in samples
    ]
    if tally.errors or tally.lost:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in (tally.lost + tally.errors)[:50]]
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="how long workers act (default 30)")
    parser.add_argument("--users", type=int, default=50, help="hub users (default 50)")
    parser.add_argument(
        "--max-running", type=int, default=10, help="workspaces running at once at most (default 10)"
    )
    parser.add_argument("--workers", type=int, default=6, help="concurrent clients (default 6)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args()
    if not (
        0 < args.minutes <= 240
        and 0 < args.users <= 500
        and 0 < args.max_running <= 100
        and 0 < args.workers <= 50
    ):
        parser.error("--minutes 0-240, --users 1-500, --max-running 1-100, --workers 1-50")
    raise SystemExit(run(args))


if __name__ == "__main__":
    main()
