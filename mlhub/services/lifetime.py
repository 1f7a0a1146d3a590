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


async def watch_hub(who: str, interval: float = HUB_CHECK_INTERVAL) -> NoReturn:
    """Exit when the hub that started this service is gone.

    The hub is this process's parent: when it dies, Linux sends SIGTERM (``PR_SET_PDEATHSIG``)
    and the parent pid changes (re-parented), which this loop also sees on systems without
    the signal. A SIGTERM from a live hub (stopping its services) ends the service as well.
    """
    hub_pid = os.getppid()
    loop = asyncio.get_running_loop()

    def on_sigterm() -> None:
        if os.getppid() != hub_pid:
            _exit(f"{who}: the hub (pid {hub_pid}) is gone")
        _exit(f"{who}: stopped by SIGTERM")

    die_with_parent()
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    while True:
        await asyncio.sleep(interval)
        if os.getppid() != hub_pid:
            _exit(f"{who}: the hub (pid {hub_pid}) is gone")
