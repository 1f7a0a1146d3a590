"""The workspace state schema: what a server's spawner state holds, read in one place.

JupyterHub keeps each server's ``spawner.get_state()`` in its database and hands it out in the
REST API (``admin:server_state``). MLHub's spawners put their own part under :data:`STATE_KEY`
(who created the workspace, its expiry, its options and bounds: :class:`WorkspaceMeta`); the
engine's spawner keeps its handle on the running object next to it (:func:`engine_object_ref`).
The spawners write it; the hub's Workspaces page, the cleanup service and the SSH gateway read it
with these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The key of MLHub's part of a spawner's state.
STATE_KEY = "mlhub"


@dataclass
class WorkspaceMeta:
    """What MLHub remembers about a server across stops and hub restarts."""

    created_by: str = ""
    days_to_live: float = 0.0
    expiration_timestamp: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    #: the admin's bounds this workspace got: "pids" (processes), "disk" (/workspace bytes)
    bounds: dict[str, int] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "created_by": self.created_by,
            "days_to_live": self.days_to_live,
            "expiration_timestamp": self.expiration_timestamp,
            "options": self.options,
        }
        if self.bounds:
            state["bounds"] = dict(self.bounds)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> WorkspaceMeta | None:
        """From MLHub's part of the state (``state["mlhub"]``); None when there is none."""
        if not state or not isinstance(state, dict):
            return None
        bounds = state.get("bounds")
        return cls(
            created_by=str(state.get("created_by", "")),
            days_to_live=float(state.get("days_to_live") or 0),
            expiration_timestamp=int(state.get("expiration_timestamp") or 0),
            options=dict(state.get("options") or {}),
            bounds={
                k: int(v)
                for k, v in (bounds if isinstance(bounds, dict) else {}).items()
                if isinstance(v, int)
            },
        )


def meta_of_state(state: Any) -> WorkspaceMeta | None:
    """MLHub's meta in a whole spawner state (as the DB and the REST API hold it), or None."""
    return WorkspaceMeta.from_state(state.get(STATE_KEY)) if isinstance(state, dict) else None


def engine_object_ref(state: Any) -> str:
    """The engine spawner's handle on the running object in a spawner state: DockerSpawner's
    container id (``object_id``, or ``object_name``), KubeSpawner's pod name; "" when none."""
    if not isinstance(state, dict):
        return ""
    return str(state.get("object_id") or state.get("object_name") or state.get("pod_name") or "")
