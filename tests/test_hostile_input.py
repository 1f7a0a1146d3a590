"""Random and hostile input to every parser MLHub has (hypothesis).

Each parser either returns a value that respects its limits, or refuses with its own error
type and a message that names the field. Nothing else may escape: no TypeError, no
OverflowError, no value past a limit.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import io
import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlhub.core.labels import workspace_labels
from mlhub.core.options import OPTION_FIELDS, OptionLimits, OptionsError, validate_options
from mlhub.core.parsing import (
    GpuRequest,
    parse_bool,
    parse_cpu,
    parse_days,
    parse_env,
    parse_gpus,
    parse_memory,
)
from mlhub.core.settings import VARIABLES, SettingsError, read_settings
from mlhub.services.ssh.targets import BadLoginName, parse_login

REPO = Path(__file__).resolve().parent.parent

#: Strings people type by mistake and strings attackers type on purpose.
hostile_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "-1",
            "0",
            "1e309",
            "nan",
            "inf",
            "-inf",
            "NaN",
            "0x10",
            "1_000",
            "٣",
            "$(reboot)",
            "`id`",
            "; rm -rf /",
            "a\nb",
            "A=1\nB",
            "=x",
            "PATH=/tmp",
            "../../etc/passwd",
            "<script>alert(1)</script>",
            "' OR 1=1 --",
            "\u202e",
            "9" * 400,
            "1" * 30 + "g",
            "4 g",
            "4gb",
            "all",
            "ALL",
            "0,2",
            "0,,2",
            "0,-1",
            ",",
            "2,2",
            "1.5",
        ]
    ),
)
#: Any JSON-like value a REST body can carry.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)

LIMITS = OptionLimits(
    images={"mlhub/workspace:latest": "mlhub/workspace:latest", "stock": "mlhub/test-stock:latest"},
    default_image="mlhub/workspace:latest",
    allow_custom_image=False,
    default_cpu_limit=1.0,
    max_cpu_limit=2.0,
    default_mem_limit=1 << 30,
    max_mem_limit=4 << 30,
    max_gpus=2,
    default_days_to_live=0,
    max_days_to_live=30,
    reserved_env=frozenset({"JUPYTERHUB_API_TOKEN", "MEM_LIMIT", "CPU_LIMIT"}),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(OPTION_FIELDS)) | hostile_text, json_values, max_size=6))
def test_options_validator_respects_limits_or_names_the_field(raw):
    try:
        options = validate_options(raw, LIMITS)
    except OptionsError as exc:
        assert exc.errors, "refused without a reason"
        for field, message in exc.errors.items():
            assert field and message and field in str(exc)
        return
    assert options.image in LIMITS.images.values()
    assert options.cpu_limit is None or 0 < options.cpu_limit <= LIMITS.max_cpu_limit
    assert options.mem_limit is None or 0 < options.mem_limit <= LIMITS.max_mem_limit
    assert options.gpus.count is None or options.gpus.count <= LIMITS.max_gpus
    assert 0 <= options.days_to_live <= LIMITS.max_days_to_live and math.isfinite(options.days_to_live)
    for key, value in options.env.items():
        assert key not in LIMITS.reserved_env
        assert key.isidentifier() and "\x00" not in value
    # what reaches the engine as labels is plain strings
    labels = workspace_labels("mlhub", "alice", "ws", "alice", options, options.expiration_timestamp())
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())


@pytest.mark.parametrize(
    "parser, check",
    [
        (parse_memory, lambda v: isinstance(v, int) and v > 0),
        (parse_cpu, lambda v: isinstance(v, float) and 0 < v < math.inf),
        (parse_gpus, lambda v: isinstance(v, GpuRequest)),
        (parse_env, lambda v: isinstance(v, dict) and all(k.isidentifier() for k in v)),
        (parse_bool, lambda v: isinstance(v, bool)),
        (parse_days, lambda v: isinstance(v, float) and 0 <= v < math.inf),
    ],
    ids=["memory", "cpu", "gpus", "env", "bool", "days"],
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_parsers_return_valid_values_or_value_error(parser, check, value):
    try:
        result = parser(value)
    except ValueError as exc:
        assert str(exc), "refused without a reason"
        return
    assert check(result), result


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_ssh_login_names(login):
    try:
        target = parse_login(login)
    except BadLoginName as exc:
        assert str(exc)
        return
    assert target.user and "," not in target.user and "/" not in target.login
    assert not any(ch.isspace() or ord(ch) < 32 for ch in target.login)
    assert parse_login(target.login) == target


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(VARIABLES)), hostile_text)
def test_hub_settings_name_the_bad_variable(name, value):
    try:
        read_settings({name: value}, default_data_dir="/tmp/mlhub-settings-test")
    except SettingsError as exc:
        assert name in exc.errors and name in str(exc), str(exc)


def _load_start_script():
    path = REPO / "docker" / "workspace" / "mlhub-workspace-start"
    loader = importlib.machinery.SourceFileLoader("mlhub_workspace_start", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


START = _load_start_script()


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            ("MAX_NUM_THREADS", START.threads),
            ("SHUTDOWN_INACTIVE_KERNELS", START.check_shutdown_kernels),
            ("INCLUDE_TUTORIALS", lambda: START.flag("INCLUDE_TUTORIALS", True)),
            ("CONFIG_BACKUP_ENABLED", lambda: START.flag("CONFIG_BACKUP_ENABLED", True)),
        ]
    ),
    hostile_text.filter(lambda v: "\x00" not in v),
)
def test_workspace_start_variables_refused_by_name(case, value):
    name, check = case
    stderr = io.StringIO()
    with _environ(name, value), contextlib.redirect_stderr(stderr):
        try:
            result = check()
        except SystemExit as exc:
            assert exc.code == 2
            assert f"cannot start: {name}: must be" in stderr.getvalue()
            return
    if name == "MAX_NUM_THREADS":
        assert isinstance(result, int) and result >= 1


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(START.THREAD_VARS), hostile_text.filter(lambda v: "\x00" not in v), min_size=1
    )
)
def test_workspace_env_file_gives_shells_the_values_as_typed(values):
    """What SSH and terminal shells source (``/tmp/.mlhub-env``) exports each value exactly as
    the user typed it, and runs nothing of it: sourced here by the real bash."""
    script = START.export_lines(values) + 'printf "%s\\0" ' + " ".join(f'"${name}"' for name in values)
    # no PATH: were a value ever run as a command, only shell builtins could run
    done = subprocess.run(
        ["/bin/bash", "--norc", "-c", script], capture_output=True, timeout=30, env={"PATH": "/nonexistent"}
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    assert done.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1] == list(values.values())


@pytest.mark.parametrize("field", ["cpu_limit", "mem_limit", "shm_size", "days_to_live"])
@pytest.mark.parametrize("number", [10**400, -(10**400)])
def test_integers_too_large_for_a_float_are_refused_by_name(field, number):
    """Found by the property test above: JSON allows integers no float can hold."""
    with pytest.raises(OptionsError) as refused:
        validate_options({field: number}, LIMITS)
    assert list(refused.value.errors) == [field]
