"""Pure decisions: which resources and servers a cleanup run removes, and why.

No I/O: the runner gathers the facts (hub users and servers, labelled engine resources),
these functions decide, and the runner acts. Safety rules live here, tested directly:
only resources of this hub (``mlhub.origin``) and this install (``mlhub.install``) are ever
considered, objects made before install ids are never removed by the ``users`` run, and a
volume of an account that still exists is never removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mlhub.core.labels import INSTALL, ORIGIN, USER_CREATED, expiration_of, made_by_ml_hub
from mlhub.core.ownership import same_account
from mlhub.services.cleanup.model import Action, HubServer, Plan, Resource

#: Removal order: what uses a thing goes before the thing.
KIND_ORDER = {"container": 0, "pod": 0, "service": 1, "volume": 2, "pvc": 2, "network": 3, "networkpolicy": 3}
CONTAINER_KINDS = {"container", "pod", "service"}
STORAGE_KINDS = {"volume", "pvc"}


def _ordered(items: list[tuple[Resource, Action]]) -> list[tuple[Resource, Action]]:
    return sorted(items, key=lambda item: (KIND_ORDER.get(item[0].kind, 9), item[0].name))


def _mine(resources: Iterable[Resource], hub_name: str, install_id: str = "") -> list[Resource]:
    """This hub's resources, less those another install made (same HUB_NAME, other
    ``mlhub.install``); resources without an install id (older versions) are included."""
    return [
        r
        for r in resources
        if r.labels.get(ORIGIN) == hub_name and r.labels.get(INSTALL, install_id) in (install_id, "")
    ]


ML_HUB = (
    "ML Hub's workspace (made by ML Hub, the version before MLHub): not removed automatically; "
    "move its files over and remove it by hand (docs/migrating-from-ml-hub.md)"
)
NO_INSTALL = f"no {INSTALL} label (made before install ids, or by hand): not removed automatically; remove it by hand if unused"


def plan_orphans(
    hub_name: str,
    users: set[str] | Mapping[str, int | None],
    servers: list[HubServer],
    resources: Iterable[Resource],
    stale_before: float = 0.0,
    install_id: str = "",
    deleted_user_volumes: str = "remove",
) -> Plan:
    """Resources of users who are gone; containers of servers the hub no longer has, or whose
    server the hub says is stopped while the container still runs.

    A deleted user's containers, volumes and network go. For a user who still exists, a
    container whose server is not in the hub any more goes too, and so does a running (or
    created, never started) container whose server is neither running nor starting nor
    stopping in the hub, if it was created before *stale_before* (the moment the hub was
    asked, less a margin: a spawn begun after that is not mistaken for a leftover). Such
    containers are left by starts interrupted between the engine's answer and the hub's. The
    user's volumes and network always stay.

    *users* maps each user name to when its account was created (or is a set of names): a
    resource labelled ``mlhub.user_created`` for another account of that name belongs to a
    deleted account, like a resource of a user who is gone. Volumes of deleted accounts stay
    when *deleted_user_volumes* is ``keep``. With an *install_id*, resources without
    ``mlhub.install`` are only reported.
    """
    plan = Plan()
    accounts = users if isinstance(users, Mapping) else dict.fromkeys(users)
    known = {(s.user, s.name) for s in servers}
    running = {(s.user, s.name) for s in servers if s.running}
    for resource in _mine(resources, hub_name, install_id):
        user = resource.user
        if install_id and not resource.labels.get(INSTALL):
            why = ML_HUB if made_by_ml_hub(resource.name, resource.labels) else NO_INSTALL
            plan.keep.append(Action(resource.kind, resource.name, why, user, resource.server_name))
            continue
        if user is None:
            plan.keep.append(Action(resource.kind, resource.name, "no mlhub.user label"))
            continue
        if user not in accounts:
            gone = "user no longer exists in the hub"
        elif not same_account(resource.labels.get(USER_CREATED), accounts[user]):
            gone = "its account was deleted (a newer account has this user name)"
        else:
            gone = ""
        if gone and resource.kind in STORAGE_KINDS and deleted_user_volumes == "keep":
            plan.keep.append(
                Action(
                    resource.kind,
                    resource.name,
                    f"{gone}; kept (deleted_user_volumes=keep)",
                    user,
                    resource.server_name,
                )
            )
        elif gone:
            plan.remove_resources.append(
                (resource, Action(resource.kind, resource.name, gone, user, resource.server_name))
            )
        elif resource.kind in CONTAINER_KINDS and (user, resource.server_name or "") not in known:
            plan.remove_resources.append(
                (
                    resource,
                    Action(
                        resource.kind,
                        resource.name,
                        "server no longer exists in the hub",
                        user,
                        resource.server_name,
                    ),
                )
            )
        elif (
            resource.kind in CONTAINER_KINDS
            and resource.active
            and 0 < resource.created < stale_before
            and (user, resource.server_name or "") not in running
        ):
            reason = "runs while its server is stopped in the hub (left by an interrupted start)"
            plan.remove_resources.append(
                (resource, Action(resource.kind, resource.name, reason, user, resource.server_name))
            )
        else:
            plan.keep.append(Action(resource.kind, resource.name, "user exists", user, resource.server_name))
    plan.remove_resources = _ordered(plan.remove_resources)
    return plan


def plan_expired(
    hub_name: str, servers: list[HubServer], resources: Iterable[Resource], now: float, install_id: str = ""
) -> Plan:
    """Servers whose expiry has passed (deleted through the hub), then their containers.

    Containers with a past expiry label whose server the hub does not know any more (for
    example ML Hub's, or left after a failed run) are removed too, also ones made before
    install ids (their expiry label asks for it); another install's never. Volumes are not:
    they follow the volume policy of the server's deletion and the orphan rules.
    """
    plan = Plan()
    expired_servers = set()
    for server in servers:
        label = f"{server.user}/{server.name}" if server.name else server.user
        if server.expiration_timestamp and server.expiration_timestamp <= now:
            expired_servers.add((server.user, server.name))
            plan.remove_servers.append(
                Action("server", label, f"expired at {server.expiration_timestamp}", server.user, server.name)
            )
        elif server.expiration_timestamp:
            plan.keep.append(
                Action("server", label, f"expires at {server.expiration_timestamp}", server.user, server.name)
            )
        else:
            plan.keep.append(Action("server", label, "never expires", server.user, server.name))
    for resource in _mine(resources, hub_name, install_id):
        if resource.kind not in CONTAINER_KINDS:
            continue
        expires = expiration_of(resource.labels)
        key = (resource.user, resource.server_name or "")
        if key in expired_servers or (expires and expires <= now):
            reason = "its server expired" if key in expired_servers else f"expired at {expires}"
            plan.remove_resources.append(
                (resource, Action(resource.kind, resource.name, reason, resource.user, resource.server_name))
            )
    plan.remove_resources = _ordered(plan.remove_resources)
    return plan
