"""The one validator behind the options form and the REST API."""

import time

import pytest

from mlhub.core.options import (
    OptionLimits,
    OptionsError,
    options_from_formdata,
    validate_options,
)

GiB = 1024**3
LIMITS = OptionLimits(
    images={"Workspace": "mlhub/workspace:latest", "mlhub/test-stock:latest": "mlhub/test-stock:latest"},
    default_image="mlhub/workspace:latest",
    default_cpu_limit=1.0,
    max_cpu_limit=2.0,
    default_mem_limit=GiB,
    max_mem_limit=4 * GiB,
    max_gpus=2,
    max_days_to_live=30,
    default_days_to_live=7,
    reserved_env=frozenset({"MEM_LIMIT"}),
)


def test_empty_options_take_defaults():
    options = validate_options({}, LIMITS)
    assert options.image == "mlhub/workspace:latest"
    assert options.cpu_limit == 1.0 and options.mem_limit == GiB
    assert options.is_mount_volume is True and options.days_to_live == 7
    assert not options.gpus.wanted and options.env == {}


def test_full_options():
    options = validate_options(
        {
            "image": "Workspace",
            "cpu_limit": "0.5",
            "mem_limit": "512m",
            "gpus": "0,1",
            "shm_size": "256m",
            "env": "A=1\nB=2",
            "is_mount_volume": False,
            "days_to_live": 3,
        },
        LIMITS,
    )
    assert options.cpu_limit == 0.5 and options.mem_limit == 512 * 1024**2
    assert options.gpus.device_ids == ("0", "1") and options.shm_size == 256 * 1024**2
    assert options.env == {"A": "1", "B": "2"} and options.is_mount_volume is False
    now = time.time()
    assert options.expiration_timestamp(now) == int(now + 3 * 86400)


def test_normalized_options_validate_to_the_same():
    options = validate_options(
        {"mem_limit": "1536m", "gpus": "all", "days_to_live": 1},
        LIMITS.__class__(**{**LIMITS.__dict__, "max_gpus": None}),
    )
    again = validate_options(
        options.to_user_options(), LIMITS.__class__(**{**LIMITS.__dict__, "max_gpus": None})
    )
    assert again == options


@pytest.mark.parametrize(
    "raw, field, fragment",
    [
        ({"cpu_limit": -1}, "cpu_limit", "greater than 0"),
        ({"cpu_limit": 3}, "cpu_limit", "between 0.01 and 2"),
        ({"mem_limit": "lots"}, "mem_limit", "512m"),
        ({"mem_limit": "8g"}, "mem_limit", "at most 4g"),
        ({"image": "ubuntu:latest"}, "image", "choose one of"),
        ({"gpus": "abc"}, "gpus", "device ids"),
        ({"gpus": "3"}, "gpus", "at most 2"),
        ({"gpus": "all"}, "gpus", "'all' is not allowed"),
        ({"days_to_live": -1}, "days_to_live", ">= 0"),
        ({"days_to_live": 0}, "days_to_live", "never expire"),
        ({"days_to_live": 31}, "days_to_live", "at most 30"),
        ({"env": "NOEQUALS"}, "env", "KEY=VALUE"),
        ({"env": "JUPYTERHUB_API_TOKEN=x"}, "env", "set by the hub"),
        ({"env": {"MEM_LIMIT": "1"}}, "env", "set by the hub"),
        ({"env": "PATH=/usr/bin"}, "env", "would keep the workspace from starting"),
        ({"env": {"PYTHONHOME": "/x"}}, "env", "not allowed: PATH, PYTHONHOME"),
        ({"is_mount_volume": "maybe"}, "is_mount_volume", "true or false"),
        ({"cpus": 1}, "cpus", "unknown option"),
    ],
)
def test_bad_options_name_the_field(raw, field, fragment):
    with pytest.raises(OptionsError) as info:
        validate_options(raw, LIMITS)
    assert field in info.value.errors
    assert fragment in info.value.errors[field]
    assert str(info.value).startswith(field) or f"; {field}:" in str(info.value)


def test_all_errors_reported_at_once():
    with pytest.raises(OptionsError) as info:
        validate_options({"cpu_limit": "x", "mem_limit": "y"}, LIMITS)
    assert set(info.value.errors) == {"cpu_limit", "mem_limit"}


def test_no_gpus_on_hub():
    limits = OptionLimits(images={"a": "a"}, default_image="a", max_gpus=0)
    with pytest.raises(OptionsError, match="offers no GPUs"):
        validate_options({"gpus": 1}, limits)
    assert not validate_options({"gpus": ""}, limits).gpus.wanted


def test_custom_image_only_when_allowed():
    limits = OptionLimits(images={"a": "a"}, default_image="a", allow_custom_image=True)
    assert (
        validate_options({"image": "jupyter/base-notebook:2024"}, limits).image
        == "jupyter/base-notebook:2024"
    )
    with pytest.raises(OptionsError, match="image"):
        validate_options({"image": "Not An Image;rm -rf"}, limits)


def test_form_data():
    raw = options_from_formdata({"cpu_limit": ["1"], "env": ["A=1"], "custom_image": [" "]})
    assert raw == {"cpu_limit": "1", "env": "A=1", "is_mount_volume": False}
    raw = options_from_formdata({"image": ["a"], "custom_image": ["b:1"], "is_mount_volume": ["on"]})
    assert raw["image"] == "b:1" and raw["is_mount_volume"] == "on"
