"""The rules behind the default limits, as pure logic (the engine side: test_workspace_limits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlhub.core.fair_defaults import DEFAULT_CAP_DROP, fair_cpu, fair_memory
from mlhub.core.options import OptionLimits, OptionsError, validate_options
from mlhub.core.settings import SettingsError, read_settings
from mlhub.engines.workspace_disk import WorkspaceDisk, disk_of_volume, unsupported_reason
from mlhub.hub.summary import summarize
from mlhub.spawners.docker_objects import Hardening, container_settings, merge_host_config

GiB = 1024**3
MiB = 1024**2


@pytest.mark.parametrize(
    "cores, expected",
    [(None, None), (0.5, 0.12), (2, 0.5), (4, 1.0), (64, 1.0)],
)
def test_fair_cpu_is_one_core_or_a_quarter(cores, expected):
    assert fair_cpu(cores) == expected


@pytest.mark.parametrize(
    "memory, expected",
    [(None, None), (4 * GiB, GiB), (int(23.54 * GiB), 2 * GiB), (256 * GiB, 2 * GiB), (16 * MiB, 6 * MiB)],
)
def test_fair_memory_is_two_gib_or_a_quarter(memory, expected):
    assert fair_memory(memory) == expected


LIMITS = OptionLimits(images={"a": "a"}, default_image="a", max_mem_limit=4 * GiB, default_mem_limit=GiB)


def test_memory_above_the_maximum_names_the_range():
    with pytest.raises(OptionsError) as info:
        validate_options({"mem_limit": "1000t"}, LIMITS)
    assert info.value.errors["mem_limit"] == "must be at most 4g (allowed: 6m to 4g; got 1000t)"


def test_shm_is_at_most_the_workspace_memory():
    with pytest.raises(OptionsError) as info:
        validate_options({"mem_limit": "512m", "shm_size": "1g"}, LIMITS)
    assert info.value.errors == {
        "shm_size": "must be at most the memory limit 512m (allowed: 6m to 512m; got 1g)"
    }
    # the default memory (1g) bounds it too, and the admin's maximum when memory is unbounded
    with pytest.raises(OptionsError, match="shm_size"):
        validate_options({"shm_size": "2g"}, LIMITS)
    assert validate_options({"mem_limit": "512m", "shm_size": "512m"}, LIMITS).shm_size == 512 * MiB
    # an admin's default shm bigger than the memory shrinks to it
    bigger_shm = OptionLimits(
        images={"a": "a"}, default_image="a", default_mem_limit=GiB, default_shm_size=2 * GiB
    )
    assert validate_options({}, bigger_shm).shm_size == GiB


def test_hardening_reaches_the_host_config():
    options = validate_options({}, LIMITS)
    host = container_settings(
        options, {}, None, "/workspace", hardening=Hardening(pids_limit=1024)
    ).host_config
    assert host["pids_limit"] == 1024
    assert host["security_opt"] == ["no-new-privileges:true"]
    assert host["cap_drop"] == list(DEFAULT_CAP_DROP)
    off = Hardening(pids_limit=None, no_new_privileges=False, cap_drop=()).host_config()
    assert off == {}


def test_admins_own_security_options_are_kept():
    merged = merge_host_config(
        {"security_opt": ["apparmor=mine"], "cap_drop": ["NET_ADMIN"], "pids_limit": 5},
        Hardening(pids_limit=1024).host_config(),
    )
    assert merged["security_opt"] == ["apparmor=mine", "no-new-privileges:true"]
    assert merged["cap_drop"][0] == "NET_ADMIN" and set(DEFAULT_CAP_DROP) <= set(merged["cap_drop"])
    assert merged["pids_limit"] == 1024


def test_settings_defaults_and_bad_values():
    settings = read_settings({}, default_data_dir="/d")
    assert (settings.pids_limit, settings.workspace_disk_limit, settings.named_server_limit) == (
        1024,
        10 * GiB,
        5,
    )
    assert settings.no_new_privileges is True
    off = read_settings(
        {"MLHUB_WORKSPACE_DISK_LIMIT": "0", "MLHUB_PIDS_LIMIT": "0", "MLHUB_NAMED_SERVER_LIMIT": "0"}, "/d"
    )
    assert (off.pids_limit, off.workspace_disk_limit, off.named_server_limit) == (0, 0, 0)
    for name, value, fragment in (
        ("MLHUB_WORKSPACE_DISK_LIMIT", "huge", "at least 16m"),
        ("MLHUB_WORKSPACE_DISK_LIMIT", "1m", "at least 16m"),
        ("MLHUB_PIDS_LIMIT", "-1", ">= 0"),
        ("MLHUB_NO_NEW_PRIVILEGES", "maybe", "true or false"),
    ):
        with pytest.raises(SettingsError) as info:
            read_settings({name: value}, default_data_dir="/d")
        assert fragment in info.value.errors[name]


def test_when_the_hub_cannot_cap_disks_it_says_why():
    assert "container" in unsupported_reason(in_container=True)
    assert "root" in unsupported_reason(euid=1000)


def test_only_a_capped_workspace_volume_has_a_disk(tmp_path: Path):
    disk = WorkspaceDisk(tmp_path, "hub-alice-workspace")
    volume = {"Name": disk.volume, "Options": disk.driver_options()}
    assert disk_of_volume(volume) is None  # no image file: not ours to touch
    disk.image.write_bytes(b"")
    assert disk_of_volume(volume) == disk
    assert disk_of_volume({"Name": "other", "Options": disk.driver_options()}) is None
    assert disk_of_volume({"Name": disk.volume, "Options": {"type": "tmpfs", "device": "tmpfs"}}) is None
    assert disk_of_volume({"Name": disk.volume, "Options": None}) is None


def test_pages_show_processes_and_disk():
    from types import SimpleNamespace

    row = SimpleNamespace(
        name="ws",
        state={
            "mlhub": {
                "options": {"cpu_limit": 0.5, "mem_limit": "2g"},
                "bounds": {"pids": 1024, "disk": 10 * GiB},
            }
        },
    )
    owner = SimpleNamespace(name="a", server_url=lambda s: f"/user/a/{s}/")
    assert summarize(row, owner, []).resources == "0.5 CPU, 2g memory, 1024 processes, 10g disk"
