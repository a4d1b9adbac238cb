"""The demo portal's calendar: working hours, holidays, and Bitrix24's date strings.

Moments are plain ints: seconds since 1970-01-01 00:00 of the portal's *local*
wall clock. Europe/Moscow has had a fixed +03:00 offset since 2014, so local
arithmetic is exact and formatting needs no time-zone lookups (it runs tens of
millions of times for a big portal).
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, timedelta, timezone

OFFSET = "+03:00"
TZ = timezone(timedelta(hours=3))
DAY = 86400
HOUR = 3600
WORK_START = 9 * HOUR
WORK_END = 19 * HOUR
_EPOCH = date(1970, 1, 1)

# Russian public holidays that empty an office (month, day); the New Year
# week matters most: January is visibly quieter in a real portal.
_HOLIDAYS = {(1, d) for d in range(1, 9)} | {(2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4)}


def local_seconds(moment: datetime) -> int:
    """A datetime as portal-local epoch seconds; naive values are already local."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(TZ).replace(tzinfo=None)
    return int((moment - datetime(1970, 1, 1)).total_seconds())


class Clock:
    """The window [start, now] of a demo portal and how activity spreads over it."""

    def __init__(self, now: int, months: int) -> None:
        self.now = now
        today = _EPOCH + timedelta(days=now // DAY)
        month_index = today.year * 12 + today.month - 1 - (months - 1)
        first = date(month_index // 12, month_index % 12 + 1, 1)
        self.start = (first - _EPOCH).days * DAY
        self._day_text: dict[int, str] = {}
        self._weights: dict[int, float] = {}
        self._days: list[int] = []  # day numbers with office activity
        self._cumulative: list[float] = []  # running sum of their weights
        total = 0.0
        for day in range(self.start // DAY, now // DAY + 1):
            weight = self.day_weight(day)
            if day == now // DAY:
                # Today counts only up to now, so "this month" ends at the current hour.
                open_seconds = min(max(now % DAY - WORK_START, 0), WORK_END - WORK_START)
                weight *= open_seconds / (WORK_END - WORK_START)
            if weight > 0:
                total += weight
                self._days.append(day)
                self._cumulative.append(total)
        if not self._days:
            # A one-month window that starts today before opening time: everything
            # happens "now" rather than nowhere.
            self._days, self._cumulative, total = [now // DAY], [1.0], 1.0
        self._total = total

    @staticmethod
    def day_weight(day: int) -> float:
        """How busy a calendar day is, relative to an ordinary weekday."""
        d = _EPOCH + timedelta(days=day)
        if (d.month, d.day) in _HOLIDAYS:
            return 0.03
        weekday = d.weekday()
        if weekday == 5:
            return 0.08
        if weekday == 6:
            return 0.03
        return 1.0

    def at(self, fraction: float) -> int:
        """The moment a share ``fraction`` (0..1) of all office activity has passed.

        Monotonic in ``fraction``, so evenly spaced fractions give records whose
        creation time grows with their ID, as Bitrix24's auto-increment IDs do.
        """
        x = min(max(fraction, 0.0), 1.0) * self._total
        i = min(bisect_right(self._cumulative, x), len(self._days) - 1)
        before = self._cumulative[i - 1] if i else 0.0
        weight = self._cumulative[i] - before
        within = (x - before) / weight if weight else 0.0
        day = self._days[i]
        moment = day * DAY + WORK_START + int(within * (WORK_END - WORK_START))
        return min(moment, self.now)

    def working(self, moment: int, jitter: int) -> int:
        """The first working-hours moment at or after ``moment`` (``jitter`` s after opening)."""
        day, second = divmod(moment, DAY)
        weights = self._weights
        weight = weights.get(day)
        if weight is None:
            weight = weights[day] = self.day_weight(day)
        if WORK_START <= second < WORK_END and weight >= 1.0:
            return moment
        if second >= WORK_END:
            day += 1
        while weights.setdefault(day, self.day_weight(day)) < 1.0:
            day += 1
        return day * DAY + WORK_START + jitter % (WORK_END - WORK_START)

    def iso(self, moment: int) -> str:
        """Bitrix24's datetime string: ``2026-11-03T10:15:00+03:00``."""
        day, second = divmod(moment, DAY)
        text = self._day_text.get(day)
        if text is None:
            text = (_EPOCH + timedelta(days=day)).isoformat()
            self._day_text[day] = text
        hour, rest = divmod(second, HOUR)
        minute, sec = divmod(rest, 60)
        return f"{text}T{hour:02d}:{minute:02d}:{sec:02d}{OFFSET}"

    def iso_date(self, moment: int) -> str:
        """A date-only field (CLOSEDATE, BEGINDATE) as Bitrix24 sends it.

        Bitrix24 writes the date as UTC midnight shown in the portal's offset,
        hence ``T03:00:00+03:00`` for Moscow; only the date part is meaningful.
        """
        return self.iso((moment // DAY) * DAY + 3 * HOUR)
