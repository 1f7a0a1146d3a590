"""Fixtures of the real-engine lane: a real Docker engine, real hubs, a real browser.

Every test object is labelled and removed. Helpers live in ``tests/support`` (and the hub
harness, shared with the benchmarks, in ``devtools``); test modules import nothing from each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from devtools.hubprocess import HubProcess, new_hub_name, remove_test_objects
from tests.support.browser import chromium
from tests.support.images import STOCK_IMAGE, WORKSPACE_IMAGE


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that restart the Docker engine run last: the restart stops every container."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_engine") is not None)


@pytest.fixture(scope="session")
def docker_client(worker_id: str) -> Iterator[docker.DockerClient]:
    """The engine. Leftovers of an interrupted run are swept by the first process only (with
    pytest-xdist, another worker's unclaimed test objects may be in use): ``master`` without
    xdist, ``gw0`` with it; each hub's own objects are removed by hub_factory."""
    sweeps = worker_id in ("master", "gw0")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # the suite is meant to run against a real engine
        pytest.fail(f"No Docker engine answers ({exc}); run the suite with scripts/run-tests.sh")
    for image in (WORKSPACE_IMAGE, STOCK_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"Image {image} is missing; build it with docker/build-images.sh --with-test-images")
    if sweeps:
        remove_test_objects(client)  # leftovers of an interrupted run
    yield client
    if worker_id == "master":
        remove_test_objects(client)


@pytest.fixture(scope="module")
def hub_factory(docker_client, tmp_path_factory) -> Iterator:
    """Start hubs for one test module; they stop, and their engine objects go, when the module
    ends (all at once: stopping is mostly waiting), so idle hubs do not pile up over a run."""
    hubs: list[HubProcess] = []

    def make(env: dict[str, str] | None = None, extra_config: str = "") -> HubProcess:
        name = new_hub_name()
        workdir: Path = tmp_path_factory.mktemp(name)
        hub = HubProcess(workdir, name, env=env, extra_config=extra_config)
        hubs.append(hub)
        return hub.start()

    yield make

    def end(hub: HubProcess) -> None:
        hub.stop()
        remove_test_objects(docker_client, hub.hub_name)

    with ThreadPoolExecutor(max_workers=max(1, len(hubs))) as pool:
        for done in [pool.submit(end, hub) for hub in hubs]:
            done.result()


@pytest.fixture(scope="module")
def hub(hub_factory) -> HubProcess:
    """A hub with admin limits set, as most tests need."""
    return hub_factory(
        env={
            "MLHUB_MAX_CPU_LIMIT": "1",
            "MLHUB_ADMIN_PASSWORD": "initial-Admin-pw",
            "MLHUB_MAX_MEM_LIMIT": "2g",
            "MLHUB_MAX_DAYS_TO_LIVE": "30",
            "MLHUB_ALLOWED_IMAGES": f"{WORKSPACE_IMAGE},{STOCK_IMAGE}",
        }
    )


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """A headless Chromium shared by one module's tests."""
    with chromium() as browser:
        yield browser
