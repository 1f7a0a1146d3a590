"""Shared fixtures: a real Docker engine and real hubs; every test object labelled and removed."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from .hubprocess import TEST_HUB_PREFIX, HubProcess, claim_hub_name, remove_test_objects

#: MLHUB_TEST_WORKSPACE_IMAGE: test a development build (docker/build-images.sh --tag-suffix)
WORKSPACE_IMAGE = os.environ.get("MLHUB_TEST_WORKSPACE_IMAGE", "mlhub/workspace:latest")
STOCK_IMAGE = "mlhub/test-stock:latest"

#: Hub config for fault tests: users named ``slow*`` get a workspace whose single-user server
#: starts 8 s after its container, ``hang*`` one that never serves HTTP, and for ``stall*``
#: the spawner's start stalls for 60 s before the container is created.
SLOW_AND_HANGING_WORKSPACES = """
import asyncio
async def _fault_command(spawner):
    name = spawner.user.name
    if name.startswith("stall"):
        await asyncio.sleep(60)
        return {}
    if name.startswith("hang"):
        return {"command": ["sleep", "3600"]}
    if name.startswith("slow"):
        return {"command": ["sh", "-c", "sleep 8 && exec jupyterhub-singleuser"]}
    return {}
c.DockerSpawner.extra_create_kwargs = _fault_command
"""


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that restart the Docker engine run last: the restart stops every container."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_engine") is not None)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
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
    remove_test_objects(client)  # leftovers of an interrupted run
    yield client
    remove_test_objects(client)


def new_hub_name() -> str:
    return claim_hub_name(f"{TEST_HUB_PREFIX}{secrets.token_hex(3)}")


@pytest.fixture(scope="session")
def hub_factory(docker_client, tmp_path_factory) -> Iterator:
    hubs: list[HubProcess] = []

    def make(env: dict[str, str] | None = None, extra_config: str = "") -> HubProcess:
        name = new_hub_name()
        workdir: Path = tmp_path_factory.mktemp(name)
        hub = HubProcess(workdir, name, env=env, extra_config=extra_config)
        hubs.append(hub)
        return hub.start()

    yield make
    for hub in hubs:
        hub.stop()
        remove_test_objects(docker_client, hub.hub_name)


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
