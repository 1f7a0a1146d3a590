"""The ``mlhub.*`` labels on every object MLHub creates, and how to read them back.

Labels say whose an object is, which hub made it and when it expires; the cleanup service
finds its work by them. Two hubs on one engine never touch each other's objects because
every lookup filters on ``mlhub.origin``; ``mlhub.install`` tells two installs that share a
HUB_NAME apart, and ``mlhub.user_created`` two accounts that shared a user name over time
(see docs/decisions/ownership.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from mlhub.core.options import WorkspaceOptions

PREFIX = "mlhub."
ORIGIN = PREFIX + "origin"
USER = PREFIX + "user"
SERVER_NAME = PREFIX + "server_name"
CREATED_BY = PREFIX + "created_by"
EXPIRATION = PREFIX + "expiration_timestamp_seconds"
CPU_LIMIT = PREFIX + "cpu_limit"
MEM_LIMIT = PREFIX + "mem_limit"
GPUS = PREFIX + "gpus"
#: The CPU limit a workspace booted at, when above its own (docs/decisions/boot-cpu-burst.md).
BOOT_CPU_LIMIT = PREFIX + "boot_cpu_limit"
#: The install that made the object: a random id generated once per install (data directory).
INSTALL = PREFIX + "install"
#: The account that owns it: when JupyterHub created the account (epoch seconds). A new
#: account with an old user name has another value, so it never inherits the old one's data.
USER_CREATED = PREFIX + "user_created"
#: What a hub's own bookkeeping object is (``install``: the claim on HUB_NAME on an engine).
ROLE = PREFIX + "role"
#: ML Hub wrote the expiry without prefix; read it, never write it.
LEGACY_EXPIRATION = "expiration_timestamp_seconds"


def owner_labels(
    hub_name: str, user_name: str, install_id: str = "", user_created: int | None = None
) -> dict[str, str]:
    """Labels on objects that belong to a user as a whole (their network); the install and
    account labels only when known."""
    labels = {ORIGIN: hub_name, USER: user_name}
    if install_id:
        labels[INSTALL] = install_id
    if user_created is not None:
        labels[USER_CREATED] = str(int(user_created))
    return labels


def workspace_labels(
    hub_name: str,
    user_name: str,
    server_name: str,
    created_by: str,
    options: WorkspaceOptions,
    expiration_timestamp: int,
    install_id: str = "",
    user_created: int | None = None,
) -> dict[str, str]:
    """Labels on a workspace's container and volume."""
    return {
        **owner_labels(hub_name, user_name, install_id, user_created),
        SERVER_NAME: server_name,
        CREATED_BY: created_by,
        EXPIRATION: str(int(expiration_timestamp)),
        CPU_LIMIT: "" if options.cpu_limit is None else f"{options.cpu_limit:g}",
        MEM_LIMIT: "" if options.mem_limit is None else str(options.mem_limit),
        GPUS: str(options.gpus),
    }


def origin_filter(hub_name: str, **extra: str) -> dict[str, list[str]]:
    """A Docker ``filters`` argument selecting this hub's objects (optionally narrower)."""
    labels = [f"{ORIGIN}={hub_name}"]
    names = {"user": USER, "server_name": SERVER_NAME}
    labels += [f"{names[key]}={value}" for key, value in extra.items()]
    return {"label": labels}


def expiration_of(labels: Mapping[str, str] | None) -> int:
    """Expiry (epoch seconds, 0 = never) from new or legacy labels; bad values count as never."""
    labels = labels or {}
    for key in (EXPIRATION, LEGACY_EXPIRATION):
        value = labels.get(key)
        if value not in (None, ""):
            try:
                return max(0, int(float(value)))
            except ValueError:
                return 0
    return 0


#: labels only ML Hub put on its workspaces (MLHub's own are prefixed ``mlhub.``)
ML_HUB_ONLY_LABELS = ("expiration_timestamp_seconds", "nvidia_visible_devices", "pod_name")


def made_by_ml_hub(name: str, labels: Mapping[str, str]) -> bool:
    """Whether an object of this hub (``mlhub.origin``) was made by ML Hub, the product MLHub
    replaces: no ``mlhub.install``, and ML Hub's own labels or its ``ws-<user>-<hub>`` names."""
    if INSTALL in labels:
        return False
    return name.startswith("ws-") or any(label in labels for label in ML_HUB_ONLY_LABELS)
