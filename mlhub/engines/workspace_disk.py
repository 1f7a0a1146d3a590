"""A size cap for each ``/workspace`` volume on the Docker engine: a sparse ext4 image file
per volume, loop-mounted by the hub and bound into the Docker volume.

Docker's ``local`` driver has no size option on overlay2/ext4 (and ``--storage-opt size`` needs
xfs with project quotas), so the cap is a file system of its own: ``<dir>/<volume>.img``
(sparse: it takes only what is written), mounted on ``<dir>/<volume>/``; the Docker volume
binds ``<dir>/<volume>/workspace``. That folder exists only while the image is mounted, so a
volume whose image is not mounted (after a reboot) cannot start and silently write to the
host's disk: the hub mounts it again before every start. Writing past the cap fails with
ENOSPC inside the workspace. Decision and limits: docs/decisions/workspace-disk-limit.md.

Blocking (subprocesses, file system): call from a thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Tools the cap needs on the host.
TOOLS = ("mkfs.ext4", "mount", "umount")


class DiskError(RuntimeError):
    """The workspace's disk image could not be made, mounted or removed."""


def unsupported_reason(in_container: bool = False, euid: int | None = None) -> str | None:
    """Why this hub cannot cap workspace disks (None: it can)."""
    if in_container:
        return "the hub runs in a container, and loop mounts made there are not visible to the Docker engine"
    if (os.geteuid() if euid is None else euid) != 0:
        return "the hub does not run as root (loop-mounting disk images needs root)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} missing on the host (install e2fsprogs and mount)"
    if not os.path.exists("/dev/loop-control"):
        return "the host has no loop devices (/dev/loop-control missing)"
    return None


def _run(*args: str) -> None:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise DiskError(f"{' '.join(args)} failed: {(result.stderr or result.stdout).strip()[:300]}")


@dataclass(frozen=True)
class WorkspaceDisk:
    """The disk image behind one workspace volume."""

    root: Path
    volume: str

    @property
    def image(self) -> Path:
        return self.root / f"{self.volume}.img"

    @property
    def mountpoint(self) -> Path:
        return self.root / self.volume

    @property
    def device(self) -> Path:
        """What the Docker volume binds: inside the mounted file system only."""
        return self.mountpoint / "workspace"

    def driver_options(self) -> dict[str, str]:
        """``local`` driver options that bind the mounted image's folder."""
        return {"type": "none", "o": "bind", "device": str(self.device)}

    def exists(self) -> bool:
        return self.image.is_file()

    def is_mounted(self) -> bool:
        return os.path.ismount(self.mountpoint)

    def create(self, size: int) -> None:
        """A new sparse image of *size* bytes with an empty ext4 file system, mounted."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.exists():
            raise DiskError(f"disk image {self.image} already exists")
        try:
            with open(self.image, "xb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.truncate(size)
            # no blocks reserved for root: the user gets the whole size; lazy init leaves the
            # journal and inode tables unwritten, so a new 10G image takes about 4 MB
            _run(
                "mkfs.ext4",
                "-q",
                "-F",
                "-m",
                "0",
                "-L",
                "mlhub-ws",
                "-E",
                "lazy_itable_init=1,lazy_journal_init=1",
                str(self.image),
            )
            self.ensure_mounted()
            # empty, so Docker copies the image's /workspace (content and owner) into it
            self.device.mkdir(mode=0o755, exist_ok=True)
        except BaseException:
            self.remove()
            raise

    def ensure_mounted(self) -> None:
        """Mount the image (again, e.g. after a reboot) unless it is mounted."""
        if self.is_mounted():
            return
        if not self.exists():
            raise DiskError(f"disk image {self.image} is missing")
        self.mountpoint.mkdir(mode=0o700, exist_ok=True)
        # discard: space freed inside goes back to the host (the image stays sparse)
        _run("mount", "-o", "loop,discard,nodev,nosuid", str(self.image), str(self.mountpoint))

    def remove(self) -> None:
        """Unmount and delete the image; what is already gone is fine."""
        if self.is_mounted():
            try:
                _run("umount", str(self.mountpoint))
            except DiskError:
                # still busy (a container being torn down): detach now, freed when released
                _run("umount", "-l", str(self.mountpoint))
        self.image.unlink(missing_ok=True)
        try:
            self.mountpoint.rmdir()
        except FileNotFoundError:
            pass


def disk_of_volume(volume: dict[str, Any]) -> WorkspaceDisk | None:
    """The disk image behind a Docker volume (its ``docker volume inspect``), or None when
    the volume is no capped workspace volume (bound to ``<dir>/<volume name>/workspace`` with
    ``<dir>/<volume name>.img`` next to it)."""
    options = volume.get("Options") or {}
    name = volume.get("Name") or ""
    if options.get("type") != "none" or "bind" not in (options.get("o") or "").split(","):
        return None
    device = Path(options.get("device") or "")
    if not device.is_absolute() or device.name != "workspace" or device.parent.name != name:
        return None
    disk = WorkspaceDisk(device.parent.parent, name)
    return disk if disk.exists() or disk.is_mounted() else None
