"""Where a workspace's start time goes: container start -> "Jupyter Server is running", per image.

    python -m benchmarks.workspace_start [--reps 10] [--image mlhub/workspace:latest ...]

Starts an MLHub hub, spawns each image --reps times (one at a time), and reads from the
container's own log timestamps when the server was up; writes
benchmarks/results/<date>-workspace-start.md with the medians and the import profile.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import docker
import requests

from benchmarks.machine import import_profile, machine
from benchmarks.stats import pct
from devtools.hubprocess import REPO, TEST_HUB_PREFIX, HubProcess, claim_hub_name, remove_test_objects

RESULTS = REPO / "benchmarks" / "results"


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text[:26].rstrip("Z")).timestamp()


def measure(
    hub: HubProcess, client: docker.DockerClient, image: str, reps: int
) -> tuple[list[float], list[float]]:
    token = hub.ensure_user("startbench")
    inside, spawn = [], []
    for _ in range(reps):
        name = f"s{secrets.token_hex(2)}"
        t = time.perf_counter()
        r = hub.api("POST", f"/users/startbench/servers/{name}", token=token, json={"image": image})
        assert r.status_code in (201, 202), r.text
        hub.wait_ready("startbench", name)
        while (
            requests.get(
                hub.at(f"/user/startbench/{name}/api/status"),
                headers={"Authorization": f"token {token}"},
                timeout=10,
            ).status_code
            != 200
        ):
            time.sleep(0.05)
        spawn.append(time.perf_counter() - t)
        container = client.containers.get(hub.server("startbench", name)["state"]["object_id"])
        started = _ts(container.attrs["State"]["StartedAt"])
        running = next(
            line for line in container.logs(timestamps=True).decode().splitlines() if "is running at" in line
        )
        inside.append(_ts(running.split()[0]) - started)
        hub.stop_server("startbench", name, remove=True)
    return inside, spawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--image", action="append", default=None)
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="where the table goes (default benchmarks/results)"
    )
    args = parser.parse_args()
    images = args.image or ["mlhub/workspace:latest", "mlhub/test-stock:latest"]
    client = docker.from_env()
    hub = HubProcess(
        Path(tempfile.mkdtemp(prefix="mlhub-start-")),
        claim_hub_name(f"{TEST_HUB_PREFIX}w{secrets.token_hex(2)}"),
        env={"MLHUB_ALLOWED_IMAGES": ",".join(images)},
    ).start()
    rows = []
    try:
        for image in images:
            inside, spawn = measure(hub, client, image, args.reps)
            rows.append(
                (
                    image,
                    statistics.median(inside),
                    pct(inside, 0.95),
                    statistics.median(spawn),
                    pct(spawn, 0.95),
                )
            )
    finally:
        hub.stop()
        remove_test_objects(client, hub.hub_name)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    lines = [
        f"# Workspace start time — {stamp}",
        "",
        f"Machine: {machine()}. Command: `python -m benchmarks.workspace_start --reps {args.reps}`.",
        "In the container: from the engine's StartedAt to the server's \"Jupyter Server is running\" log line",
        "(the container's own timestamps). Spawn to ready: the hub API request until the server answers",
        "through the hub's proxy. One server at a time.",
        "",
        "| image | in the container, median | p95 | spawn to ready, median | p95 |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| `{image}` | {a:.2f} s | {b:.2f} s | {c:.2f} s | {d:.2f} s |" for image, a, b, c, d in rows],
        "",
        "Target (issue 3): the minimal flavor ready in under 2 s after the container starts.",
        "",
        "Slowest imports of the server (`python -X importtime`, microseconds self | cumulative):",
        "",
        "```",
        *import_profile(images[0]),
        "```",
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{stamp}-workspace-start.md"
    out.write_text("\n".join(lines))
    print(out.read_text())


if __name__ == "__main__":
    main()
