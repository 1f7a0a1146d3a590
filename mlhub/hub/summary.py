"""What the hub's pages show about one workspace: owner, resources, creator, time left.

Pure functions of a spawner's remembered options and expiry, so the home page, the admin's
Workspaces page and tests all agree on the same words.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from mlhub.core.parsing import format_memory
from mlhub.core.workspace import WorkspaceMeta, meta_of_state

SECONDS_PER_DAY = 24 * 3600

#: Image repositories that carry the workspace tools (``MLHubSpawner.tool_images``' default).
DEFAULT_TOOL_IMAGES: tuple[str, ...] = ("mlhub/workspace",)

#: Tools of the bundled workspace image, in menu order: (path under tools/, label).
WORKSPACE_TOOLS: tuple[tuple[str, str], ...] = (
    ("vscode/", "VS Code"),
    ("tensorboard/", "TensorBoard"),
    ("monitor/", "Monitoring"),
    ("desktop/vnc.html?autoconnect=true&resize=remote&path={url}tools/desktop/websockify", "Desktop"),
)


@dataclass(frozen=True)
class WorkspaceSummary:
    """One workspace as a table row."""

    owner: str
    name: str  # "" = the default server
    status: str  # running | starting | stopping | stopped
    url: str
    image: str = ""
    cpu: str = ""
    memory: str = ""
    gpus: str = ""
    processes: str = ""
    disk: str = ""
    volume: bool = True
    created_by: str = ""
    expires_at: int = 0  # epoch seconds, 0 = never
    time_left: str = "never expires"
    expired: bool = False
    tools: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return self.name or "default"

    @property
    def resources(self) -> str:
        parts = [
            self.cpu and f"{self.cpu} CPU",
            self.memory and f"{self.memory} memory",
            self.gpus and f"GPUs {self.gpus}",
            self.processes and f"{self.processes} processes",
            self.disk and f"{self.disk} disk",
        ]
        return ", ".join(p for p in parts if p) or "hub defaults"


def time_left(expires_at: int, now: float | None = None) -> tuple[str, bool]:
    """(``"2 days 3 hours left"`` or ``"never expires"`` or ``"expired"``, whether expired)."""
    if not expires_at:
        return "never expires", False
    now = time.time() if now is None else now
    left = int(expires_at - now)
    if left <= 0:
        return "expired", True
    days, rest = divmod(left, SECONDS_PER_DAY)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        text = f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    elif hours:
        text = f"{hours} h" + (f" {minutes} min" if minutes else "")
    else:
        text = f"{max(minutes, 1)} min"
    return f"{text} left", False


def _repository(image: str) -> str:
    """``registry:5000/mlhub/workspace:full`` -> ``registry:5000/mlhub/workspace``."""
    image = image.split("@", 1)[0]
    if ":" in image.rsplit("/", 1)[-1]:
        image = image[: image.rindex(":")]
    return image


def has_tools(image: str, tool_images: list[str] | tuple[str, ...]) -> bool:
    """Whether *image* is one of the repositories that carry the workspace tools."""
    repository = _repository(image)
    return any(repository == r or repository.endswith("/" + r) for r in tool_images)


def tools_for(image: str, tool_images: list[str] | tuple[str, ...], url: str) -> tuple[tuple[str, str], ...]:
    """(label, URL) of each tool reachable in a workspace running *image*."""
    if not has_tools(image, tool_images):
        return ()
    full = image.endswith(":full")
    return tuple(
        # noVNC finds its WebSocket by a path from the host's root
        (label, f"{url}tools/" + path.replace("{url}", urlparse(url).path.lstrip("/")))
        for path, label in WORKSPACE_TOOLS
        if not path.startswith("desktop") or full
    )


def _meta(spawner: Any) -> WorkspaceMeta:
    """MLHub's remembered meta of a spawner wrapper, or of a stopped server's ORM row."""
    meta = getattr(spawner, "mlhub_meta", None)
    if meta is not None:
        return meta
    return meta_of_state(getattr(spawner, "state", None)) or WorkspaceMeta()


def summarize(
    spawner: Any, owner: Any, tool_images: list[str] | tuple[str, ...], now: float | None = None
) -> WorkspaceSummary:
    """Summary of one of *owner*'s servers.

    *spawner* may be an MLHub spawner, any other JupyterHub spawner, or the ORM row JupyterHub
    hands out for servers that are not running (``User.all_spawners``).
    """
    pending = getattr(spawner, "pending", None)
    if getattr(spawner, "ready", False) is True:
        status = "running"
    elif pending == "spawn":
        status = "starting"
    elif pending == "stop":
        status = "stopping"
    else:
        status = "stopped"
    url = owner.server_url(spawner.name)
    meta = _meta(spawner)
    options: dict[str, Any] = dict(meta.options)
    expires_at = meta.expiration_timestamp
    left, expired = time_left(expires_at, now)
    image = str(options.get("image") or getattr(spawner, "image", "") or "")
    gpus = str(options.get("gpus") or "")
    cpu = options.get("cpu_limit")
    pids, disk = meta.bounds.get("pids"), meta.bounds.get("disk")
    return WorkspaceSummary(
        owner=owner.name,
        name=spawner.name,
        status=status,
        url=url,
        image=image,
        cpu=f"{cpu:g}" if isinstance(cpu, (int, float)) and not isinstance(cpu, bool) else "",
        memory=str(options.get("mem_limit") or ""),
        gpus="" if gpus in ("", "none") else gpus,
        processes=str(pids) if isinstance(pids, int) and pids > 0 else "",
        disk=format_memory(disk) if isinstance(disk, int) and disk > 0 else "",
        volume=bool(options.get("is_mount_volume", True)),
        created_by=meta.created_by,
        expires_at=expires_at,
        time_left=left,
        expired=expired,
        tools=tools_for(image, tool_images, url) if status == "running" else (),
    )
