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


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the process that started us dies (best effort)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _exit(reason: str) -> NoReturn:
    log.warning("%s: exiting", reason)
    logging.shutdown()
    os._exit(0)


async def _terminated(who: str, hub_pid: int) -> NoReturn:
    """Exit on SIGTERM, saying whether the hub died: the death signal can come while the hub's
    last threads are still exiting, so its pid is looked at for a moment first."""
    for _ in range(20):
        if os.getppid() != hub_pid:
            _exit(f"{who}: the hub (pid {hub_pid}) is gone")
        await asyncio.sleep(0.05)
    _exit(f"{who}: stopped by SIGTERM")


async def watch_hub(who: str, interval: float = HUB_CHECK_INTERVAL) -> NoReturn:
    """Exit when the hub that started this service is gone.

    The hub is this process's parent: when it dies, Linux sends SIGTERM (``PR_SET_PDEATHSIG``;
    also when the hub thread that started us ends, so the signal alone proves nothing) and the
    parent pid changes (re-parented), which this loop also sees on systems without the signal.
    A SIGTERM from a live hub (stopping its services) ends the service as well.
    """
    hub_pid = os.getppid()
    loop = asyncio.get_running_loop()

    def on_sigterm() -> None:
        background(_terminated(who, hub_pid))

    die_with_parent()
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    while True:
        await asyncio.sleep(interval)
        if os.getppid() != hub_pid:
            _exit(f"{who}: the hub (pid {hub_pid}) is gone")
