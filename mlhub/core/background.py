"""Tasks started and not awaited ("fire and forget") that live until they are done.

The event loop keeps only a weak reference to a task. A task that nobody else holds, waiting
on a future that only it holds, can be garbage-collected mid-way ("Task was destroyed but it is
pending!"): an SSH session whose start was collected so never ran its command, and its client
hung (tests/test_ssh.py::test_twenty_sessions_at_once, 1 run in about 8).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

#: Every task started by :func:`background` that has not finished yet.
_RUNNING: set[asyncio.Future[Any]] = set()


def background(work: Awaitable[Any]) -> asyncio.Future[Any]:
    """Run *work* on the running loop without awaiting it, and hold it until it is done."""
    task = asyncio.ensure_future(work)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return task


def running() -> int:
    """How many background tasks are still running."""
    return len(_RUNNING)
