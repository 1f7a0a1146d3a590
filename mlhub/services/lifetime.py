"""A service ends with the hub that started it (docs/decisions/services-base.md).

No tornado or jupyterhub here: ``mlhub.services.idle_culler`` uses it before it execs.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
from typing import NoReturn

from mlhub.core.background import background

log = logging.getLogger("mlhub.services")

#: How often a service looks whether its hub still runs (seconds).
HUB_CHECK_INTERVAL = 2.0
_PR_SET_PDEATHSIG = 1
#: Set by the hub's config in each service's environment: the hub's own pid.
HUB_PID_VARIABLE = "MLHUB_HUB_PID"


def hub_pid() -> int:
    """The pid of the hub that started this service: ``MLHUB_HUB_PID``, which the hub's config
    sets for its services. The parent pid read here would be the reaper's when the hub died
    while this service was starting; it is the fallback when the variable is missing."""
    try:
        return int(os.environ[HUB_PID_VARIABLE])
    except (KeyError, ValueError):
        return os.getppid()


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the process that started us dies (best effort), and exit
    now if the hub is already gone: Linux sends nothing for a parent that died before the
    request, so a hub stopped while its services started would otherwise leave them running."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    expected = hub_pid()
    if os.getppid() != expected:
        _exit(f"the hub (pid {expected}) was gone before this service started")


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
    hub = hub_pid()
    loop = asyncio.get_running_loop()
    die_with_parent()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda name=signum.name: background(_terminated(who, hub, name)))
    while True:
        if os.getppid() != hub:
            _exit(f"{who}: the hub (pid {hub}) is gone")
        await asyncio.sleep(interval)
