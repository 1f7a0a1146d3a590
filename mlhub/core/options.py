"""The workspace options: one validator for the HTML form and the REST API.

``validate_options(raw, limits)`` turns what a user sent into a :class:`WorkspaceOptions`
or raises :class:`OptionsError`, which names every bad field and what is allowed. It does
no I/O, so both spawners (and the tests) call the same function before anything is created.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlhub.core.errors import FieldErrors
from mlhub.core.parsing import (
    GpuRequest,
    format_memory,
    parse_bool,
    parse_cpu,
    parse_days,
    parse_env,
    parse_gpus,
    parse_memory,
)

#: Option names, kept from ML Hub's ``spawner_options.py`` so old scripts keep working.
OPTION_FIELDS = (
    "image",
    "cpu_limit",
    "mem_limit",
    "gpus",
    "shm_size",
    "env",
    "is_mount_volume",
    "days_to_live",
)

# A Docker image reference: [registry[:port]/]path[:tag][@digest], lowercase path.
_IMAGE_REF = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
SECONDS_PER_DAY = 86400


class OptionsError(FieldErrors):
    """Bad workspace options; ``errors`` maps each bad field to what is allowed."""


@dataclass(frozen=True)
class OptionLimits:
    """What the admin allows, and the defaults for empty fields."""

    images: Mapping[str, str]
    default_image: str
    allow_custom_image: bool = False
    default_cpu_limit: float | None = None
    max_cpu_limit: float | None = None
    default_mem_limit: int | None = None
    max_mem_limit: int | None = None
    max_gpus: int | None = 0
    default_shm_size: int | None = None
    default_days_to_live: float = 0.0
    max_days_to_live: float | None = None
    reserved_env: frozenset[str] = frozenset()
    #: shown in the form, not options a user sets: processes and /workspace size per workspace
    pids_limit: int | None = None
    disk_limit: int | None = None
    reserved_env_prefixes: tuple[str, ...] = ("JUPYTERHUB_", "JPY_", "MLHUB_")


@dataclass(frozen=True)
class WorkspaceOptions:
    """Validated options for one workspace; all sizes in bytes, CPU in cores."""

    image: str
    cpu_limit: float | None = None
    mem_limit: int | None = None
    gpus: GpuRequest = field(default_factory=GpuRequest)
    shm_size: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    is_mount_volume: bool = True
    days_to_live: float = 0.0

    def expiration_timestamp(self, now: float | None = None) -> int:
        """Epoch seconds when the workspace expires, 0 for never."""
        if not self.days_to_live:
            return 0
        now = time.time() if now is None else now
        return int(now + self.days_to_live * SECONDS_PER_DAY)

    def to_user_options(self) -> dict[str, Any]:
        """A JSON-safe dict that validates back to the same options (for the hub's DB)."""
        return {
            "image": self.image,
            "cpu_limit": "" if self.cpu_limit is None else self.cpu_limit,
            "mem_limit": "" if self.mem_limit is None else format_memory(self.mem_limit),
            "gpus": str(self.gpus),
            "shm_size": "" if self.shm_size is None else format_memory(self.shm_size),
            "env": dict(self.env),
            "is_mount_volume": self.is_mount_volume,
            "days_to_live": self.days_to_live,
        }


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _fmt_number(number: float) -> str:
    return f"{number:g}"


def _check_image(value: Any, limits: OptionLimits) -> str:
    if _blank(value):
        return limits.default_image
    if not isinstance(value, str):
        raise ValueError("must be an image name")
    ref: str = value.strip()
    if ref in limits.images:
        return limits.images[ref]
    if ref in limits.images.values():
        return ref
    allowed = ", ".join(sorted(limits.images)) or limits.default_image
    if limits.allow_custom_image:
        if len(ref) <= 255 and _IMAGE_REF.match(ref):
            return ref
        raise ValueError(f"{ref[:80]!r} is not a valid image reference such as repo/name:tag")
    raise ValueError(f"{ref[:80]!r} is not allowed; choose one of: {allowed}")


def _check_cpu(value: Any, limits: OptionLimits) -> float | None:
    if _blank(value):
        return limits.default_cpu_limit
    cpu = parse_cpu(value)
    if cpu < 0.01:
        raise ValueError("must be at least 0.01 cores")
    if limits.max_cpu_limit is not None and cpu > limits.max_cpu_limit:
        raise ValueError(
            f"must be between 0.01 and {_fmt_number(limits.max_cpu_limit)} cores (got {_fmt_number(cpu)})"
        )
    return cpu


MIN_MEMORY = 6 * 1024**2  # Docker's minimum


def _check_memory(value: Any, default: int | None, maximum: int | None, what: str = "") -> int | None:
    if _blank(value):
        return default
    size = parse_memory(value)
    if size < MIN_MEMORY:
        raise ValueError("must be at least 6m (Docker's minimum)")
    if maximum is not None and size > maximum:
        raise ValueError(
            f"must be at most {what}{format_memory(maximum)} "
            f"(allowed: {format_memory(MIN_MEMORY)} to {format_memory(maximum)}; got {format_memory(size)})"
        )
    return size


def _check_shm(value: Any, limits: OptionLimits, mem_limit: int | None) -> int | None:
    """/dev/shm is memory: at most the workspace's memory limit (and the admin's maximum)."""
    caps = [c for c in (limits.max_mem_limit, mem_limit) if c is not None]
    maximum = min(caps) if caps else None
    what = "the memory limit " if mem_limit is not None and maximum == mem_limit else ""
    if _blank(value):
        default = limits.default_shm_size
        return min(default, maximum) if default is not None and maximum is not None else default
    return _check_memory(value, None, maximum, what)


def _check_gpus(value: Any, limits: OptionLimits) -> GpuRequest:
    request = parse_gpus(value)
    if not request.wanted:
        return request
    if limits.max_gpus == 0:
        raise ValueError("this hub offers no GPUs; leave the field empty")
    amount = request.amount
    if amount is None:
        if limits.max_gpus is not None:
            raise ValueError(f"'all' is not allowed; ask for at most {limits.max_gpus} GPUs")
    elif limits.max_gpus is not None and amount > limits.max_gpus:
        raise ValueError(f"must be at most {limits.max_gpus} GPUs (got {amount})")
    return request


#: Variables that keep every workspace from starting when a user sets them (the value replaces
#: the image's: the server's own programs are not found). LD_LIBRARY_PATH, LD_PRELOAD,
#: PYTHONPATH and HOME stay allowed: people set them for CUDA, profilers and their own code.
START_BREAKING_ENV = ("PATH", "PYTHONHOME")


def _check_env(value: Any, limits: OptionLimits) -> dict[str, str]:
    env = parse_env(value)
    for key in env:
        if key in limits.reserved_env or key.startswith(limits.reserved_env_prefixes):
            raise ValueError(f"{key} is set by the hub and cannot be overridden")
        if key in START_BREAKING_ENV:
            raise ValueError(
                f"{key} would keep the workspace from starting and cannot be set here "
                f"(not allowed: {', '.join(START_BREAKING_ENV)}; set them in the image instead)"
            )
    return env


def _check_days(value: Any, limits: OptionLimits) -> float:
    days = limits.default_days_to_live if _blank(value) else parse_days(value)
    maximum = limits.max_days_to_live
    if maximum is not None:
        if days == 0 and _blank(value):
            days = maximum
        if days == 0 or days > maximum:
            raise ValueError(
                f"must be more than 0 and at most {_fmt_number(maximum)} days "
                "(this hub has no workspaces that never expire)"
            )
    return days


def validate_options(raw: Mapping[str, Any] | None, limits: OptionLimits) -> WorkspaceOptions:
    """Validate *raw* user options (form or API) against *limits*.

    Empty fields take the admin's defaults. Raises :class:`OptionsError` naming every bad
    field; unknown fields are refused too, so a typo is never silently ignored.
    """
    raw = dict(raw or {})
    errors: dict[str, str] = {}
    unknown = sorted(set(raw) - set(OPTION_FIELDS))
    for name in unknown:
        text = str(name)
        # the message must show which field: quote names that are empty or unprintable
        label = text[:40] if text.strip() and text.isprintable() else repr(text)[:40]
        errors[label] = f"unknown option; allowed: {', '.join(OPTION_FIELDS)}"

    values: dict[str, Any] = {}
    checks: dict[str, Callable[[Any], Any]] = {
        "image": lambda v: _check_image(v, limits),
        "cpu_limit": lambda v: _check_cpu(v, limits),
        "mem_limit": lambda v: _check_memory(v, limits.default_mem_limit, limits.max_mem_limit),
        "gpus": lambda v: _check_gpus(v, limits),
        "shm_size": lambda v: _check_shm(v, limits, values.get("mem_limit")),
        "env": lambda v: _check_env(v, limits),
        "is_mount_volume": lambda v: True if _blank(v) else parse_bool(v),
        "days_to_live": lambda v: _check_days(v, limits),
    }
    for name, check in checks.items():
        try:
            values[name] = check(raw.get(name))
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise OptionsError(errors)
    return WorkspaceOptions(**values)


def options_from_formdata(formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """Turn the HTML form's lists of strings into raw options for :func:`validate_options`.

    An unchecked checkbox sends nothing, so a missing ``is_mount_volume`` means *off* here
    (while in a REST body a missing field takes the default, *on*).
    """
    raw: dict[str, Any] = {}
    for name in OPTION_FIELDS:
        values = formdata.get(name)
        if values:
            raw[name] = values[0]
    if "is_mount_volume" not in raw:
        raw["is_mount_volume"] = False
    # A custom image typed in the free-text field wins over the select box.
    custom = (formdata.get("custom_image") or [""])[0].strip()
    if custom:
        raw["image"] = custom
    return raw
