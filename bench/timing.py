"""Timing one call the way the report benches quote it: the first call apart
(it fills caches), then the median of the next ``runs``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Seconds of the first call and the median of ``runs`` more."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)
