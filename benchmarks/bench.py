"""MLHub vs stock JupyterHub + DockerSpawner + CHP, same machine, same image, same run.

    bash benchmarks/run.sh [--quick] [--max-concurrent 50] [--idle 100]

Writes benchmarks/results/<date>.md (scenario, stock, MLHub, ratio, machine) and PNG plots
next to it. Every loop is bounded in count and time; traffic goes only to loopback and to the
containers this run creates, and everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import http.client
import os
import platform
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import requests

from tests.hubprocess import REPO, TEST_HUB_PREFIX, HubProcess, remove_test_objects

RESULTS = REPO / "benchmarks" / "results"
DEADLINE_S = 300  # no single wait is longer than this


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


@dataclass
class Row:
    scenario: str
    stock: float
    mlhub: float
    unit: str
    better: str = "lower"
    note: str = ""

    @property
    def ratio(self) -> str:
        if not self.stock or not self.mlhub or self.stock != self.stock or self.mlhub != self.mlhub:
            return "n/a"
        return f"{self.stock / self.mlhub:.2f}x" if self.better == "lower" else f"{self.mlhub / self.stock:.2f}x"


@dataclass
class Bench:
    name: str
    hub: HubProcess
    client: docker.DockerClient
    samples: dict[str, list[float]] = field(default_factory=dict)

    def token(self, user: str) -> str:
        return self.hub.ensure_user(user)

    def ready_url(self, user: str, server: str) -> str:
        return f"{self.hub.url}/user/{user}/{server}/api/status"

    def spawn_until_ready(self, user: str, server: str) -> float:
        """Seconds from the spawn request until the server answers through the hub's proxy.

        Waits on the hub's JSON model (cheap) every 0.1 s, then on the proxied URL: polling
        the proxied URL of a pending server makes the hub render its "pending" page each time,
        which with 50 pollers is load the benchmark itself would add.
        """
        token = self.token(user)
        start = time.perf_counter()
        r = self.hub.api("POST", f"/users/{user}/servers/{server}", token=token, json={}, timeout=DEADLINE_S)
        if r.status_code not in (201, 202):
            raise RuntimeError(f"{self.name} spawn {user}/{server}: {r.status_code} {r.text[:200]}")
        headers = {"Authorization": f"token {token}"}
        ready = r.status_code == 201
        while time.perf_counter() - start < DEADLINE_S:
            try:
                if not ready:
                    model = self.hub.api("GET", f"/users/{user}/servers/{server}", token=token).json()
                    ready = bool(model.get("ready"))
                    if not ready and not model.get("pending"):
                        raise RuntimeError(f"{self.name} {user}/{server} failed to start: {model}")
                if ready and requests.get(self.ready_url(user, server), headers=headers, timeout=10).status_code == 200:
                    return time.perf_counter() - start
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} {user}/{server} not ready in {DEADLINE_S}s")

    def delete(self, user: str, server: str) -> None:
        self.hub.api("DELETE", f"/users/{user}/servers/{server}", json={"remove": True})

    def containers(self) -> list:
        return self.client.containers.list(all=True, filters={"label": f"mlhub.origin={self.hub.hub_name}"})

    def wait_gone(self, start: float) -> float:
        while self.containers():
            if time.perf_counter() - start > DEADLINE_S:
                raise RuntimeError(f"{self.name}: containers still there after {DEADLINE_S}s")
            time.sleep(0.05)
        return time.perf_counter() - start


def single_spawn(b: Bench, reps: int) -> list[float]:
    times = []
    for i in range(reps):
        times.append(b.spawn_until_ready("single", f"s{i}"))
        b.delete("single", f"s{i}")
        b.wait_gone(time.perf_counter())
    return times


def concurrent_spawn(b: Bench, n: int) -> tuple[float, list[float], int, float]:
    """(time until all ready, per-server times, errors, time until all removed)."""
    users = [f"c{n}u{i}" for i in range(n)]
    for user in users:
        b.token(user)
    start = time.perf_counter()
    errors = 0
    per_server: list[float] = []
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        for future in cf.as_completed([pool.submit(b.spawn_until_ready, u, "w") for u in users]):
            try:
                per_server.append(future.result())
            except Exception as exc:
                errors += 1
                print(f"  {b.name}: {exc}")
    all_ready = time.perf_counter() - start
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=min(n, 20)) as pool:
        list(pool.map(lambda u: b.delete(u, "w"), users))
    removed = b.wait_gone(start)
    return all_ready, per_server, errors, removed


def latencies(url: str, headers: dict[str, str], count: int) -> list[float]:
    """Sequential keep-alive GETs (bounded by count); seconds per request."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    conn = http.client.HTTPConnection(name, int(port or 80), timeout=10)
    out = []
    for _ in range(count):
        t = time.perf_counter()
        conn.request("GET", "/" + rest, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status}")
        out.append(time.perf_counter() - t)
    conn.close()
    return out


def proxy_path(b: Bench, count: int) -> tuple[list[float], list[float]]:
    token = b.token("proxy")
    b.spawn_until_ready("proxy", "p")
    headers = {"Authorization": f"token {token}"}
    route = b.hub.api("GET", "/users/proxy").json()["servers"]["p"]["url"]
    (container,) = [c for c in b.containers() if c.status == "running"]
    if container.attrs["HostConfig"].get("PortBindings"):
        port = container.attrs["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"]
        direct = f"http://127.0.0.1:{port}{route}api/status"
    else:
        ip = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        direct = f"http://{ip}:8888{route}api/status"
    latencies(direct, headers, 50)  # warm both paths (token cache)
    latencies(b.ready_url("proxy", "p"), headers, 50)
    via_hub = latencies(b.ready_url("proxy", "p"), headers, count)
    straight = latencies(direct, headers, count)
    b.delete("proxy", "p")
    b.wait_gone(time.perf_counter())
    return via_hub, straight


def cleanup_run(b: Bench, total: int) -> tuple[float, float, int]:
    """MLHub only: `total` labelled objects, half of them orphaned; (dry run s, run s, removed)."""
    admin = b.hub.ensure_user("benchadmin", admin=True)
    b.token("keeper")
    origin = b.hub.hub_name
    half = total // 2
    containers = total // 5
    made = 0
    for i in range(total):
        owner = "keeper" if i < half else f"ghost{i}"
        labels = {"mlhub.origin": origin, "mlhub.user": owner, "mlhub.server_name": f"x{i}"}
        if i >= half and i % (total // containers) == 0:  # orphaned containers among the orphans
            b.client.api.create_container("mlhub/workspace:latest", command=["true"], labels=labels, name=f"{origin}-bench-{i}")
        else:
            b.client.api.create_volume(name=f"{origin}-bench-{i}", labels=labels)
        made += 1
    url = f"{b.hub.url}/services/cleanup-service/users"
    headers = {"Authorization": f"token {admin}"}
    t = time.perf_counter()
    dry = requests.get(url, headers=headers, params={"dry_run": 1}, timeout=DEADLINE_S).json()
    dry_s = time.perf_counter() - t
    t = time.perf_counter()
    report = requests.get(url, headers=headers, timeout=DEADLINE_S).json()
    run_s = time.perf_counter() - t
    assert len(dry["removed"]) == len(report["removed"]), "dry run and run disagree"
    return dry_s, run_s, len(report["removed"])


def hub_usage(b: Bench, idle: int, settle: float = 20) -> tuple[float, float, int]:
    """(hub+proxy RSS MB, hub CPU % while idle, errors) with `idle` servers running."""
    users = [f"idle{i}" for i in range(idle)]
    for user in users:
        b.token(user)
    errors = 0
    with cf.ThreadPoolExecutor(max_workers=10) as pool:
        for future in [pool.submit(b.spawn_until_ready, u, "i") for u in users]:
            try:
                future.result()
            except Exception:
                errors += 1
    time.sleep(5)
    pids = _hub_pids(b.hub.proc.pid)
    cpu0 = sum(_cpu_seconds(p) for p in pids)
    time.sleep(settle)
    cpu = (sum(_cpu_seconds(p) for p in pids) - cpu0) / settle * 100
    rss = sum(_rss_mb(p) for p in pids)
    with cf.ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda u: b.delete(u, "i"), users))
    b.wait_gone(time.perf_counter())
    return rss, cpu, errors


def _hub_pids(root: int) -> list[int]:
    pids, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        for child in Path("/proc").glob("[0-9]*"):
            try:
                if int((child / "stat").read_text().split(") ")[1].split()[1]) == parent:
                    pids.append(int(child.name))
                    frontier.append(int(child.name))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def plot(path: Path, series: dict[str, list[float]], title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot(list(series.values()), tick_labels=list(series.keys()), orientation="horizontal")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_lines(path: Path, xs: list[int], series: dict[str, list[float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_title(title)
    ax.set_xlabel("concurrent spawns")
    ax.set_ylabel("seconds until all ready")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def machine() -> str:
    mem = Path("/proc/meminfo").read_text().split()[1]
    info = docker.from_env().info()
    return (
        f"{os.cpu_count()} cores, {int(mem) // 1024 // 1024} GiB, {platform.platform()}, "
        f"Docker {info.get('ServerVersion')}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (a smoke run)")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--max-concurrent", type=int, default=50)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if args.quick:
        args.reps, args.max_concurrent, args.idle, args.requests = 2, 5, 5, 200
    ns = [n for n in (1, 5, 10, 20, 50) if n <= args.max_concurrent]

    client = docker.from_env(timeout=120)
    remove_test_objects(client)
    workdir = Path(tempfile.mkdtemp(prefix="mlhub-bench-"))
    benches = {}
    for name, config in (("stock", REPO / "benchmarks" / "stock_config.py"), ("mlhub", REPO / "jupyterhub_config.py")):
        hub_name = f"{TEST_HUB_PREFIX}b{secrets.token_hex(2)}"
        (workdir / name).mkdir()
        hub = HubProcess(workdir / name, hub_name, env={"CLEANUP_INTERVAL_SECONDS": "-1"}, config=config)
        benches[name] = Bench(name, hub.start(), client)
    rows: list[Row] = []
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    try:
        print("scenario 1: single spawn")
        single = {name: single_spawn(b, args.reps) for name, b in benches.items()}
        rows.append(Row(f"1. spawn-to-ready, one server, median of {args.reps}", statistics.median(single["stock"]), statistics.median(single["mlhub"]), "s"))
        rows.append(Row(f"1. spawn-to-ready, one server, p95 of {args.reps}", pct(single["stock"], 0.95), pct(single["mlhub"], 0.95), "s"))
        plot(RESULTS / f"{stamp}-single-spawn.png", single, "Spawn to ready (one server)", "seconds")

        print("scenarios 2 and 3: concurrent spawns, stop and delete")
        all_ready: dict[str, list[float]] = {name: [] for name in benches}
        last_per_server: dict[str, list[float]] = {}
        for n in ns:
            for name, b in benches.items():
                total, per_server, errors, removed = concurrent_spawn(b, n)
                all_ready[name].append(total)
                last_per_server[name] = per_server
                b.samples[f"n{n}"] = [total, pct(per_server, 0.5), pct(per_server, 0.95), errors, removed]
            s, m = benches["stock"].samples[f"n{n}"], benches["mlhub"].samples[f"n{n}"]
            rows.append(Row(f"2. {n} concurrent spawns: all ready", s[0], m[0], "s"))
            rows.append(Row(f"2. {n} concurrent spawns: p50 / p95 per server", s[1], m[1], "s", note=f"p95 {s[2]:.2f} / {m[2]:.2f} s"))
            rows.append(Row(f"2. {n} concurrent spawns: errors", s[3], m[3], "count", note="lower is better"))
            rows.append(Row(f"3. stop and delete {n} servers: all containers gone", s[4], m[4], "s"))
        plot_lines(RESULTS / f"{stamp}-concurrent.png", ns, all_ready, "Time until all servers are ready")
        plot(RESULTS / f"{stamp}-concurrent-per-server.png", last_per_server, f"Per-server spawn time, {ns[-1]} concurrent", "seconds")

        print("scenario 4: proxy path")
        for b in benches.values():
            via, direct = proxy_path(b, args.requests)
            b.samples["proxy"] = [pct(via, 0.5) * 1000, pct(via, 0.99) * 1000, pct(direct, 0.5) * 1000, pct(direct, 0.99) * 1000, len(via) / sum(via)]
        s, m = benches["stock"].samples["proxy"], benches["mlhub"].samples["proxy"]
        rows.append(Row("4. request through the hub: p50", s[0], m[0], "ms", note=f"direct p50 {s[2]:.2f} / {m[2]:.2f} ms"))
        rows.append(Row("4. request through the hub: p99", s[1], m[1], "ms", note=f"direct p99 {s[3]:.2f} / {m[3]:.2f} ms"))
        rows.append(Row("4. proxy overhead at p50 (hub - direct)", s[0] - s[2], m[0] - m[2], "ms"))
        rows.append(Row("4. requests per second through the hub (1 client)", s[4], m[4], "req/s", better="higher"))

        print("scenario 5: cleanup")
        dry_s, run_s, removed = cleanup_run(benches["mlhub"], 500)
        rows.append(Row("5. cleanup /users over 500 objects (250 orphaned): dry run", float("nan"), dry_s, "s", note="stock has no cleanup service"))
        rows.append(Row(f"5. cleanup /users over 500 objects: run ({removed} removed)", float("nan"), run_s, "s", note="stock has no cleanup service"))

        print(f"scenario 7: hub at {args.idle} idle servers")
        for b in benches.values():
            b.samples["idle"] = list(hub_usage(b, args.idle))
        s, m = benches["stock"].samples["idle"], benches["mlhub"].samples["idle"]
        rows.append(Row(f"7. hub + proxy memory at {args.idle} idle servers", s[0], m[0], "MB", note=f"spawn errors {s[2]:.0f} / {m[2]:.0f}"))
        rows.append(Row(f"7. hub + proxy CPU at {args.idle} idle servers", s[1], m[1], "% of a core"))
    finally:
        for b in benches.values():
            b.hub.stop()
            remove_test_objects(client, b.hub.hub_name)
    write_results(RESULTS / f"{stamp}.md", rows, args)


def write_results(path: Path, rows: list[Row], args: argparse.Namespace) -> None:
    lines = [
        f"# MLHub vs stock JupyterHub + DockerSpawner + CHP — {path.stem}",
        "",
        f"Machine: {machine()}. Same workspace image (`mlhub/workspace:latest`), same JupyterHub,",
        f"same run. Command: `bash benchmarks/run.sh{' --quick' if args.quick else ''}`. Ratio: how many",
        "times better MLHub is (stock / MLHub for times, MLHub / stock for rates).",
        "",
        "| scenario | stock | MLHub | ratio | unit | note |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        fmt = (lambda v: "—" if v != v else f"{v:.3g}") if row.unit != "count" else (lambda v: f"{v:.0f}")
        lines.append(f"| {row.scenario} | {fmt(row.stock)} | {fmt(row.mlhub)} | {row.ratio} | {row.unit} | {row.note} |")
    lines += ["", f"Plots: `{path.stem}-single-spawn.png`, `{path.stem}-concurrent.png`, `{path.stem}-concurrent-per-server.png`.", ""]
    path.write_text("\n".join(lines))
    print(path.read_text())


if __name__ == "__main__":
    main()

