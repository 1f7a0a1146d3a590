"""A service ends with the hub that started it (docs/decisions/services-base.md).

No tornado or jupyterhub here: ``mlhub.services.idle_culler`` uses it before it execs.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
from pathlib import Path
from typing import NoReturn

from mlhub.core.background import background

log = logging.getLogger("mlhub.services")

#: How often a service looks whether its hub still runs (seconds).
HUB_CHECK_INTERVAL = 2.0
_PR_SET_PDEATHSIG = 1
#: Set by the hub's config in each service's environment: the hub's own pid.
HUB_PID_VARIABLE = "MLHUB_HUB_PID"


def hub_pid() -> int | None:
    """The pid of the hub that started this service: ``MLHUB_HUB_PID``, which the hub's config
    sets for its services (None without it)."""
    try:
        return int(os.environ[HUB_PID_VARIABLE])
    except (KeyError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Whether *pid* runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc to read: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def watched_parent() -> int:
    """The process whose end ends this service: its parent, once it is known that the hub did
    not die while the service was starting. When the parent is not the hub (MLHUB_HUB_PID) and
    the hub no longer runs, Linux has re-parented the service already and sends no death signal
    for a parent gone before the request: the service exits now. A parent that is not the hub
    while the hub runs is a wrapper (``sh -c`` in an admin's service command): it is watched."""
    parent, hub = os.getppid(), hub_pid()
    if hub is not None and parent != hub and not alive(hub):
        _exit(f"the hub (pid {hub}) was gone before this service started")
    return parent


def die_with_parent() -> int:
    """Ask Linux to send SIGTERM when the process that started us dies (best effort), then
    check that it had not died already (:func:`watched_parent`). Returns the parent's pid."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    return watched_parent()


def _exit(reason: str) -> NoReturn:
    log.warning("%s: exiting", reason)
    logging.shutdown()
    os._exit(0)


async def _terminated(who: str, hub_pid: int, signame: str) -> NoReturn:
    """Exit on SIGTERM or SIGINT, saying whether the hub died: the death signal can come while
    the hub's last threads are still exiting, so its pid is looked at for a moment first."""
    for _ in range(20):
        if os.getppid() != hub_pid:
            _exit(f"{who}: the hub (pid {hub_pid}) is gone")
        await asyncio.sleep(0.05)
    _exit(f"{who}: stopped by {signame}")


async def watch_hub(who: str, interval: float = HUB_CHECK_INTERVAL) -> NoReturn:
    """Exit when the hub that started this service is gone.

    The hub is this process's parent: when it dies, Linux sends SIGTERM (``PR_SET_PDEATHSIG``;
    also when the hub thread that started us ends, so the signal alone proves nothing) and the
    parent pid changes (re-parented), which this loop also sees on systems without the signal.
    A SIGINT or SIGTERM from a live hub (JupyterHub stops a service with SIGINT first) ends the
    service as well, with one log line rather than a KeyboardInterrupt's traceback.
    """
    loop = asyncio.get_running_loop()
    hub = die_with_parent()

    def on_signal(name: str) -> None:
        background(_terminated(who, hub, name))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum.name)
    while True:
        if os.getppid() != hub:
            _exit(f"{who}: the hub (pid {hub}) is gone")
        await asyncio.sleep(interval)
