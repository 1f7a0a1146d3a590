"""Soak: many users start, use and stop workspaces at random for a bounded time.

    python -m benchmarks.soak [--minutes 30] [--users 50] [--max-running 10] [--workers 6] [--seed 1] [--out DIR]

One MLHub hub (shipped config, real Docker, the stock test image). Workers pick a user and one
of their servers (the default one or a named one) at random: start it (the hub's progress
stream, then its API through the proxy: the spawn latency), use it, open an SSH session to it
through the gateway, stop it, or delete a named server with its volume; at most
``--max-running`` run at once (a few more for a moment: a worker's check and its start are not
one step). Before the clock starts, ``--workers`` users start, use and
stop a workspace at once (a warm-up: the hub's HTTP and Docker connection pools fill to what
that concurrency needs), and the quiet hub's open file descriptors are the baseline. Every
15 s the hub's memory (RSS), open file descriptors, the proxy's memory and the engine's
containers, volumes and networks are sampled. At the end every workspace is stopped and the run
checks that nothing leaked (any container left, running or not; more volumes or networks than
users, which own one each; fds above the quiet baseline + 20; hub or proxy RSS in the last third
of the run over 10 % above the middle third, i.e. still growing under steady load) and nothing was lost
(every accepted start became ready, every stop removed its container).

The cleanup service runs during the soak (every 5 minutes) and could remove a leak before the
end: every removal it logs is counted as a leak, and a final dry run of it (which removes
nothing) must find nothing either. Volumes must be exactly one per server ever started (the
shipped config keeps a deleted server's volume: ``remove_volume_on_delete`` is off); networks
at most one per user. Spawn latency is reported per third
of the run. Writes ``<out>/<date>-soak.md``; exits 1 if any request was refused or failed,
anything leaked or was lost.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import os
import random
import re
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import requests

from benchmarks.stacks import HostHub, Stack, keep_log
from benchmarks.stats import pct
from devtools.hubprocess import REPO, TEST_HUB_PREFIX, HubProcess, claim_hub_name, remove_test_objects
from devtools.openssh import SSH_OPTS as OPENSSH_OPTS
from devtools.openssh import keygen

IMAGE = "mlhub/test-stock:latest"
RESULTS = REPO / "benchmarks" / "results"
SERVERS = ("", "a", "b")  # each user's default server and two named ones
SSH_OPTS = [*OPENSSH_OPTS, "-o", "LogLevel=ERROR"]
#: What the cleanup service logs when it removes something (runner.py): each one is a leak here.
CLEANUP_REMOVAL = re.compile(r"cleanup-service\] (Removed \w+ \S+ of \S+|Deleted server \S+)")


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
    deletes: int = 0
    ssh: int = 0
    errors: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (t, seconds to ready)
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


def _ssh_key(user: str, keys: Path) -> Path:
    return keygen(keys / user)


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    # one date for the report and its log directory: the day the run started
    args.stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    client = docker.from_env(timeout=120)
    remove_test_objects(client)
    workdir = Path(tempfile.mkdtemp(prefix="mlhub-soak-"))
    hub = HostHub(
        workdir,
        claim_hub_name(f"{TEST_HUB_PREFIX}s{rng.randrange(16**4):04x}"),
        env={"MLHUB_WORKSPACE_IMAGE": IMAGE, "CLEANUP_INTERVAL_SECONDS": "300"},
    ).start()
    stack = Stack("mlhub", hub, client, "")
    proxy = _proxy_pid(hub.proc.pid)  # the same process for the whole run
    users = [f"soak{i:02d}" for i in range(args.users)]
    tokens = {u: hub.ensure_user(u) for u in users}
    keys = {u: _ssh_key(u, workdir) for u in users}
    for u in users:
        r = requests.post(
            f"{hub.url}/services/ssh/api/keys",
            headers={"Authorization": f"token {tokens[u]}"},
            json={"key": keys[u].with_suffix(".pub").read_text()},
            timeout=30,
        )
        assert r.status_code == 201, f"SSH key of {u}: {r.status_code} {r.text[:200]}"
    slots = [(u, s) for u in users for s in SERVERS]
    slot_locks = {slot: threading.Lock() for slot in slots}
    running: set[tuple[str, str]] = set()
    volumes_expected: set[tuple[str, str]] = set()  # servers ever started: one volume each
    in_hub: set[tuple[str, str]] = set()  # servers the hub has (started, not deleted)
    state_lock = threading.Lock()
    tally = Tally()
    samples: list[Sample] = []
    t0 = time.monotonic()
    stop_sampling = threading.Event()

    def sampler() -> None:
        while not stop_sampling.is_set():
            samples.append(sample(hub, client, t0, proxy))
            stop_sampling.wait(15)

    def use(user: str, server: str) -> None:
        path = f"/user/{user}/" + (f"{server}/" if server else "") + "api/status"
        try:
            got = requests.get(hub.at(path), headers={"Authorization": f"token {tokens[user]}"}, timeout=30)
            if got.status_code != 200:
                tally.error(f"use {user}/{server}: HTTP {got.status_code}")
        except requests.RequestException as exc:
            tally.error(f"use {user}/{server}: {exc}")
        tally.add("uses")

    def ssh(user: str, server: str) -> None:
        login = f"{user},{server}" if server else user
        done = subprocess.run(
            [
                "ssh",
                "-p",
                str(hub.ssh_port),
                *SSH_OPTS,
                "-i",
                str(keys[user]),
                f"{login}@127.0.0.1",
                "echo soak",
            ],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        if done.returncode != 0 or b"soak" not in done.stdout:
            tally.error(f"ssh {login}: exit {done.returncode} {done.stderr.decode(errors='replace')[:160]}")
        tally.add("ssh")

    def stop(user: str, server: str, delete: bool) -> None:
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        r = hub.api("DELETE", path, json={"remove": True} if delete else None)
        if r.status_code not in (202, 204):
            tally.error(
                f"{'delete' if delete else 'stop'} {user}/{server}: HTTP {r.status_code} {r.text[:120]}"
            )
            return
        try:
            hub.wait_stopped(user, server, timeout=120)
        except AssertionError as exc:
            tally.error(f"stop {user}/{server}: {str(exc)[:160]}", lost=True)
            return
        tally.add("deletes" if delete else "stops")
        with state_lock:
            running.discard((user, server))  # a deleted server's volume stays (remove_volume_on_delete off)
            if delete:
                in_hub.discard((user, server))
        labels = [f"mlhub.origin={hub.hub_name}", f"mlhub.user={user}", f"mlhub.server_name={server}"]
        if any(c["State"] == "running" for c in _containers(client, *labels)):
            tally.error(f"stop {user}/{server}: container still running", lost=True)

    def step(user: str, server: str) -> None:
        with state_lock:
            is_running = (user, server) in running
            crowded = len(running) >= args.max_running
        roll = rng.random()
        if not is_running:
            if server and roll < 0.15 and (user, server) in in_hub:
                stop(user, server, delete=True)  # delete a stopped named server (and its volume)
                return
            if crowded:
                return
            with state_lock:
                volumes_expected.add((user, server))
                in_hub.add((user, server))
            t_start = time.monotonic() - t0
            try:
                latency = stack.spawn_until_ready(user, server)
            except Exception as exc:
                tally.error(f"start {user}/{server}: {stack.cause(user, server, str(exc))[:300]}")
                return
            tally.add("starts")
            with tally.lock:
                tally.latencies.append((t_start, latency))
            with state_lock:
                running.add((user, server))
            use(user, server)
        elif roll < 0.45:
            use(user, server)
        elif roll < 0.65:
            ssh(user, server)
        else:
            stop(user, server, delete=bool(server) and roll > 0.9)

    def worker() -> None:
        while time.monotonic() < deadline:
            slot = rng.choice(slots)
            lock = slot_locks[slot]
            if not lock.acquire(blocking=False):
                continue
            try:
                step(*slot)
            except Exception as exc:  # a crash in the harness is an error of the run
                tally.error(f"{slot}: {type(exc).__name__}: {exc}")
            finally:
                lock.release()

    log_start = len(hub.log_text())
    try:
        with cf.ThreadPoolExecutor(args.workers) as pool:  # warm-up: pools fill to the run's concurrency
            list(
                pool.map(
                    lambda u: (stack.spawn_until_ready(u, ""), stop(u, "", False)), users[: args.workers]
                )
            )
        volumes_expected.update((u, "") for u in users[: args.workers])
        time.sleep(5)
        baseline = sample(hub, client, t0, proxy)
        threading.Thread(target=sampler, daemon=True).start()
        deadline = time.monotonic() + args.minutes * 60
        with cf.ThreadPoolExecutor(args.workers) as pool:
            for f in [pool.submit(worker) for _ in range(args.workers)]:
                f.result()
        for user, server in sorted(running):
            stop(user, server, delete=False)
        time.sleep(5)
        stop_sampling.set()
        final = sample(hub, client, t0, proxy)
        samples.append(final)
        admin = hub.ensure_user("soakadmin", admin=True)
        dry = requests.get(
            f"{hub.url}/services/cleanup-service/users",
            params={"dry_run": 1},
            headers={"Authorization": f"token {admin}"},
            timeout=300,
        ).json()
        volumes = client.api.volumes(filters={"label": f"mlhub.origin={hub.hub_name}"}).get("Volumes") or []
        # every labelled volume but the hub's claim on its name (mlhub.role=install)
        volume_slots = {
            ((v.get("Labels") or {}).get("mlhub.user"), (v.get("Labels") or {}).get("mlhub.server_name", ""))
            for v in volumes
            if not (v.get("Labels") or {}).get("mlhub.role")
        }
        network_users = [
            (n.get("Labels") or {}).get("mlhub.user")
            for n in client.api.networks(filters={"label": f"mlhub.origin={hub.hub_name}"})
            if not (n.get("Labels") or {}).get("mlhub.role")
        ]
        cleanup_removals = CLEANUP_REMOVAL.findall(hub.log_text()[log_start:])
    finally:
        hub.stop()
        keep_log(args.out / f"{args.stamp}-soak-logs", "hub", hub.log_text())
        remove_test_objects(client, hub.hub_name)

    rss_middle, rss_late = _middle_and_late(samples, "rss_mb")
    proxy_middle, proxy_late = _middle_and_late(samples, "proxy_rss_mb")
    leaks = []
    if final.containers:
        leaks.append(
            f"{final.containers} workspace containers left after every stop ({final.running} running)"
        )
    if extra := volume_slots - volumes_expected:
        leaks.append(f"{len(extra)} volumes of servers never started: {sorted(map(str, extra))[:5]}")
    if missing := volumes_expected - volume_slots:
        leaks.append(
            f"{len(missing)} volumes of started servers are gone (data lost): {sorted(map(str, missing))[:5]}"
        )
    if len(network_users) != len(set(network_users)) or not set(network_users) <= set(users):
        leaks.append(f"networks not one per soak user: {sorted(map(str, network_users))[:10]}")
    if cleanup_removals:
        leaks.append(
            f"the cleanup service removed {len(cleanup_removals)} leftovers during the run: {cleanup_removals[:5]}"
        )
    if dry.get("removed"):
        leaks.append(f"a final cleanup dry run would remove {len(dry['removed'])}: {dry['removed'][:3]}")
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
        args,
        samples,
        tally,
        baseline,
        (rss_middle, rss_late),
        (proxy_middle, proxy_late),
        final,
        leaks,
        len(cleanup_removals),
    )
    return 1 if leaks or tally.lost or tally.errors else 0


def _middle_and_late(samples: list[Sample], field: str) -> tuple[float, float]:
    """Medians of *field* over the middle and the last third of the run."""
    third = max(1, len(samples) // 3)
    values = [getattr(s, field) for s in samples]
    return statistics.median(values[third:-third] or values), statistics.median(values[-third:])


def latency_by_third(latencies: list[tuple[float, float]], minutes: float) -> list[str]:
    """Median and p95 spawn latency in each third of the run (by when the start began)."""
    rows = []
    span = max(t for t, _ in latencies) if latencies else minutes * 60
    for i, name in enumerate(("first", "middle", "last")):
        part = [s for t, s in latencies if i * span / 3 <= t <= (i + 1) * span / 3 + (i == 2)]
        rows.append(
            f"| {name} third | {len(part)} | {pct(part, 0.5):.2f} s | {pct(part, 0.95):.2f} s |"
            if part
            else f"| {name} third | 0 | — | — |"
        )
    return rows


def write_report(args, samples, tally, baseline, hub_rss, proxy_rss, final, leaks, cleanup_removed) -> None:
    rss_middle, rss_late = hub_rss
    stamp = args.stamp
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stamp}-soak.md"
    failed = leaks or tally.lost or tally.errors
    verdict = "; ".join(leaks) if leaks else ""
    verdict = (
        ("LEAK: " + verdict)
        if leaks
        else (
            "FAILED requests"
            if (tally.lost or tally.errors)
            else "nothing leaked, nothing lost, no request failed"
        )
    )
    lines = [
        f"# Soak run, {stamp}",
        "",
        f"`python -m benchmarks.soak --minutes {args.minutes} --users {args.users} --max-running {args.max_running} "
        f"--workers {args.workers} --seed {args.seed}` on {os.cpu_count()} cores; image `{IMAGE}`; "
        f"servers per user: default + {len(SERVERS) - 1} named. Exit status: {1 if failed else 0}.",
        "",
        "| result | value |",
        "| --- | --- |",
        f"| starts (each became ready) / API uses / SSH sessions / stops / deletes | {tally.starts} / {tally.uses} / {tally.ssh} / {tally.stops} / {tally.deletes} |",
        f"| errors (refused or failed requests) | {len(tally.errors)} |",
        f"| lost (accepted but never ready, or not removed) | {len(tally.lost)} |",
        f"| removals by the cleanup service during the run (each a leak) | {cleanup_removed} |",
        f"| hub RSS: quiet after warm-up / median of middle third → last third / quiet at the end | "
        f"{baseline.rss_mb:.1f} MB / {rss_middle:.1f} MB → {rss_late:.1f} MB / {final.rss_mb:.1f} MB |",
        f"| hub open fds: quiet after warm-up → quiet at the end (max during the run) | "
        f"{baseline.fds} → {final.fds} ({max(s.fds for s in samples)}) |",
        f"| proxy RSS: median of middle third → last third | {proxy_rss[0]:.1f} MB → {proxy_rss[1]:.1f} MB |",
        f"| after the last stop: workspace containers (running) / volumes / networks | "
        f"{final.containers} ({final.running}) / {final.volumes} / {final.networks} |",
        f"| verdict | {verdict} |",
        "",
        f"Hub log (gzip): `{stamp}-soak-logs/hub.log.gz`, next to this file.",
        "",
        "## Spawn latency per third of the run (request until the server answers through the proxy)",
        "",
        "| part | starts | median | p95 |",
        "| --- | ---: | ---: | ---: |",
        *latency_by_third(tally.latencies, args.minutes),
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
        lines += ["", "## Errors", ""] + [f"- {e}" for e in (tally.lost + tally.errors)[:100]]
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())
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
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="where the report goes (default benchmarks/results)"
    )
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
