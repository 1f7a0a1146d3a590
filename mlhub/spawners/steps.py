"""Timing each step of a start and a stop (a mixin of MLHub's spawners).

A start's clock is made when its options are applied (step ``options``) and finished when
the start returns: one log line naming the user and server with each step's time, and the
steps observed in ``mlhub_spawn_step_seconds``. Stops likewise (``mlhub_stop_step_seconds``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from traitlets.config import LoggingConfigurable

from mlhub.core.steps import StepClock
from mlhub.hub.metrics import SPAWN_STEP_SECONDS, STOP_STEP_SECONDS, observe_steps


class StepTiming(LoggingConfigurable):
    _mlhub_start_clock: StepClock | None = None
    _mlhub_stop_clock: StepClock | None = None

    def new_start_clock(self) -> StepClock:
        self._mlhub_start_clock = StepClock()
        return self._mlhub_start_clock

    def start_clock(self) -> StepClock:
        """This start's clock: the one its options began, or a new one."""
        return self._mlhub_start_clock or self.new_start_clock()

    def start_step(self, name: str) -> Any:
        """``with self.start_step("create"):`` times a step when a start is being timed."""
        clock = self._mlhub_start_clock
        return clock.step(name) if clock is not None else nullcontext()

    def stop_step(self, name: str) -> Any:
        clock = self._mlhub_stop_clock
        return clock.step(name) if clock is not None else nullcontext()

    def finish_start_clock(self, ok: bool) -> None:
        clock, self._mlhub_start_clock = self._mlhub_start_clock, None
        if clock is None:
            return
        if ok:
            observe_steps(SPAWN_STEP_SECONDS, clock.durations())
            self.log.info(clock.summary(f"Started {self._log_name}"))
        else:
            self.log.info(clock.summary(f"Start of {self._log_name} failed"))

    @contextmanager
    def timed_stop(self, what: str = "Stopped") -> Iterator[StepClock]:
        """Time a stop (or a deletion): one line and the histogram when it finishes."""
        clock = self._mlhub_stop_clock = StepClock()
        ok = False
        try:
            yield clock
            ok = True
        finally:
            self._mlhub_stop_clock = None
            if ok:
                observe_steps(STOP_STEP_SECONDS, clock.durations())
                self.log.info(clock.summary(f"{what} {self._log_name}"))
            else:
                self.log.info(clock.summary(f"{what} {self._log_name}: failed"))
