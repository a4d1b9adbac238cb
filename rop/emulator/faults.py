"""Seeded fault injection: the same seed gives the same faults in the same order."""

from __future__ import annotations

import random
import threading

from rop.emulator.config import FaultConfig

DROP, ERROR, MALFORMED, SLOW = "drop", "error", "malformed", "slow"


class Faults:
    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self.counts = {DROP: 0, ERROR: 0, MALFORMED: 0, SLOW: 0}

    def pick(self) -> str | None:
        """At most one fault for this request (one draw, so rates add up)."""
        cfg = self.config
        with self._lock:
            roll = self._rng.random()
        edge = 0.0
        for name, rate in (
            (DROP, cfg.drop_rate),
            (ERROR, cfg.error_rate),
            (MALFORMED, cfg.malformed_rate),
            (SLOW, cfg.slow_rate),
        ):
            edge += rate
            if roll < edge:
                self.counts[name] += 1
                return name
        return None
