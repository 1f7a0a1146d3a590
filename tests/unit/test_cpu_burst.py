"""The boot CPU burst's decisions (mlhub/spawners/docker_cpu_burst.py): when a workspace is
created at the boot limit, and which inspected container a poll gives its own limit. What the
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


def test_a_booting_workspace_has_the_boot_limit_and_says_so() -> None:
    spawner = booting()
    config, labels = spawner.cpu_burst(dict(LIMITED), {}, host_cpus=2)
    assert config == {**LIMITED, "nano_cpus": 1_000_000_000}  # only the CPU limit waits for the boot
    assert labels == {L.BOOT_CPU_LIMIT: "1"}
    assert spawner._burst_nano_cpus == 500_000_000


def test_the_boot_limit_is_never_above_the_host() -> None:
    spawner = booting(boot_cpu_limit=8)
    config, labels = spawner.cpu_burst(dict(LIMITED), {}, host_cpus=2)
    assert config["nano_cpus"] == 2_000_000_000 and labels == {L.BOOT_CPU_LIMIT: "2"}


@pytest.mark.parametrize(
    ("config", "admin", "limits"),
    [
        ({"boot_cpu_burst": False}, {}, LIMITED),
        ({"startup_check_seconds": 0.0}, {}, LIMITED),  # no watch: no end of the boot to wait for
        ({}, {"cpu_shares": 512}, LIMITED),  # the admin schedules CPU: theirs holds
        ({}, {"cpuset_cpus": "0"}, LIMITED),
        ({}, {"cpu_quota": 20000}, LIMITED),
        ({}, {}, {"mem_limit": 2**30}),  # no CPU limit
        ({}, {}, {**LIMITED, "nano_cpus": 1_000_000_000}),  # already at the boot limit
        ({}, {}, {**LIMITED, "nano_cpus": 1_500_000_000}),  # above it
    ],
)
def test_no_burst_when_off_the_admin_sets_cpu_or_the_limit_is_not_lower(config, admin, limits) -> None:
    spawner = booting(**config)
    assert spawner.cpu_burst(dict(limits), admin, host_cpus=2) == (limits, {})
    assert spawner._burst_nano_cpus is None


def test_no_burst_for_a_container_created_outside_a_start() -> None:
    """``create_object`` on its own (DockerSpawner's tests do this) holds no boot slot, and
    nothing would set the limit later: it gets its limit at once."""
    spawner = MLHubDockerSpawner()
    assert spawner.cpu_burst(dict(LIMITED), {}, host_cpus=2) == (LIMITED, {})


@pytest.mark.parametrize("cores", [0, -1])
def test_boot_limit_out_of_range_is_refused(cores) -> None:
    with pytest.raises(TraitError, match="boot_cpu_limit"):
        MLHubDockerSpawner(boot_cpu_limit=cores)


def _container(nano: int = 1_000_000_000, boot: str | None = "1", limit: str = "0.5") -> dict:
    labels = {L.CPU_LIMIT: limit, **({L.BOOT_CPU_LIMIT: boot} if boot is not None else {})}
    return {"HostConfig": {"NanoCpus": nano}, "Config": {"Labels": labels}}


def test_a_container_left_at_its_boot_limit_gets_its_own() -> None:
    assert boot_leftover(_container()) == 500_000_000


@pytest.mark.parametrize(
    "container",
    [
        None,
        _container(nano=500_000_000),  # booted
        _container(boot=None),  # created without a burst
        _container(nano=1_500_000_000),  # the admin changed it by hand since
        _container(limit=""),  # no limit asked for
        _container(limit="lots"),
        _container(boot="0.5"),  # the boot limit was the own limit
    ],
)
def test_other_containers_are_left_alone(container) -> None:
    assert boot_leftover(container) is None
