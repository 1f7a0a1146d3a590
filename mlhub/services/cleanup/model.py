"""What the cleanup service reasons about: engine resources, hub servers, and a plan."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlhub.engines.base import Resource

__all__ = ["Action", "HubServer", "Plan", "Resource"]


@dataclass(frozen=True)
class HubServer:
    """A server as the hub's REST API reports it (running or stopped)."""

    user: str
    name: str
    expiration_timestamp: int
    running: bool


@dataclass(frozen=True)
class Action:
    """One decision: remove or keep an object (a resource or a hub server), and why."""

    kind: str
    name: str
    reason: str
    user: str | None = None
    server_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Plan:
    """What a run will remove (in order) and what it keeps."""

    remove_servers: list[Action] = field(default_factory=list)
    remove_resources: list[tuple[Resource, Action]] = field(default_factory=list)
    keep: list[Action] = field(default_factory=list)
