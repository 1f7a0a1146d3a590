"""One asyncio lock per name (a user, a network), kept only while someone holds or waits for it.

A plain ``dict.setdefault(name, Lock())`` table grows with every name ever seen, for the life
of the hub: one entry per user who ever started a workspace. Here a name's lock is dropped as
soon as nothing holds it and nothing waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLocks:
    """Mutual exclusion per name; the table holds only names in use."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def busy(self, name: str) -> bool:
        """True when a holder has *name*'s lock now."""
        return name in self._locks and self._locks[name][0].locked()

    async def acquire(self, name: str) -> None:
        """Wait for *name*'s lock and take it."""
        lock, users = self._locks.get(name, (asyncio.Lock(), 0))
        self._locks[name] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._leave(name)
            raise

    def release(self, name: str) -> None:
        """Give back *name*'s lock (taken with :meth:`acquire`)."""
        self._locks[name][0].release()
        self._leave(name)

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        """``async with locks.hold(name):`` holds *name*'s lock for the block."""
        await self.acquire(name)
        try:
            yield
        finally:
            self.release(name)

    def _leave(self, name: str) -> None:
        lock, users = self._locks[name]
        if users <= 1:
            del self._locks[name]
        else:
            self._locks[name] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
