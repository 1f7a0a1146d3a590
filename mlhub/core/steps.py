"""A step clock: how long each named step of one start or stop took.

Pure (no I/O): the spawner opens a clock per start or stop, wraps each step in
``with clock.step("network"):``, then logs :meth:`StepClock.summary` and observes
:meth:`StepClock.durations` into Prometheus histograms (``mlhub.hub.metrics``).
A step entered twice adds up; a step that raised is still timed (its time was spent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: the steps of a Docker start and stop, in order (benchmarks/steps.py reads them by name)
SPAWN_STEPS = ("options", "image", "network", "volume", "boot_wait", "create", "start", "first_answer")
STOP_STEPS = ("stop", "remove", "volume", "network")


class StepClock:
    """Durations of named steps, in the order they were first entered."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._began = clock()
        self._durations: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step *name* (added to earlier time of that name)."""
        began = self._clock()
        try:
            yield
        finally:
            self.add(name, self._clock() - began)

    def add(self, name: str, seconds: float) -> None:
        """Record *seconds* for step *name* (e.g. a step timed elsewhere)."""
        self._durations[name] = self._durations.get(name, 0.0) + max(seconds, 0.0)

    def durations(self) -> dict[str, float]:
        """``{step: seconds}`` in the order the steps were first entered."""
        return dict(self._durations)

    def elapsed(self) -> float:
        """Seconds since the clock was made."""
        return self._clock() - self._began

    def summary(self, what: str) -> str:
        """One log line: ``"Started alice/gpu in 1.84 s: options 0.002, image 0.010, ..."``."""
        steps = ", ".join(f"{name} {seconds:.3f}" for name, seconds in self._durations.items())
        return f"{what} in {self.elapsed():.2f} s" + (f": {steps}" if steps else "")
