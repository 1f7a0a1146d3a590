"""Parsers for single option values: memory sizes, CPU counts, GPU requests, env blocks, days.

Each parser takes what a user typed (a string from the HTML form, or a JSON value from the
REST API) and returns a typed value, or raises :class:`ValueError` with a message that says
what is allowed. Field names are added by :mod:`mlhub.core.options`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNIT_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

#: A bare number below this is read as GB (as ML Hub's form did); at or above it, as bytes.
BARE_NUMBER_BYTES_THRESHOLD = 1024**2

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ENV_ENTRIES = 100
MAX_ENV_VALUE_LENGTH = 8192
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float(number: int | float) -> float:
    """float() of a JSON number; integers too large for a float become +-inf (refused later)."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def parse_memory(value: Any) -> int:
    """Parse ``512m``, ``4g``, ``1.5G``, ``2Gi``, ``536870912b`` or a bare number into bytes.

    Units are binary (``1k`` = 1024 bytes), as in ``docker run --memory``. A bare number
    means gigabytes when below 1048576 (so ``4`` is 4 GiB, as in ML Hub's form) and bytes
    from there on (so ``536870912`` is 512 MiB).
    """
    if _is_number(value):
        number, unit, bare = _as_float(value), "", True
    elif isinstance(value, str):
        match = _MEMORY.match(value)
        if not match:
            raise ValueError(
                "must be a size such as 512m, 4g or 1.5G (units b, k, m, g, t), or a bare number of GB"
            )
        number = float(match.group(1))
        unit = match.group(2).lower()
        bare = not unit and not match.group(3)
    else:
        raise ValueError("must be a size such as 512m or 4g")
    if not math.isfinite(number):
        raise ValueError("must be a finite size")
    if bare:
        factor = 1 if number >= BARE_NUMBER_BYTES_THRESHOLD else _UNIT_FACTORS["g"]
    else:
        factor = _UNIT_FACTORS[unit]
    product = number * factor
    if not math.isfinite(product):  # e.g. -1.7e299 GB: finite, but not once in bytes
        raise ValueError("must be a size such as 512m or 4g (got a number too large)")
    size = int(product)
    if size <= 0:
        raise ValueError("must be greater than 0")
    return size


def format_memory(size: int) -> str:
    """Shortest exact Docker-style spelling of *size* bytes (``4g``, ``512m``, ``1000b``).

    ``parse_memory(format_memory(n)) == n`` for every positive *n*.
    """
    for unit in ("t", "g", "m", "k"):
        factor = _UNIT_FACTORS[unit]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}b"


def parse_cpu(value: Any) -> float:
    """Parse a CPU count (cores, fractions allowed: ``0.5``, ``2``)."""
    if _is_number(value):
        number = _as_float(value)
    elif isinstance(value, str) and value.strip():
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("must be a number of cores such as 0.5 or 2") from None
    else:
        raise ValueError("must be a number of cores such as 0.5 or 2")
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be a number of cores greater than 0")
    return number


@dataclass(frozen=True)
class GpuRequest:
    """What a user asked for: all GPUs (``count == -1``), a count, or device ids."""

    count: int = 0
    device_ids: tuple[str, ...] = ()

    @property
    def wanted(self) -> bool:
        return self.count != 0 or bool(self.device_ids)

    @property
    def amount(self) -> int | None:
        """How many GPUs this request takes; ``None`` for *all*."""
        if self.count == -1:
            return None
        return len(self.device_ids) if self.device_ids else self.count

    def __str__(self) -> str:
        if self.device_ids:
            return ",".join(self.device_ids)
        if self.count == -1:
            return "all"
        return str(self.count) if self.count else ""


def parse_gpus(value: Any) -> GpuRequest:
    """Parse ``""``/``None`` (none), ``all``, a count (``2``) or device ids (``0,2``)."""
    if value is None:
        return GpuRequest()
    if _is_number(value):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("must be empty, 'all', a whole number of GPUs, or device ids like 0,2")
        value = str(int(value))
    if isinstance(value, list):
        if not all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
            raise ValueError("device ids must be numbers like [0, 2]")
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ValueError("must be empty, 'all', a number of GPUs, or device ids like 0,2")
    text = value.strip().lower()
    if text in ("", "0", "none"):
        return GpuRequest()
    if text == "all":
        return GpuRequest(count=-1)
    if re.fullmatch(r"\d+", text):
        return GpuRequest(count=int(text))
    ids = [part.strip() for part in text.split(",")]
    if ids and all(re.fullmatch(r"\d{1,3}", part) for part in ids):
        if len(set(ids)) != len(ids):
            raise ValueError("device ids must not repeat")
        return GpuRequest(device_ids=tuple(ids))
    raise ValueError("must be empty, 'all', a number of GPUs, or device ids like 0,2")


def parse_env(value: Any) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (blank lines and ``#`` comments skipped) or a JSON object."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        items = []
        for key, val in value.items():
            if _is_number(val) or isinstance(val, bool):
                val = str(val).lower() if isinstance(val, bool) else str(val)
            if not isinstance(val, str):
                raise ValueError(f"value of {key!r} must be a string")
            items.append((key, val))
    elif isinstance(value, str):
        items = []
        for number, line in enumerate(value.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if "=" not in stripped:
                raise ValueError(f"line {number} ({stripped[:40]!r}) is not KEY=VALUE")
            key, val = stripped.split("=", 1)
            items.append((key.strip(), val))
    else:
        raise ValueError("must be KEY=VALUE lines or an object of strings")
    if len(items) > MAX_ENV_ENTRIES:
        raise ValueError(f"at most {MAX_ENV_ENTRIES} variables are allowed")
    env: dict[str, str] = {}
    for key, val in items:
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise ValueError(
                f"{str(key)[:40]!r} is not a valid variable name "
                "(letters, digits and _, not starting with a digit)"
            )
        if "\x00" in val or len(val) > MAX_ENV_VALUE_LENGTH:
            raise ValueError(f"value of {key} must be at most {MAX_ENV_VALUE_LENGTH} characters, without NUL")
        if key in env:
            raise ValueError(f"{key} is set twice")
        env[key] = val
    return env


def parse_bool(value: Any) -> bool:
    """Parse a checkbox or JSON boolean (``true``/``false``, ``on``/``off``, ``1``/``0``)."""
    if isinstance(value, bool):
        return value
    if _is_number(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("must be true or false")


def parse_days(value: Any) -> float:
    """Parse days to live: a number >= 0; empty or 0 means never expires (returns 0)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0.0
    if _is_number(value):
        number = _as_float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("must be a number of days (0 or empty: never expires)") from None
    else:
        raise ValueError("must be a number of days (0 or empty: never expires)")
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a number of days >= 0 (0 or empty: never expires)")
    return number
