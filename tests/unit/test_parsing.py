"""Pure parsers: memory sizes, CPUs, GPUs, env blocks, booleans, days."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlhub.core.parsing import (
    format_memory,
    parse_bool,
    parse_cpu,
    parse_days,
    parse_env,
    parse_gpus,
    parse_memory,
)

GiB = 1024**3
MiB = 1024**2


@pytest.mark.parametrize(
    "text, expected",
    [
        ("512m", 512 * MiB),
        ("4g", 4 * GiB),
        ("4G", 4 * GiB),
        ("1.5g", int(1.5 * GiB)),
        ("2Gi", 2 * GiB),
        ("2GB", 2 * GiB),
        ("4", 4 * GiB),  # bare number: GB, as in ML Hub's form
        (4, 4 * GiB),
        (0.5, GiB // 2),
        ("536870912", 512 * MiB),  # large bare number: bytes
        (536870912, 512 * MiB),
        ("1000b", 1000),
        (" 64m ", 64 * MiB),
    ],
)
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize(
    "text",
    ["lots", "", "-1g", "0", "4x", "1e9", "g", None, [], True, float("nan"), "inf", -1.6742321987285427e299],
)
def test_parse_memory_refuses(text):
    with pytest.raises(ValueError):
        parse_memory(text)


@given(st.integers(min_value=1, max_value=2**50))
def test_format_memory_round_trips(size):
    assert parse_memory(format_memory(size)) == size


def test_parse_cpu():
    assert parse_cpu("0.5") == 0.5
    assert parse_cpu(2) == 2.0
    for bad in ["-1", "0", "abc", "", None, float("inf"), "nan", True]:
        with pytest.raises(ValueError):
            parse_cpu(bad)


@pytest.mark.parametrize(
    "value, count, ids",
    [
        ("", 0, ()),
        (None, 0, ()),
        ("all", -1, ()),
        ("2", 2, ()),
        (2, 2, ()),
        ("0,2", 0, ("0", "2")),
        ([1, 3], 0, ("1", "3")),
    ],
)
def test_parse_gpus(value, count, ids):
    request = parse_gpus(value)
    assert request.count == count and request.device_ids == ids


@pytest.mark.parametrize("value", ["abc", "1,a", "0,0", "1.5", 1.5, {"a": 1}, "-1", "all,1", [True]])
def test_parse_gpus_refuses(value):
    with pytest.raises(ValueError):
        parse_gpus(value)


def test_parse_env_lines_and_object():
    assert parse_env("A=1\n\n# comment\nB = x=y\n") == {"A": "1", "B": " x=y"}
    assert parse_env({"A": "1", "N": 2, "T": True}) == {"A": "1", "N": "2", "T": "true"}
    assert parse_env("") == {} and parse_env(None) == {}


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("NOEQUALS", "line 1"),
        ("1A=x", "not a valid variable name"),
        ("A=1\nA=2", "set twice"),
        ({"A": ["x"]}, "must be a string"),
        ("A=\x00", "NUL"),
        (42, "KEY=VALUE"),
    ],
)
def test_parse_env_refuses(value, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_env(value)


def test_parse_bool_and_days():
    assert parse_bool("on") is True and parse_bool("") is False and parse_bool(False) is False
    with pytest.raises(ValueError):
        parse_bool("maybe")
    assert parse_days("") == 0 and parse_days("3") == 3 and parse_days(0.5) == 0.5
    for bad in ["-1", "x", float("inf"), [], True]:
        with pytest.raises(ValueError):
            parse_days(bad)
