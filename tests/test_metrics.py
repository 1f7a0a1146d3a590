"""MLHub's series on a real hub's /hub/metrics after a real spawn, stop and delete; subnet
choice when two processes create networks on the engine at once."""

from __future__ import annotations

import asyncio
import ipaddress
import multiprocessing
import subprocess
import time

import docker
import pytest
import requests

from benchmarks.steps import parse_histograms
from devtools.hubprocess import new_hub_name
from devtools.openssh import SSH_OPTS, keygen
from mlhub.core.steps import SPAWN_STEPS

STOP_AND_DELETE_STEPS = ("stop", "remove", "volume", "network")


@pytest.fixture(scope="module")
def metrics_hub(hub_factory):
    return hub_factory(env={"MLHUB_ADMIN_PASSWORD": "metrics-Admin-pw", "CLEANUP_INTERVAL_SECONDS": "-1"})


def scrape(hub) -> str:
    r = hub.api("GET", "/../metrics")
    if r.status_code == 404:
        r = hub.api("GET", "/metrics")
    assert r.status_code == 200, r.text
    return r.text


def test_steps_and_workspaces_on_hub_metrics(metrics_hub) -> None:
    hub = metrics_hub
    hub.ensure_user("meter")
    r = hub.spawn("meter", "one", {})
    assert r.status_code in (201, 202), r.text
    running = scrape(hub)
    assert 'mlhub_workspaces{image="' in running and 'state="running"' in running
    hub.stop_server("meter", "one", remove=True)

    # the deletion (volume, network) runs after the hub has answered the DELETE
    deadline = time.monotonic() + 60
    while True:
        text = scrape(hub)
        hist = parse_histograms(text)
        if "step=network" in hist.get("mlhub_stop_step_seconds", {}) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    spawn = hist["mlhub_spawn_step_seconds"]
    for step in SPAWN_STEPS:
        assert spawn[f"step={step}"]["count"] >= 1, (step, spawn)
    stop = hist["mlhub_stop_step_seconds"]
    for step in STOP_AND_DELETE_STEPS:
        assert stop.get(f"step={step}", {}).get("count", 0) >= 1, (step, stop, hub.log_tail(60))
    for state in ("running", "pending", "stopped"):
        assert f'state="{state}"' in text
    assert "mlhub_workspace_expiries_total" in text
    log = hub.log_tail(400)
    assert "Started meter:one in " in log and "first_answer" in log
    assert "Stopped meter:one in " in log and "Deleted meter:one in " in log


def scrape_until(hub, wanted: str, timeout: float = 60) -> str:
    """The services' series are fetched by the hub in the background at scrape time."""
    deadline = time.monotonic() + timeout
    while True:
        text = scrape(hub)
        if wanted in text or time.monotonic() > deadline:
            return text
        time.sleep(1)


def test_cleanup_removals_and_ssh_sessions_reach_hub_metrics(metrics_hub, docker_client, tmp_path) -> None:
    hub = metrics_hub
    admin = hub.ensure_user("madmin", admin=True)
    # an orphan: a network labelled as the workspace network of a user this hub never had
    orphan = docker_client.networks.create(
        f"{hub.hub_name}-ghost",
        labels={"mlhub.origin": hub.hub_name, "mlhub.user": "ghost", "mlhub.install": hub.install_id()},
    )
    r = requests.get(
        f"{hub.url}/services/cleanup-service/users", headers={"Authorization": f"token {admin}"}, timeout=120
    )
    assert r.status_code == 200 and ["network", orphan.name] in [
        [a["kind"], a["name"]] for a in r.json()["removed"]
    ]
    text = scrape_until(hub, 'mlhub_cleanup_removals_total{object="network",run="users"}')
    assert 'mlhub_cleanup_removals_total{object="network",run="users"} 1.0' in text

    token = hub.ensure_user("sshmeter")
    key = keygen(tmp_path / "key")
    r = requests.post(
        f"{hub.url}/services/ssh/api/keys",
        headers={"Authorization": f"token {token}"},
        json={"key": key.with_suffix(".pub").read_text()},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    assert hub.spawn("sshmeter", "", {}, token=token).status_code in (201, 202)
    ssh = subprocess.run(
        ["ssh", "-p", str(hub.ssh_port), *SSH_OPTS, "-i", str(key), "sshmeter@127.0.0.1", "echo metered"],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert ssh.returncode == 0 and ssh.stdout.strip() == b"metered", ssh.stderr
    text = scrape_until(hub, 'mlhub_ssh_sessions_total{kind="exec"}')
    assert 'mlhub_ssh_sessions_total{kind="exec"} 1.0' in text
    assert 'mlhub_ssh_bytes_total{direction="out"}' in text
    types = [line for line in text.splitlines() if line.startswith("# TYPE mlhub_")]
    assert len(types) == len(set(types)), "a metric family twice makes the page invalid"


def test_a_services_metrics_are_for_the_hub_only(metrics_hub) -> None:
    """An admin's token (or none) does not read a service's metrics page; the hub's own
    token for the service does (the hub shows them on /hub/metrics)."""
    hub = metrics_hub
    admin = hub.ensure_user("madmin", admin=True)
    for headers in ({}, {"Authorization": f"token {admin}"}, {"Authorization": f"token {hub.token}"}):
        r = requests.get(
            f"{hub.url}/services/cleanup-service/metrics", headers=headers, timeout=30, allow_redirects=False
        )
        assert r.status_code == 403, (headers, r.status_code, r.text[:200])


def _make_networks(origin: str, prefix: str, count: int, pool: str, out) -> None:
    """One 'hub process': *count* networks at once through MLHub's ensure_network."""
    from concurrent.futures import ThreadPoolExecutor

    from mlhub.engines import docker_network as net

    client = docker.APIClient(version="auto")
    executor = ThreadPoolExecutor(8)

    async def call(method, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, lambda: getattr(client, method)(*args, **kwargs))

    async def main() -> list[str]:
        network_pool = ipaddress.IPv4Network(pool)
        results = await asyncio.gather(
            *(
                net.ensure_network(
                    call, f"{prefix}-{i}", {"mlhub.origin": origin, "mlhub.user": f"u{i}"}, network_pool, 24
                )
                for i in range(count)
            ),
            return_exceptions=True,
        )
        return [repr(r) for r in results if r is not True]

    out.put(asyncio.run(main()))


def test_two_processes_create_networks_at_once() -> None:
    origin = new_hub_name()
    client = docker.from_env()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    count = 12
    # the pool every MLHub hub uses by default, so other hubs on this engine race too
    procs = [
        ctx.Process(target=_make_networks, args=(origin, f"{origin}-p{n}", count, "172.30.0.0/15", out))
        for n in range(2)
    ]
    try:
        for p in procs:
            p.start()
        failures = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert failures == [[], []]
        made = client.networks.list(filters={"label": f"mlhub.origin={origin}"})
        assert len(made) == 2 * count
        subnets = [n.attrs["IPAM"]["Config"][0]["Subnet"] for n in made]
        assert len(set(subnets)) == len(subnets)
    finally:
        for n in client.networks.list(filters={"label": f"mlhub.origin={origin}"}):
            n.remove()


def test_engine_calls_get_a_pool_of_threads_and_connections() -> None:
    """DockerSpawner's one engine thread becomes ``engine_threads``; docker-py's connection
    pool is at least as large."""
    from mlhub.spawners.docker import MLHubDockerSpawner

    class Fresh(MLHubDockerSpawner):  # its own class-level executor and client
        _executor = None
        _client = None

    spawner = Fresh(engine_threads=16, client_kwargs={"max_pool_size": 4})
    assert spawner.executor._max_workers == 16
    adapter = spawner.client._custom_adapter  # the engine's socket
    assert adapter.max_pool_size == 16
    assert spawner.client_kwargs == {"max_pool_size": 4}  # the admin's setting is not written
    assert spawner.client.version  # it talks to the engine
    assert MLHubDockerSpawner.class_traits()["engine_threads"].default_value == 8
