"""Safe, collision-free names for Docker (and later Kubernetes) objects.

Every object name MLHub creates (containers, networks, volumes) is built here, from the hub
name, the user name and the server name. Names must satisfy Docker's rule for object names
(``[a-zA-Z0-9][a-zA-Z0-9_.-]*``) and Kubernetes' DNS-1123 label rule (lowercase alphanumerics
and ``-``, at most 63 characters, starting and ending with an alphanumeric).

A value that is already safe is kept as it is, so names stay readable (``mlhub-alice``).
A value that had to be changed (upper case, ``@``, dots, too long ...) gets a short hash of
the *original* value appended, so two different users can never map to the same name
(``Alice`` and ``alice`` become ``alice-3b1f0c`` and ``alice``).
"""

from __future__ import annotations

import hashlib
import re

#: Separator between user and server part. ``--`` cannot occur inside a slug (runs of
#: non-alphanumerics are collapsed to a single ``-``), so ``<user>--<server>`` is unambiguous.
SERVER_SEPARATOR = "--"

_SAFE_SLUG = re.compile(r"^[a-z0-9]([a-z0-9]|-(?!-))*$")
_UNSAFE_RUN = re.compile(r"[^a-z0-9]+")
_HASH_LENGTH = 8

#: Longest slug for one part (user or server); the full name stays within 63 characters
#: for a hub name of up to 12 characters (12 + 1 + 20 + 2 + 20 = 55).
MAX_PART_LENGTH = 20


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:_HASH_LENGTH]


def safe_slug(value: str, max_length: int = MAX_PART_LENGTH) -> str:
    """Return a DNS-label-safe slug for *value*, unique per distinct *value*.

    >>> safe_slug("alice")
    'alice'
    >>> safe_slug("Alice") != safe_slug("alice")
    True
    """
    if max_length < _HASH_LENGTH + 2:
        raise ValueError(f"max_length must be at least {_HASH_LENGTH + 2}")
    if value and len(value) <= max_length and _SAFE_SLUG.match(value) and not value.endswith("-"):
        return value
    cleaned = _UNSAFE_RUN.sub("-", value.lower()).strip("-")
    keep = max_length - _HASH_LENGTH - 1
    cleaned = cleaned[:keep].strip("-")
    digest = _digest(value)
    return f"{cleaned}-{digest}" if cleaned else f"x-{digest}"[:max_length]


def is_valid_hub_name(hub_name: str) -> bool:
    """Hub names are DNS labels of 1 to 12 characters (see docs/decisions/hub-name.md)."""
    return bool(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", hub_name))


def user_network_name(hub_name: str, user_name: str) -> str:
    """The bridge network shared by all workspaces of one user: ``<hub>-<user>``."""
    return f"{hub_name}-{safe_slug(user_name)}"


def workspace_name(hub_name: str, user_name: str, server_name: str) -> str:
    """Container (or pod) name: ``<hub>-<user>`` or ``<hub>-<user>--<server>``."""
    base = f"{hub_name}-{safe_slug(user_name)}"
    if server_name:
        return f"{base}{SERVER_SEPARATOR}{safe_slug(server_name)}"
    return base


def workspace_volume_name(hub_name: str, user_name: str, server_name: str) -> str:
    """Named volume that persists ``/workspace`` of one server."""
    return f"{workspace_name(hub_name, user_name, server_name)}-workspace"


_INSTALL_ID = re.compile(r"^[a-z0-9]{8,40}$")


def is_valid_install_id(value: str) -> bool:
    """An install id (``MLHUB_INSTALL_ID``, the ``mlhub.install`` label): 8-40 lowercase letters or digits."""
    return bool(_INSTALL_ID.match(value))
