"""This install's id, and its claim on HUB_NAME on a Docker engine.

Each install generates a random id once and keeps it in its data directory (mode 600); every
object it makes carries it as ``mlhub.install``. The first start of an install on an engine
creates a small volume ``<HUB_NAME>--install`` labelled with its id: the claim on the name.
A hub whose id differs from the claim (or from the ``mlhub.install`` of objects with its
HUB_NAME) is another install and does not start. See docs/decisions/ownership.md.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from docker.errors import NotFound

from mlhub.core import labels as L
from mlhub.core.names import is_valid_install_id

INSTALL_ID_FILE = "install-id"


class InstallError(RuntimeError):
    """The install id is unreadable, or the hub name belongs to another install here."""


def read_or_create_install_id(data_dir: str) -> str:
    """The id in ``<data_dir>/install-id``, generated (mode 600) when the file is missing."""
    path = os.path.join(data_dir, INSTALL_ID_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except FileNotFoundError:
        value = secrets.token_hex(8)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of this install wrote it just now
            return read_or_create_install_id(data_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value + "\n")
        return value
    if not is_valid_install_id(value):
        raise InstallError(
            f"{path}: must hold 8-40 lowercase letters or digits (this install's id), got {value[:60]!r}"
        )
    return value


def claim_name(hub_name: str) -> str:
    """The volume that claims *hub_name* on an engine (``--`` is in no workspace's name)."""
    return f"{hub_name}--install"


def _taken(hub_name: str, other: str, where: str, install_id: str, id_file: str) -> InstallError:
    return InstallError(
        f"HUB_NAME {hub_name!r} is already used on this Docker engine by another MLHub install "
        f"(install id {other or 'none'}, on {where}); this install's id is {install_id} ({id_file}).\n"
        "Two hubs with one name would take each other's workspaces and remove each other's "
        "volumes, so this hub does not start.\n"
        "What to do: choose another HUB_NAME for this hub (e.g. "
        f"HUB_NAME={hub_name[:10]}-2); or, if that other install is gone for good and this hub "
        f"replaces it, write its id {other} into {id_file} (this hub then owns its workspaces), or "
        f"remove its objects (docker volume rm {claim_name(hub_name)}, and what carries "
        f"{L.INSTALL}={other})."
    )


def claim_hub_name(api: Any, hub_name: str, install_id: str, id_file: str) -> bool:
    """Make sure *hub_name* on this engine belongs to this install; True when it was claimed
    now (first start here, or the first start since install ids). Raises InstallError when
    another install holds it. *api* is a ``docker.APIClient``."""
    marker = claim_name(hub_name)
    try:
        found = api.inspect_volume(marker)
    except NotFound:
        found = None
    if found is not None:
        other = (found.get("Labels") or {}).get(L.INSTALL, "")
        if other != install_id:
            raise _taken(hub_name, other, f"volume {marker!r}", install_id, id_file)
        return False
    # No claim yet: objects of this name made by another install (its claim removed by hand,
    # e.g. with `docker volume prune -a`) still say the name is taken. Objects without an
    # install id were made before install ids, by this hub's older version: not a conflict.
    flt = {"label": [f"{L.ORIGIN}={hub_name}", L.INSTALL]}
    listings = (
        (
            "container",
            lambda: api.containers(all=True, filters=flt),
            lambda o: (o.get("Names") or ["?"])[0].lstrip("/"),
        ),
        ("volume", lambda: api.volumes(filters=flt).get("Volumes") or [], lambda o: o["Name"]),
        ("network", lambda: api.networks(filters=flt), lambda o: o["Name"]),
    )
    for kind, listing, name_of in listings:
        for obj in listing():
            other = (obj.get("Labels") or {}).get(L.INSTALL, "")
            if other != install_id:
                raise _taken(hub_name, other, f"{kind} {name_of(obj)!r}", install_id, id_file)
    labels = {L.ORIGIN: hub_name, L.INSTALL: install_id, L.ROLE: "install"}
    api.create_volume(marker, driver="local", labels=labels)
    # two installs starting at once: creating an existing volume succeeds and keeps the first
    # one's labels, so read back whose claim stands
    other = (api.inspect_volume(marker).get("Labels") or {}).get(L.INSTALL, "")
    if other != install_id:
        raise _taken(hub_name, other, f"volume {marker!r}", install_id, id_file)
    return True
