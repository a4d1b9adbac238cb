"""The emulator's clock: the portal's ``now`` (if the snapshot pins one), moving with real time."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo


class Clock:
    def __init__(self, timezone: str, start: str | None = None) -> None:
        self.zone = ZoneInfo(timezone)
        self._mono0 = time.monotonic()
        if start:
            moment = datetime.fromisoformat(start)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=self.zone)
            self._base = moment.timestamp()
        else:
            self._base = time.time()

    def now(self) -> float:
        """Unix seconds on the portal's clock."""
        return self._base + (time.monotonic() - self._mono0)

    def iso(self, moment: float | None = None) -> str:
        """ISO 8601 with the portal's offset, as Bitrix24 writes dates."""
        stamp = self.now() if moment is None else moment
        return datetime.fromtimestamp(stamp, self.zone).isoformat(timespec="seconds")
