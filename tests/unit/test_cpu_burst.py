"""The boot CPU burst's decisions (mlhub/spawners/docker_cpu_burst.py): when a workspace is
created without its CPU limit, and which inspected container a poll gives its limit. What the
engine does with them is tested for real in tests/test_cpu_burst.py."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from mlhub.core import labels as L
from mlhub.spawners.docker import MLHubDockerSpawner
from mlhub.spawners.docker_cpu_burst import boot_leftover

LIMITED = {"nano_cpus": 500_000_000, "mem_limit": 2**30, "network_mode": "net"}


def booting(**config) -> MLHubDockerSpawner:
    """A spawner whose start holds a boot slot (as after ``_wait_boot_slot``)."""
    spawner = MLHubDockerSpawner(**config)
    spawner._boot_slot = (object(), "alice")
    return spawner


def test_a_booting_workspace_has_no_cpu_limit_and_a_low_weight() -> None:
    spawner = booting()
    config = spawner.cpu_burst_host_config(dict(LIMITED), {})
    assert "nano_cpus" not in config
    assert config["cpu_shares"] == 256
    assert config["mem_limit"] == 2**30  # only the CPU limit waits for the boot
    assert spawner._burst_nano_cpus == 500_000_000


@pytest.mark.parametrize(
    ("config", "admin"),
    [
        ({"boot_cpu_burst": False}, {}),
        ({"startup_check_seconds": 0.0}, {}),  # no watch: no end of the boot to wait for
        ({}, {"cpu_shares": 512}),  # the admin schedules CPU: theirs holds
        ({}, {"cpuset_cpus": "0"}),
        ({}, {"cpu_quota": 20000}),
    ],
)
def test_no_burst_when_switched_off_or_the_admin_sets_cpu(config, admin) -> None:
    spawner = booting(**config)
    assert spawner.cpu_burst_host_config(dict(LIMITED), admin) == LIMITED
    assert spawner._burst_nano_cpus is None


def test_no_burst_without_a_cpu_limit() -> None:
    spawner = booting()
    unlimited = {"mem_limit": 2**30}
    assert spawner.cpu_burst_host_config(dict(unlimited), {}) == unlimited
    assert spawner._burst_nano_cpus is None


def test_no_burst_for_a_container_created_outside_a_start() -> None:
    """``create_object`` on its own (DockerSpawner's tests do this) holds no boot slot, and
    nothing would set the limit later: it gets its limit at once."""
    spawner = MLHubDockerSpawner()
    assert spawner.cpu_burst_host_config(dict(LIMITED), {}) == LIMITED


@pytest.mark.parametrize("shares", [1, 1025])
def test_boot_weight_out_of_range_is_refused(shares) -> None:
    with pytest.raises(TraitError, match="boot_cpu_shares"):
        MLHubDockerSpawner(boot_cpu_shares=shares)


def _container(nano: int = 0, shares: int = 256, quota: int = 0, label: str = "0.5") -> dict:
    return {
        "HostConfig": {"NanoCpus": nano, "CpuShares": shares, "CpuQuota": quota},
        "Config": {"Labels": {L.CPU_LIMIT: label}},
    }


def test_a_container_left_booting_gets_its_labelled_limit() -> None:
    assert boot_leftover(_container(), 256) == 500_000_000


@pytest.mark.parametrize(
    "container",
    [
        None,
        _container(nano=500_000_000, shares=1024),  # booted
        _container(shares=0),  # created without a burst
        _container(quota=50_000),  # the admin's quota
        _container(label=""),  # no limit asked for
        _container(label="lots"),
    ],
)
def test_other_containers_are_left_alone(container) -> None:
    assert boot_leftover(container, 256) is None
