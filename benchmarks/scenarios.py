"""What the benchmark measures, one function per scenario. Each returns plain numbers (and
appends every failed spawn, with its cause, to ``failures``); report.py turns them into the
results. Every loop is bounded in count and time; everything created is labelled with a
claimed test hub name, so a sweep removes what an interrupted run leaves.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import secrets
import subprocess
import sys
import threading
import time
from typing import Any

import docker
import requests

from benchmarks.stacks import DEADLINE_S, SpawnFailed, Stack, backoff
from benchmarks.stats import interleaved_order, pct, summary
from devtools.hubprocess import TEST_HUB_PREFIX, claim_hub_name

Failures = list[dict[str, Any]]
#: The cleanup scenario's made-up networks get /28 subnets of 10.213.0.0/16 (up to 4096 networks,
#: i.e. 81,920 objects); nothing else on a test engine uses that range.
NETWORK_BASE = "10.213"
#: The network floor's networks (concurrent N) get /28 subnets of 10.214.0.0/16, their own range.
NETWORK_FLOOR_BASE = "10.214"


def _spawn(
    stack: Stack, user: str, server: str, scenario: str, failures: Failures, **kw: Any
) -> float | None:
    try:
        return stack.spawn_until_ready(user, server, **kw)
    except Exception as exc:  # every failure is counted and explained, never dropped
        message = str(exc) if isinstance(exc, SpawnFailed) else f"{type(exc).__name__}: {exc}"
        failures.append(
            {
                "stack": stack.name,
                "scenario": scenario,
                "user": f"{user}/{server}",
                "cause": stack.cause(user, server, message),
            }
        )
        return None


# --- floor ---------------------------------------------------------------------------------

FLOOR_COMMAND = [
    "server",
    "--ServerApp.ip=0.0.0.0",
    "--ServerApp.port=8888",
    "--IdentityProvider.token=",
    "--ServerApp.open_browser=False",
]


def floor_once(client: docker.DockerClient, image: str, network: str) -> float:
    """``docker run`` of the workspace image (``jupyter server``, no hub) until its server answers."""
    origin = claim_hub_name(f"{TEST_HUB_PREFIX}f{secrets.token_hex(2)}")
    start = time.perf_counter()
    container = client.containers.run(
        image,
        FLOOR_COMMAND,
        entrypoint=["jupyter"],
        network=network,
        labels={"mlhub.origin": origin},
        detach=True,
    )
    try:
        container.reload()
        ip = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        for delay in backoff():
            try:
                if requests.get(f"http://{ip}:8888/api/status", timeout=10).status_code == 200:
                    return time.perf_counter() - start
            except requests.RequestException:
                pass
            if time.perf_counter() - start > DEADLINE_S:
                raise RuntimeError("floor container never answered")
            time.sleep(delay)
        raise AssertionError("unreachable")
    finally:
        container.remove(force=True)


# --- single spawn, interleaved with the floor ---------------------------------------------


def single_spawn(
    stacks: dict[str, Stack],
    reps: int,
    seed: int | None,
    failures: Failures,
    floor: tuple[docker.DockerClient, str, str] | None,
    scenario: str = "single",
) -> tuple[dict[str, list[float]], list[str]]:
    """One server at a time, *reps* per stack (and the floor), in interleaved order."""
    names = list(stacks) + (["floor"] if floor else [])
    order = interleaved_order(names, reps, seed)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, name in enumerate(order):
        if name == "floor":
            assert floor is not None
            times[name].append(floor_once(*floor))
            continue
        stack = stacks[name]
        t = _spawn(stack, scenario, f"s{i}", scenario, failures)
        if t is not None:
            times[name].append(t)
        stack.delete(scenario, f"s{i}")
        stack.wait_gone(time.perf_counter())
    return times, order


# --- concurrent spawns ---------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy so far (all cores)."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def concurrent_once(stack: Stack, n: int, run: int, failures: Failures) -> dict[str, float]:
    users = [f"c{n}r{run}u{i}" for i in range(n)]
    with cf.ThreadPoolExecutor(max_workers=min(n, 32)) as pool:
        list(pool.map(stack.token, users))
    busy0, start = machine_busy_seconds(), time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(lambda u: _spawn(stack, u, "w", f"concurrent-{n}", failures), users))
    all_ready = time.perf_counter() - start
    busy = (machine_busy_seconds() - busy0) / ((os.cpu_count() or 1) * all_ready)
    ok = [t for t in results if t is not None]
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=min(n, 20)) as pool:
        list(pool.map(lambda u: stack.delete(u, "w"), users))
    removed = stack.wait_gone(start)
    return {
        "all_ready": all_ready,
        "p50": pct(ok, 0.5),
        "p95": pct(ok, 0.95),
        "errors": n - len(ok),
        "stop_all": removed,
        "busy": busy,
    }


def concurrent(
    stacks: dict[str, Stack], n: int, runs: int, seed: int | None, failures: Failures
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    order = interleaved_order(list(stacks), runs, seed)
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in stacks}
    for i, name in enumerate(order):
        print(f"  {n} concurrent, run {i // len(stacks) + 1}/{runs}: {name}", flush=True)
        raw[name].append(concurrent_once(stacks[name], n, i, failures))
    out = {}
    for name, rows in raw.items():
        all_ready = summary([r["all_ready"] for r in rows])
        out[name] = {
            "all_ready_s": all_ready["median_s"],
            "all_ready": all_ready,
            "per_server_p50_s": summary([r["p50"] for r in rows])["median_s"],
            "per_server_p95_s": summary([r["p95"] for r in rows])["median_s"],
            "errors": int(sum(r["errors"] for r in rows)),
            "errors_per_run": [int(r["errors"]) for r in rows],
            "stop_all_s": summary([r["stop_all"] for r in rows])["median_s"],
            "machine_busy": summary([r["busy"] for r in rows])["median_s"],
            "runs": len(rows),
        }
    return out, order


def network_floor(client: docker.DockerClient, n: int, hub_name: str) -> dict[str, float]:
    """What *n* per-user networks cost the engine alone (docker-py, no hub): MLHub gives each new
    user a bridge network of their own, stock's servers share one. Created eight at a time like
    concurrent spawns do, each with its own subnet and not internal (as MLHub's), then removed.
    Seconds of wall time and CPU-seconds of the whole machine (the engine's firewall updates)."""
    api = client.api
    labels = {"mlhub.origin": f"{hub_name}-netfloor"}  # not the hub's: its cleanup never sees them
    names = [f"{hub_name}-netfloor-{i}" for i in range(n)]

    def make(i: int) -> None:
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=f"{NETWORK_FLOOR_BASE}.{i // 16}.{(i % 16) * 16}/28")]
        )
        api.create_network(names[i], driver="bridge", labels=labels, ipam=ipam)

    out: dict[str, float] = {"networks": n}
    try:
        busy0, t0 = machine_busy_seconds(), time.perf_counter()
        with cf.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(make, range(n)))
        out["create_s"] = time.perf_counter() - t0
        out["create_cpu_s"] = machine_busy_seconds() - busy0
        busy0, t0 = machine_busy_seconds(), time.perf_counter()
        with cf.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(api.remove_network, names))
        out["remove_s"] = time.perf_counter() - t0
        out["remove_cpu_s"] = machine_busy_seconds() - busy0
        return out
    finally:  # whatever a failure left behind (a failed removal must not hide the first error)
        for net in api.networks(filters={"label": [f"mlhub.origin={labels['mlhub.origin']}"]}):
            try:
                api.remove_network(net["Id"])
            except docker.errors.APIError as exc:
                print(f"network floor: could not remove {net.get('Name')}: {exc}", file=sys.stderr)


# --- hub restart with N running servers ---------------------------------------------------


def _running(stack: Stack) -> dict[str, str]:
    filters = {"label": f"mlhub.origin={stack.hub.hub_name}", "status": "running"}
    return {c["Id"]: c["Status"] for c in stack.client.api.containers(filters=filters)}


def hub_restart(stack: Stack, n: int, failures: Failures) -> dict[str, Any]:
    """Start *n* servers, restart the hub (and its proxy), and time: the hub answers, every
    server answers through the proxy (its route is back), every server is ready in the hub's
    model (polled); then count servers disturbed (container gone or restarted)."""
    users = [f"r{n}u{i}" for i in range(n)]
    with cf.ThreadPoolExecutor(max_workers=min(n, 10)) as pool:
        started = list(pool.map(lambda u: _spawn(stack, u, "w", "restart-setup", failures), users))
    users = [u for u, t in zip(users, started, strict=True) if t is not None]
    before = {cid: stack.client.api.inspect_container(cid)["State"]["StartedAt"] for cid in _running(stack)}
    stack.hub.stop()
    start = time.perf_counter()
    stack.hub.start(timeout=DEADLINE_S)
    answered = time.perf_counter() - start

    def route_back(user: str) -> float:
        url, headers = (
            stack.hub.at(f"/user/{user}/w/api/status"),
            {"Authorization": f"token {stack.token(user)}"},
        )
        for delay in backoff(0.1, 1.0):
            try:
                if requests.get(url, headers=headers, timeout=30).status_code == 200:
                    return time.perf_counter() - start
            except requests.RequestException:
                pass
            if time.perf_counter() - start > DEADLINE_S:
                failures.append(
                    {"stack": stack.name, "scenario": "restart", "user": user, "cause": "route not back"}
                )
                return float("nan")
            time.sleep(delay)
        return float("nan")

    with cf.ThreadPoolExecutor(max_workers=min(max(len(users), 1), 20)) as pool:
        routes = list(pool.map(route_back, users))
    polled = float("nan")
    for delay in backoff(0.2, 2.0):
        models = stack.hub.api("GET", "/users", params={"state": "active"}).json()
        ready = sum(
            1
            for m in models
            for s in (m.get("servers") or {}).values()
            if s.get("ready") and not s.get("pending")
        )
        if ready >= len(users):
            polled = time.perf_counter() - start
            break
        if time.perf_counter() - start > DEADLINE_S:
            break
        time.sleep(delay)
    after = {cid: stack.client.api.inspect_container(cid)["State"]["StartedAt"] for cid in _running(stack)}
    disturbed = sum(1 for cid, at in before.items() if after.get(cid) != at)
    with cf.ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda u: stack.delete(u, "w"), users))
    stack.wait_gone(time.perf_counter())
    return {
        "servers": len(users),
        "seconds_to_answer": answered,
        "seconds_to_all_routes": max(routes) if routes and all(r == r for r in routes) else float("nan"),
        "seconds_to_all_polled": polled,
        "disturbed": disturbed,
    }


# --- cleanup over many engine objects -------------------------------------------------------


def _make_object(api: Any, i: int, name: str, labels: dict[str, str], image: str) -> str:
    """Object *i* of the cleanup's mix: 5 % containers (created, never started, only among the
    orphans: odd *i*), 5 % networks (each its own /28), the rest volumes. Returns its kind."""
    if i % 20 == 1:
        api.create_container(image, command=["true"], labels=labels, name=name)
        return "container"
    if i % 20 == 3:  # its own /28 (the engine's default pools hold about 30 networks)
        k = i // 20
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=f"{NETWORK_BASE}.{k // 16}.{(k % 16) * 16}/28")]
        )
        api.create_network(name, driver="bridge", internal=True, labels=labels, ipam=ipam)
        return "network"
    api.create_volume(name=name, labels=labels)
    return "volume"


def make_objects(stack: Stack, total: int, image: str) -> dict[str, int]:
    """*total* labelled objects of this hub, half orphaned (their user does not exist)."""
    hub, api = stack.hub, stack.client.api
    stack.token("keeper")
    kinds = {"container": 0, "network": 0, "volume": 0}

    def make(i: int) -> str:
        owner = "keeper" if i % 2 == 0 else f"ghost{i}"
        labels = {
            "mlhub.origin": hub.hub_name,
            "mlhub.install": hub.install_id(),
            "mlhub.user": owner,
            "mlhub.server_name": f"x{i}",
        }
        return _make_object(api, i, f"{hub.hub_name}-bench-{i}", labels, image)

    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        for kind in pool.map(make, range(total)):
            kinds[kind] += 1
    return kinds


def engine_floor(stack: Stack, total: int, image: str) -> float:
    """Seconds the engine takes to remove objects like the cleanup's orphans directly (docker-py,
    no MLHub), in the state the cleanup left (its kept half present): the same mix (the odd
    indexes), kind by kind in the cleanup's order, one at a time as the cleanup removes them."""
    api = stack.client.api
    labels = {"mlhub.origin": f"{stack.hub.hub_name}-floor"}  # not the hub's: no cleanup sees them
    names: dict[str, list[str]] = {"container": [], "network": [], "volume": []}

    def make(i: int) -> None:
        name = f"{stack.hub.hub_name}-floor-{i}"
        names[_make_object(api, i, name, labels, image)].append(name)

    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(make, range(1, total, 2)))
    remove = {
        "container": lambda n: api.remove_container(n, force=True, v=True),
        "volume": api.remove_volume,
        "network": api.remove_network,
    }
    try:
        t0 = time.perf_counter()
        for kind in ("container", "volume", "network"):
            for name in names[kind]:
                remove[kind](name)
        return time.perf_counter() - t0
    finally:  # whatever a failure left behind
        flt = {"label": [f"mlhub.origin={labels['mlhub.origin']}"]}
        for c in api.containers(all=True, filters=flt):
            api.remove_container(c["Id"], force=True, v=True)
        for v in api.volumes(filters=flt).get("Volumes") or []:
            api.remove_volume(v["Name"])
        for n in api.networks(filters=flt):
            api.remove_network(n["Id"])


def cleanup(stack: Stack, total: int, image: str, spawns: int, failures: Failures) -> dict[str, Any]:
    """The cleanup service's ``users`` run over *total* objects, and spawns before and while it runs."""
    kinds = make_objects(stack, total, image)
    admin = stack.hub.ensure_user("benchadmin", admin=True)
    url, headers = f"{stack.hub.url}/services/cleanup-service/users", {"Authorization": f"token {admin}"}
    t = time.perf_counter()
    dry = requests.get(url, headers=headers, params={"dry_run": 1}, timeout=DEADLINE_S).json()
    dry_s = time.perf_counter() - t
    baseline, _ = single_spawn({"mlhub": stack}, spawns, None, failures, None, scenario="cleanup-baseline")
    report: dict[str, Any] = {}

    def run() -> None:
        t0 = time.perf_counter()
        report.update(requests.get(url, headers=headers, timeout=DEADLINE_S).json())
        report["seconds"] = time.perf_counter() - t0

    worker = threading.Thread(target=run)
    worker.start()
    during: list[float] = []
    for i in range(spawns):
        if not worker.is_alive() and i:
            break
        t_ = _spawn(stack, "during", f"d{i}", "cleanup-during", failures)
        if t_ is not None:
            during.append(t_)
        stack.delete("during", f"d{i}")
    worker.join()
    stack.wait_gone(time.perf_counter())
    floor_s = engine_floor(stack, total, image)
    base, dur = summary(baseline["mlhub"]), summary(during)
    return {
        "objects": total,
        "orphaned": total // 2,
        "kinds": kinds,
        "seconds": report.get("seconds", float("nan")),
        "engine_floor_seconds": floor_s,
        "dry_run_seconds": dry_s,
        "removed": len(report.get("removed", [])),
        "dry_run_removed": len(dry.get("removed", [])),
        "errors": len(report.get("errors", [])),
        "spawn_baseline": base,
        "spawn_during": dur,
        "spawn_slowdown": dur["median_s"] / base["median_s"] - 1
        if base["runs"] and dur["runs"]
        else float("nan"),
    }


# --- memory of an idle workspace, a busy host ----------------------------------------------


def idle_memory(stack: Stack, images: list[str], settle: float, failures: Failures) -> dict[str, float]:
    """MB used by one idle workspace of each image (engine's memory usage less page cache)."""
    out = {}
    for i, image in enumerate(images):
        if _spawn(stack, "memory", f"m{i}", "idle-memory", failures, options={"image": image}) is None:
            continue
        time.sleep(settle)
        (cid,) = [c for c in _running(stack)]
        stats = stack.client.api.stats(cid, stream=False)["memory_stats"]
        cache = (stats.get("stats") or {}).get("inactive_file", 0)
        out[image] = (stats.get("usage", 0) - cache) / 2**20
        stack.delete("memory", f"m{i}")
        stack.wait_gone(time.perf_counter())
    return out


def busy_host(stacks: dict[str, Stack], reps: int, seed: int | None, failures: Failures) -> dict[str, Any]:
    """Single spawns (interleaved) while one CPU burner per core spins."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)
    ]
    try:
        times, order = single_spawn(stacks, reps, seed, failures, None, scenario="busy")
    finally:
        for p in burners:
            p.kill()
            p.wait()
    return {"burners": len(burners), **{name: summary(v) for name, v in times.items()}, "order": order}
