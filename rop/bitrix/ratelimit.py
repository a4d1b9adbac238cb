"""Client-side leaky bucket matched to Bitrix24's own request limit.

Bitrix24 cloud counts each request (a ``batch`` is one request) into a leaky
bucket per portal and source IP: it drains ``rate`` per second and refuses
requests above ``burst`` with 503 QUERY_LIMIT_EXCEEDED (BITRIX24_API.md §2,
from the official REST docs "Limits"). Mirroring it here means we never hit
the server's limit in normal operation instead of bouncing off it.
"""

from __future__ import annotations

import asyncio
import time

# BITRIX24_API.md §2 (REST docs, "Request limits"): every plan except Enterprise.
STANDARD_RATE_PER_SECOND = 2.0
STANDARD_BURST = 50
# Enterprise plans (app.info LICENSE_FAMILY "ent").
ENTERPRISE_RATE_PER_SECOND = 5.0
ENTERPRISE_BURST = 250


class LeakyBucket:
    """Await :meth:`acquire` before each request; it sleeps while the bucket is full."""

    def __init__(self, rate_per_second: float, burst: int) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("rate_per_second must be > 0 and burst >= 1")
        self.rate = float(rate_per_second)
        self.burst = int(burst)
        self._level = 0.0
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _drain(self) -> None:
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        async with self._lock:
            self._drain()
            wait = (self._level + 1.0 - self.burst) / self.rate
            if wait > 0:
                await asyncio.sleep(wait)
                self._drain()
            self._level += 1.0

    def fill(self) -> None:
        """The server said we are over its limit: assume its bucket is full."""
        self._drain()
        self._level = float(self.burst)

    def spent(self, seconds_ago: float) -> None:
        """The portal's bucket may have been full ``seconds_ago`` (another run of
        the portal, maybe in another process, ended then): start from what it
        has drained since, not from empty, so the two runs' bursts do not add up."""
        self._drain()
        self._level = max(self._level, min(float(self.burst), self.burst - seconds_ago * self.rate))
