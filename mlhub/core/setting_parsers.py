"""Parsers of the settings table's variables (mlhub/core/settings.py): text in, value out, or
ValueError saying what the variable allows."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from mlhub.core.names import is_valid_hub_name, is_valid_install_id
from mlhub.core.ownership import DELETED_USER_VOLUMES
from mlhub.core.parsing import parse_memory

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be between {low} and {high}" if high else f"must be >= {low}")
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a number >= 0")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise ValueError("must be a number > 0")
    return value


def _hub_name(text: str) -> str:
    if not is_valid_hub_name(text):
        raise ValueError(
            "must be 1-12 lowercase letters, digits or '-', starting and ending with a letter or digit"
        )
    return text


def _images(text: str) -> tuple[str, ...]:
    images = tuple(part.strip() for part in text.split(",") if part.strip())
    if not images:
        raise ValueError("must be a comma-separated list of images")
    return images


def _nonempty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def _interval(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError("must be a whole number of seconds > 0, or -1 for off") from None
    if value == 0 or value < -1:
        raise ValueError("must be a whole number of seconds > 0, or -1 for off")
    return value


def _execution_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode == "local":  # ML Hub's name for the Docker mode
        mode = "docker"
    if mode not in ("docker", "k8s"):
        raise ValueError("must be docker or k8s")
    return mode


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise ValueError("must name an existing file")
    return text


def _quantity(text: str) -> str:
    text = text.strip()
    if not _QUANTITY.match(text):
        raise ValueError("must be a Kubernetes quantity like 10Gi or 500Mi")
    return text


def _dns_label(text: str) -> str:
    text = text.strip()
    if not _DNS_LABEL.match(text):
        raise ValueError("must be a Kubernetes name: lowercase letters, digits and '-', at most 63")
    return text


def _http_url(text: str) -> str:
    text = text.strip()
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return text.rstrip("/")


def _host(text: str) -> str:
    text = text.strip()
    if not text or any(ch in text for ch in "/: ") and not text.startswith("["):
        raise ValueError("must be a host name or IP address (no scheme, port or path)")
    return text


def _public_url(text: str) -> str:
    text = text.strip().rstrip("/")
    parsed = urlparse(text)
    message = "must be the URL people open, http:// or https:// with a host name and no path, e.g. https://hub.example.org"
    try:
        parsed.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError(message) from None
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or parsed.path
        or parsed.query
        or parsed.fragment
    ):
        raise ValueError(message)
    if parsed.username or parsed.password:
        raise ValueError(message)
    return text


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _json_labels(text: str) -> tuple[tuple[str, str], ...]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError('must be a JSON object of strings, e.g. {"accelerator": "nvidia"}') from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError('must be a JSON object of strings, e.g. {"accelerator": "nvidia"}')
    return tuple(sorted(value.items()))


def _json_tolerations(text: str) -> tuple[tuple[tuple[str, Any], ...], ...]:
    allowed = {"key", "operator", "value", "effect", "tolerationSeconds"}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(t, dict) and set(t) <= allowed for t in value):
        raise ValueError(
            'must be a JSON list of tolerations, e.g. [{"key": "nvidia.com/gpu", "operator": "Exists", '
            '"effect": "NoSchedule"}] (fields: key, operator, value, effect, tolerationSeconds)'
        )
    return tuple(tuple(sorted(t.items())) for t in value)


def _install_id(text: str) -> str:
    text = text.strip()
    if not is_valid_install_id(text):
        raise ValueError(
            "must be 8-40 lowercase letters or digits (this install's id; empty: generated into MLHUB_DATA_DIR)"
        )
    return text


def _deleted_user_volumes(text: str) -> str:
    value = text.strip().lower()
    if value not in DELETED_USER_VOLUMES:
        raise ValueError(f"must be {' or '.join(DELETED_USER_VOLUMES)}")
    return value


def _memory(text: str) -> int:
    return parse_memory(text)


def _size_or_off(text: str) -> int:
    """A size like 10g, or 0 for off."""
    if text.strip() == "0":
        return 0
    try:
        size = parse_memory(text)
    except ValueError:
        size = 0
    if size < 16 * 1024**2:
        raise ValueError("must be a size of at least 16m such as 10g or 500m, or 0 for no cap")
    return size
