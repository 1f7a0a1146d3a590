"""The gateway's activity reports (pure logic, a recording stand-in for the hub's API; the
real hub and the real ssh client are in tests/test_idle_culling.py)."""

from __future__ import annotations

import asyncio

from mlhub.services.hub_client import HubAPIError
from mlhub.services.ssh.activity import ActivityReporter
from mlhub.services.ssh.targets import Target


class RecordingHub:
    def __init__(self, fail: bool = False):
        self.calls: list[tuple[str, str, dict]] = []
        self.fail = fail

    async def request(self, method: str, path: str, body=None, token=None):
        self.calls.append((method, path, body))
        if self.fail:
            raise HubAPIError(f"{method} {path}: 400 No such server", 400)
        return 200, None


def test_open_sessions_are_reported_until_the_last_one_closes():
    async def scenario() -> list:
        hub = RecordingHub()
        reporter = ActivityReporter(hub, interval=0.05)
        first, second = reporter.session(Target("alice", "gpu")), reporter.session(Target("alice", "gpu"))
        first.opened()
        second.opened()
        first.opened()  # counted once
        await asyncio.sleep(0.18)
        first.closed()
        first.closed()  # counted once
        assert reporter.open == {Target("alice", "gpu"): 1}
        second.closed()
        assert not reporter.open
        await asyncio.sleep(0.15)
        return hub.calls

    calls = asyncio.run(scenario())
    assert all(method == "POST" and path == "/users/alice/activity" for method, path, _ in calls)
    assert all(
        set(body["servers"]) == {"gpu"} and body["last_activity"].endswith("Z") for _, _, body in calls
    )
    # at the start, at least twice while open, once at the end; nothing after the end
    assert len(calls) >= 4
    settled = len(calls)
    asyncio.run(asyncio.sleep(0.1))
    assert len(calls) == settled


def test_one_request_per_user_names_each_server_and_errors_do_not_raise():
    async def scenario(hub) -> None:
        reporter = ActivityReporter(hub, interval=60)
        await reporter.report([Target("alice", ""), Target("alice", "gpu"), Target("bob", "")])

    hub = RecordingHub()
    asyncio.run(scenario(hub))
    bodies = {path: body for _, path, body in hub.calls}
    assert set(bodies) == {"/users/alice/activity", "/users/bob/activity"}
    assert set(bodies["/users/alice/activity"]["servers"]) == {"", "gpu"}
    asyncio.run(scenario(RecordingHub(fail=True)))  # logged, not raised: the session goes on


def test_a_session_that_never_started_reports_nothing():
    async def scenario() -> list:
        hub = RecordingHub()
        reporter = ActivityReporter(hub, interval=0.01)
        reporter.session(Target("alice")).closed()
        await asyncio.sleep(0.05)
        return hub.calls

    assert asyncio.run(scenario()) == []
