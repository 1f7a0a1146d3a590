"""Per-name locks (``mlhub.core.keyed_locks.KeyedLocks``, the per-user boot lock and the
per-network lock): one holder at a time per name, and a name is forgotten once nothing holds
or waits for it."""

from __future__ import annotations

import asyncio

from mlhub.core.keyed_locks import KeyedLocks


def test_a_users_second_boot_waits_and_the_table_empties() -> None:
    async def scenario() -> list[str]:
        boots = KeyedLocks()
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
        boots = KeyedLocks()
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


def test_the_network_table_keeps_no_name_after_use() -> None:
    """``docker_network``'s per-name lock (held around a network's create-or-check and its
    removal) leaves no entry for a network once its calls are done, so a hub that has seen
    many users does not keep a lock for each forever."""
    from docker.errors import NotFound

    from mlhub.core import labels as L
    from mlhub.engines import docker_network as net

    made: list[str] = []

    async def docker(method: str, *args: object, **kwargs: object) -> object:
        if method == "inspect_network":
            raise NotFound("no such network")
        made.append(f"{method} {args[0]}")
        return None

    async def scenario() -> int:
        labels = {L.ORIGIN: "hub", L.USER: "ann"}
        await asyncio.gather(*(net.ensure_network(docker, f"n{i}", labels) for i in range(5)))
        await net.remove_network_if_unused(docker, "n0")
        return len(net._LOCKS)

    assert asyncio.run(scenario()) == 0
    assert len(made) == 5


def test_hold_releases_on_error() -> None:
    async def scenario() -> bool:
        locks = KeyedLocks()
        try:
            async with locks.hold("ann"):
                assert locks.busy("ann")
                raise ValueError("boom")
        except ValueError:
            pass
        return locks.busy("ann") or len(locks) != 0

    assert asyncio.run(scenario()) is False
