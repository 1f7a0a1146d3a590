"""The per-user boot lock (``mlhub.spawners.docker_start._UserBoots``): one boot at a time per
user, and a user's lock is forgotten once nothing holds or waits for it."""

from __future__ import annotations

import asyncio

from mlhub.spawners.docker_start import _UserBoots


def test_a_users_second_boot_waits_and_the_table_empties() -> None:
    async def scenario() -> list[str]:
        boots = _UserBoots()
        events: list[str] = []

        async def boot(user: str, tag: str) -> None:
            await boots.acquire(user)
            events.append(f"{tag} in")
            await asyncio.sleep(0.01)
            events.append(f"{tag} out")
            boots.release(user)

        await asyncio.gather(boot("ann", "a1"), boot("ann", "a2"), boot("bob", "b1"))
        assert len(boots) == 0
        return events

    events = asyncio.run(scenario())
    # ann's two boots never overlap; bob's runs alongside ann's first
    assert events.index("a1 out") < events.index("a2 in")
    assert events.index("b1 in") < events.index("a1 out")


def test_a_cancelled_wait_leaves_no_lock_behind() -> None:
    async def scenario() -> int:
        boots = _UserBoots()
        await boots.acquire("ann")
        waiter = asyncio.create_task(boots.acquire("ann"))
        await asyncio.sleep(0)
        waiter.cancel()
        try:
            await waiter
        except asyncio.CancelledError:
            pass
        assert boots.busy("ann")
        boots.release("ann")
        return len(boots)

    assert asyncio.run(scenario()) == 0
