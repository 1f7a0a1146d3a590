"""The step clock (mlhub.core.steps) and the workspace collector (mlhub.hub.metrics)."""

from __future__ import annotations

import pytest

from mlhub.core.steps import StepClock


def fake_clock(times: list[float]):
    it = iter(times)
    return lambda: next(it)


def test_steps_in_order_added_up_and_summarised() -> None:
    clock = StepClock(fake_clock([0.0, 0.0, 0.5, 0.5, 0.75, 1.0, 1.25, 2.0]))
    with clock.step("network"):
        pass
    with clock.step("volume"):
        pass
    with clock.step("network"):
        pass
    assert clock.durations() == {"network": 0.75, "volume": 0.25}
    assert clock.summary("Started alice/gpu") == "Started alice/gpu in 2.00 s: network 0.750, volume 0.250"


def test_a_step_that_raises_is_timed() -> None:
    clock = StepClock(fake_clock([0.0, 1.0, 3.0]))
    with pytest.raises(RuntimeError):
        with clock.step("create"):
            raise RuntimeError("engine said no")
    assert clock.durations() == {"create": 2.0}


def test_workspace_collector_counts_states_and_images() -> None:
    from mlhub.hub.metrics import WorkspaceCollector

    rows = [("running", "img:a"), ("running", "img:a"), ("pending", "img:b"), ("stopped", "")]
    (family,) = list(WorkspaceCollector(lambda: rows).collect())
    got = {(s.labels["state"], s.labels["image"]): s.value for s in family.samples}
    assert got == {("running", "img:a"): 2, ("pending", "img:b"): 1, ("stopped", ""): 1}
    (empty,) = list(WorkspaceCollector(lambda: []).collect())
    assert {s.labels["state"] for s in empty.samples} == {"running", "pending", "stopped"}
