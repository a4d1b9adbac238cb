"""Timing one call the way the report benches quote it: the first call apart
(it fills caches), then the median of the next ``runs``; with :func:`timed_cpu`
also the process's CPU (DuckDB's threads included), which a busy box inflates
less than the wall time."""

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


def timed_cpu(fn: Callable[[], Any], runs: int) -> tuple[float, float, float, float]:
    """As :func:`timed`, then the CPU seconds of the first call and their median."""
    times: list[tuple[float, float]] = []
    for _ in range(runs + 1):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    (first, first_cpu), rest = times[0], times[1:]
    return (
        first,
        statistics.median(t for t, _ in rest),
        first_cpu,
        statistics.median(c for _, c in rest),
    )
