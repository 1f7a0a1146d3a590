"""mlhub.core.background: a task nobody else holds is not garbage-collected while it waits."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any

from mlhub.core.background import background, running


def _survives_gc(start: Callable[[Any], Any]) -> bool:
    """Start a task waiting on a future only it holds, collect garbage, and say whether the
    task is still alive (then finish it)."""

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        future_ref: list[weakref.ref[asyncio.Future[None]]] = []

        async def waits() -> None:
            fut: asyncio.Future[None] = loop.create_future()
            future_ref.append(weakref.ref(fut))
            await fut

        start(waits())
        await asyncio.sleep(0)  # the task runs up to its await
        gc.collect()
        fut = future_ref[0]()
        if fut is None:
            return False
        fut.set_result(None)
        await asyncio.sleep(0)
        return True

    return asyncio.run(scenario())


def test_plain_ensure_future_can_be_collected_and_background_is_not() -> None:
    assert not _survives_gc(asyncio.ensure_future)  # what made an SSH session hang
    assert _survives_gc(background)
    assert running() == 0  # finished tasks are let go
