"""Pure statistics for the benchmark: percentiles, a run's summary, ratios, the interleaved order.

No I/O; tested in tests/unit/test_bench_report.py.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from typing import Any


def pct(values: Sequence[float], q: float) -> float:
    """The *q* quantile (0..1) by linear interpolation; NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median, p95 and range of one measurement over its runs (seconds), plus the raw values."""
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        nan = float("nan")
        return {"median_s": nan, "p95_s": nan, "min_s": nan, "max_s": nan, "runs": 0, "values": []}
    return {
        "median_s": statistics.median(finite),
        "p95_s": pct(finite, 0.95),
        "min_s": min(finite),
        "max_s": max(finite),
        "runs": len(finite),
        "values": [round(v, 4) for v in finite],
    }


def ratio(stock: float, mlhub: float) -> float:
    """How many times faster MLHub is (stock / MLHub, for times); NaN when either is missing."""
    if not (math.isfinite(stock) and math.isfinite(mlhub)) or mlhub <= 0:
        return float("nan")
    return stock / mlhub


def interleaved_order(stacks: Sequence[str], reps: int, seed: int | None) -> list[str]:
    """The order the stacks run in, one entry per run: ABAB... with the first stack of each
    pair alternating (ABBA BAAB ...) when *seed* is None, else each pair shuffled with *seed*.

    Neither stack is always first, so drift of the machine (caches, other load) is shared.
    """
    rng = random.Random(seed) if seed is not None else None
    order: list[str] = []
    for i in range(reps):
        pair = list(stacks)
        if rng is not None:
            rng.shuffle(pair)
        elif i % 2:
            pair.reverse()
        order += pair
    return order


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
