"""Whose is this object? The rules that keep a re-created account, another install and
another hub off each other's containers, volumes, networks and PVCs.

Pure functions (labels and times in, a verdict out), shared by the spawners and the cleanup
service. The decision and its reasons: docs/decisions/ownership.md.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from mlhub.core import labels as L

#: Databases that keep whole seconds round the creation time (MySQL) or cut it (MariaDB);
#: two times this close belong to the same account.
SAME_ACCOUNT_SECONDS = 1

#: What happens to the volumes of a deleted account (MLHUB_DELETED_USER_VOLUMES).
DELETED_USER_VOLUMES = ("remove", "keep")


class Verdict(enum.Enum):
    MINE = "mine"
    #: this hub and user name, but an account deleted before the current one was created
    EARLIER_ACCOUNT = "earlier account"
    #: another hub, another install, another user or server
    FOREIGN = "foreign"


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an engine's or the hub's time (ISO 8601, nanoseconds allowed, or a
    number); None when missing or unreadable (Docker writes year 1 for "unknown")."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = _FRACTION.sub(r"\1", str(value).strip())
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp()
    return seconds if seconds > 0 else None


def account_created(user: Any) -> int | None:
    """When JupyterHub created this account (epoch seconds), from ``user.created`` (naive
    datetimes are UTC, as JupyterHub stores them); None if unknown."""
    created = getattr(user, "created", None)
    if isinstance(created, datetime):
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return int(created.timestamp())
    seconds = parse_time(created)
    return None if seconds is None else int(seconds)


def same_account(label: str | None, created: int | None) -> bool:
    """Whether an ``mlhub.user_created`` label names the account created at *created*."""
    if created is None or not label:
        return True
    try:
        return abs(int(label) - created) <= SAME_ACCOUNT_SECONDS
    except ValueError:
        return False


def judge(
    found: Mapping[str, str] | None,
    hub_name: str,
    user_name: str,
    install_id: str,
    user_created: int | None,
    object_created: float | None = None,
    server_name: str | None = None,
) -> tuple[Verdict, str]:
    """Whether an object found under a name this account wants is the account's own.

    - another hub, user or server (labels), or another install's ``mlhub.install``: FOREIGN;
    - ``mlhub.user_created`` of another account: EARLIER_ACCOUNT (names are unique in the
      hub, so that account was deleted);
    - made before these labels existed (no ``mlhub.user_created``): the account's own, unless
      the engine made the object before the account was created, which only an earlier
      account of that name can have done: EARLIER_ACCOUNT. Objects without ``mlhub.install``
      are adopted (made by this hub before install ids).
    """
    found = found or {}
    wanted = {L.ORIGIN: hub_name, L.USER: user_name}
    if server_name is not None:
        wanted[L.SERVER_NAME] = server_name
    for key, value in wanted.items():
        if found.get(key) != value:
            return Verdict.FOREIGN, f"{key}={found.get(key)!r}, not {value!r}"
    install = found.get(L.INSTALL)
    if install and install != install_id:
        return Verdict.FOREIGN, f"made by another MLHub install ({L.INSTALL}={install})"
    label = found.get(L.USER_CREATED)
    if label:
        if same_account(label, user_created):
            return Verdict.MINE, "same account"
        return (
            Verdict.EARLIER_ACCOUNT,
            f"made for an earlier account named {user_name!r} ({L.USER_CREATED}={label})",
        )
    if (
        object_created is not None
        and user_created is not None
        and object_created < user_created - SAME_ACCOUNT_SECONDS
    ):
        return (
            Verdict.EARLIER_ACCOUNT,
            f"made before the account {user_name!r} was created, so for an earlier one",
        )
    return Verdict.MINE, "made before account labels; adopted"


def moved_aside_name(base: str, user_created: int) -> str:
    """The volume (or PVC) name of an account whose usual name is held by an earlier
    account's kept volume: ``<usual>-<account created>``."""
    return f"{base}-{user_created}"
