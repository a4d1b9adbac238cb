"""When a subscription is due: its slots in the reader's own time zone.

A slot is one scheduled moment: a local day and time of the reader. The
three kinds of schedule (daily, weekly on a weekday, monthly on a day) are
a few lines each, so no cron library: a cron expression could say neither
"working days by the production calendar" nor "the 31st in February".

Working days only (the default): a daily digest skips days off; a weekly
or monthly one that falls on a day off goes out on the next working day
(Monday's report after a holiday Monday arrives on Tuesday).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rop.digests.subscriptions import Subscription
from rop.report.workdays import is_working_day


def reader_zone(user_zone: str | None, portal_zone: str | None) -> ZoneInfo:
    """The reader's zone from user.get (TIME_ZONE), else the portal's, else UTC."""
    for name in (user_zone, portal_zone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _next_working(day: date) -> date:
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def _month_day(year: int, month: int, wanted: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = (nxt - timedelta(days=1)).day
    return date(year, month, min(wanted, last))


def _candidate_days(sub: Subscription, around: date) -> list[date]:
    """Slot days near ``around`` (a few before it, one after), oldest first."""
    if sub.frequency == "daily":
        days = [around - timedelta(days=n) for n in range(7, -2, -1)]
        return [d for d in days if not sub.workdays_only or is_working_day(d)]
    if sub.frequency == "weekly":
        monday = around - timedelta(days=around.weekday())
        nominal = [monday + timedelta(days=7 * w + (sub.weekday or 0)) for w in (-3, -2, -1, 0)]
    else:
        nominal = []
        for back in (3, 2, 1, 0):
            index = around.year * 12 + around.month - 1 - back
            nominal.append(_month_day(index // 12, index % 12 + 1, sub.month_day or 1))
    if sub.workdays_only:
        return [_next_working(d) for d in nominal]
    return nominal


def slot_key(day: date, at: str) -> str:
    """The slot's stable name: the reader's local day and time ("2026-11-30 09:00")."""
    return f"{day.isoformat()} {at}"


def last_slot(sub: Subscription, now: datetime, zone: ZoneInfo) -> tuple[date, datetime] | None:
    """The latest slot at or before ``now``: (local day, UTC moment, naive); None if none.

    ``now`` is UTC (naive or aware).
    """
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    local_today = moment.astimezone(zone).date()
    h, m = sub.hour_minute
    best: tuple[date, datetime] | None = None
    for day in _candidate_days(sub, local_today):
        at = datetime.combine(day, time(h, m), tzinfo=zone).astimezone(UTC)
        if at <= moment and (best is None or at > best[1].replace(tzinfo=UTC)):
            best = (day, at.replace(tzinfo=None))
    return best
