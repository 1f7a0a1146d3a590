"""The per-start plan on the real Docker engine: ``create_object()`` works on its own (as in
DockerSpawner's own tests), the admin's settings are never written by a start's options, and
an admin's async ``extra_create_kwargs`` is merged under the plan."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from devtools.hubprocess import new_hub_name, remove_test_objects
from tests.support.images import STOCK_IMAGE

MiB = 1024**2


def make_spawner(hub_name: str, **config):
    from mlhub.spawners.docker import MLHubDockerSpawner

    c = Config()
    c.MLHubSpawner.hub_name = hub_name
    c.DockerSpawner.image = STOCK_IMAGE
    c.DockerSpawner.network_name = "bridge"
    c.MLHubDockerSpawner.max_cpu_limit = 2
    c.MLHubDockerSpawner.max_mem_limit = 1 << 30
    c.MLHubDockerSpawner.workspace_disk_limit = 0
    for key, value in config.items():
        setattr(c.MLHubDockerSpawner, key, value)
    user = SimpleNamespace(
        name="alice", admin=False, url="/user/alice/", id=1, escaped_name="alice", orm_user=None
    )
    hub = SimpleNamespace(
        public_host="", url="http://hub:8081/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api"
    )
    orm_spawner = SimpleNamespace(name="", user_options={}, display_name=None, server=None, state={})
    return MLHubDockerSpawner(_mock=True, user=user, hub=hub, orm_spawner=orm_spawner, config=c)


def admin_settings(spawner) -> dict[str, str]:
    return {name: repr(getattr(spawner, name)) for name in sorted(spawner.traits(config=True))}


@pytest.fixture
def hub_name(docker_client):
    name = new_hub_name()
    yield name
    remove_test_objects(docker_client, name)


def test_create_object_on_its_own(hub_name, docker_client):
    """No start(), no options: the default options' plan (DockerSpawner's tests do this)."""
    spawner = make_spawner(hub_name, cpu_limit=0.5, mem_limit="256M")
    obj = asyncio.run(spawner.create_object())
    container = docker_client.containers.get(obj["Id"])
    try:
        assert container.attrs["Config"]["Image"] == STOCK_IMAGE
        host = container.attrs["HostConfig"]
        assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 256 * MiB and host["CpuQuota"] == 0
        assert container.labels["mlhub.origin"] == hub_name and container.labels["mlhub.user"] == "alice"
    finally:
        container.remove(force=True)


def test_options_never_write_the_admins_settings(hub_name, docker_client):
    """Two starts' options on one spawner: each container gets its own image and limits; the
    spawner's traits (image, cpu_limit, mem_limit, extra_*) keep the admin's values."""

    async def extra(spawner):  # an admin's async callable, as tests/support/images.py uses
        await asyncio.sleep(0)
        return {"labels": {"admin.label": "kept"}}

    spawner = make_spawner(hub_name, extra_create_kwargs=extra, extra_host_config={"cap_drop": ["NET_ADMIN"]})
    docker_client.images.get(STOCK_IMAGE).tag("mlhub/test-plan-other", hub_name)
    other = f"mlhub/test-plan-other:{hub_name}"
    spawner.allowed_images = [STOCK_IMAGE, other]
    before = admin_settings(spawner)
    try:
        made = []
        for options in ({"image": other, "cpu_limit": "1", "mem_limit": "512m"}, {"gpus": ""}, {"gpus": ""}):
            asyncio.run(spawner.mlhub_apply_user_options(options))
            obj = asyncio.run(spawner.create_object())
            made.append(docker_client.containers.get(obj["Id"]))
            made[-1].remove(force=True)
            assert admin_settings(spawner) == before
        first, second, third = (c.attrs for c in made)
        assert first["Config"]["Image"] == other and second["Config"]["Image"] == STOCK_IMAGE
        assert first["HostConfig"]["NanoCpus"] == 1_000_000_000 and first["HostConfig"]["Memory"] == 512 * MiB
        env = dict(e.split("=", 1) for e in first["Config"]["Env"])
        assert env["JUPYTER_IMAGE_SPEC"] == other and env["MEM_LIMIT"] == str(512 * MiB)
        assert second["HostConfig"] == third["HostConfig"]  # the same options: the same request
        for attrs in (first, second):
            assert attrs["Config"]["Labels"]["admin.label"] == "kept"
            assert "NET_ADMIN" in attrs["HostConfig"]["CapDrop"]
            assert attrs["HostConfig"]["SecurityOpt"] == ["no-new-privileges:true"]
    finally:
        docker_client.images.remove(other)


def test_allowed_images_star_allows_any_image(hub_name, docker_client):
    """DockerSpawner's ``allowed_images = "*"``: any image (it was refused: only the default)."""
    spawner = make_spawner(hub_name, allowed_images="*")
    docker_client.images.get(STOCK_IMAGE).tag("mlhub/test-plan-star", hub_name)
    other = f"mlhub/test-plan-star:{hub_name}"
    try:
        asyncio.run(spawner.mlhub_apply_user_options({"image": other}))
        obj = asyncio.run(spawner.create_object())
        container = docker_client.containers.get(obj["Id"])
        container.remove(force=True)
        assert container.attrs["Config"]["Image"] == other and spawner.image == STOCK_IMAGE
    finally:
        docker_client.images.remove(other)
