"""Bitrix24's two limits (BITRIX24_API.md §2).

* A leaky bucket per client: each request adds 1, the level drains at
  ``rate`` per second, and a request that would lift it above ``burst`` is
  refused (503 QUERY_LIMIT_EXCEEDED) without being counted.
* An operating budget per (caller, method): execution seconds summed over ten
  one-minute buckets; once above the limit, that method answers 429
  OPERATION_TIME_LIMIT until the oldest bucket drops out.

Both take a clock so tests can drive them without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

# The operating window: 10 buckets of one minute (BITRIX24_API.md §2).
OPERATING_BUCKETS = 10
OPERATING_BUCKET_SECONDS = 60.0


class LeakyBucket:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._levels: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        # What tests check "never above the limit" by: requests refused, and
        # the highest level reached (never above burst, by construction).
        self.refused = 0
        self.peak = 0.0

    def level(self, key: str = "") -> float:
        with self._lock:
            return self._drained(key, self.clock())

    def _drained(self, key: str, now: float) -> float:
        level, since = self._levels.get(key, (0.0, now))
        return max(0.0, level - (now - since) * self.rate)

    def take(self, key: str = "") -> bool:
        """Count one request; False (and not counted) when the bucket is full."""
        with self._lock:
            now = self.clock()
            level = self._drained(key, now)
            if level + 1 > self.burst:
                self._levels[key] = (level, now)
                self.refused += 1
                return False
            self._levels[key] = (level + 1, now)
            self.peak = max(self.peak, level + 1)
            return True


class OperatingBudget:
    def __init__(
        self,
        limit_seconds: float,
        clock: Callable[[], float] = time.time,
        buckets: int = OPERATING_BUCKETS,
        bucket_seconds: float = OPERATING_BUCKET_SECONDS,
    ) -> None:
        self.limit = limit_seconds
        self.clock = clock
        self.buckets = buckets
        self.bucket_seconds = bucket_seconds
        self._spent: dict[str, deque[list[float]]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _window(self, key: str, now: float) -> deque[list[float]]:
        window = self._spent[key]
        oldest_allowed = now - self.buckets * self.bucket_seconds
        while window and window[0][0] <= oldest_allowed:
            window.popleft()
        return window

    def used(self, key: str) -> float:
        with self._lock:
            return sum(b[1] for b in self._window(key, self.clock()))

    def reset_at(self, key: str) -> float:
        """When the oldest bucket drops out.

        With nothing spent, a whole window from now: the docs' replies with
        ``operating`` 0 show ``operating_reset_at`` = ``start`` + 600.
        """
        with self._lock:
            now = self.clock()
            window = self._window(key, now)
            if not window:
                return now + self.buckets * self.bucket_seconds
            return window[0][0] + self.buckets * self.bucket_seconds

    def blocked(self, key: str) -> bool:
        return self.used(key) >= self.limit

    def charge(self, key: str, seconds: float) -> None:
        with self._lock:
            now = self.clock()
            window = self._window(key, now)
            start = now - (now % self.bucket_seconds)
            if window and window[-1][0] == start:
                window[-1][1] += seconds
            else:
                window.append([start, seconds])
