"""Report periods: presets, the previous period, and local days as UTC bounds.

Periods are whole local days in the portal's time zone. The bounds that SQL
compares are computed here (local midnight -> UTC), so SQL never needs
time-zone functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rop.metrics.errors import ReportInputError

PRESETS: tuple[str, ...] = (
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_7_days",
    "last_30_days",
)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def resolve_period(preset: str, today: date) -> tuple[date, date]:
    """The inclusive local days of a preset, seen from ``today`` (weeks start Monday)."""
    if preset == "today":
        return today, today
    if preset == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    if preset in ("this_week", "last_week"):
        monday = today - timedelta(days=today.weekday())
        if preset == "last_week":
            monday -= timedelta(days=7)
        return monday, monday + timedelta(days=6)
    if preset in ("this_month", "last_month"):
        start = _month_start(today)
        if preset == "last_month":
            start = _add_months(start, -1)
        return start, _add_months(start, 1) - timedelta(days=1)
    if preset in ("this_quarter", "last_quarter"):
        start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        if preset == "last_quarter":
            start = _add_months(start, -3)
        return start, _add_months(start, 3) - timedelta(days=1)
    if preset == "this_year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    if preset == "last_7_days":
        return today - timedelta(days=6), today
    if preset == "last_30_days":
        return today - timedelta(days=29), today
    raise ReportInputError("unknown_period", period=preset, choices=", ".join(PRESETS))


def previous_period(date_from: date, date_to: date) -> tuple[date, date]:
    """The period a head of sales compares ``date_from``..``date_to`` with.

    - Whole calendar months (a month, a quarter, a year) compare with as many
      whole months right before: November with October, not with the last
      30 days of it.
    - A month, quarter or year "to date" (it starts on the month's, quarter's
      or year's first day and ends inside it) compares with the same days of
      the previous month, quarter or year: 1-27 November with 1-27 October,
      1 January-27 November with the same days a year before. A day past the
      end of a shorter month is its last day (1-30 March: 1-28 February).
    - Any other period: the same number of days right before it.
    """
    months = _whole_months(date_from, date_to)
    if months:
        start = _add_months(date_from, -months)
        return start, date_from - timedelta(days=1)
    span = _to_date_span(date_from, date_to)
    if span:
        return _add_months(date_from, -span), _shift_day(date_to, -span)
    length = (date_to - date_from).days + 1
    return date_from - timedelta(days=length), date_from - timedelta(days=1)


def _to_date_span(date_from: date, date_to: date) -> int:
    """12, 3 or 1 if the period is a year, quarter or month "to date"; else 0."""
    if date_from.day != 1:
        return 0
    months_apart = (date_to.year - date_from.year) * 12 + date_to.month - date_from.month
    for span in (1, 3, 12):
        aligned = (date_from.month - 1) % span == 0
        if aligned and months_apart < span:
            return span
    return 0


def _shift_day(day: date, months: int) -> date:
    """``day`` ``months`` months away, kept inside its month (31 March - 1 = 28 Feb)."""
    first = _add_months(day, months)
    last = _add_months(first, 1) - timedelta(days=1)
    return first.replace(day=min(day.day, last.day))


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportInputError("unknown_timezone", zone=name) from None


def local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    """The UTC moment (naive, as the store keeps it) of ``day``'s local midnight."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def utc_bounds(date_from: date, date_to: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC for the inclusive local days ``date_from``..``date_to``."""
    return local_midnight_utc(date_from, tz), local_midnight_utc(date_to + timedelta(days=1), tz)


def local_today(tz: ZoneInfo, now: datetime | None = None) -> date:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).date()


# How the previous period is taken for a period that has not ended (issue 15):
# "to_date" (the default) compares the days elapsed so far with the same days
# of the previous period (1-28 November with 1-28 October); "full" compares with
# the whole previous period (1-28 November with the whole of October).
COMPARE_MODES: tuple[str, ...] = ("to_date", "full")


@dataclass(frozen=True)
class Comparison:
    """What the previous-period figures of a report cover.

    ``date_from``..``date_to`` is the previous stretch the report queries;
    ``current_from``..``current_to`` the part of the chosen period it is set
    against (the whole period, or its days up to today); ``mode`` is the mode
    asked for and ``ongoing`` whether the chosen period has not ended (it
    holds today and goes past it); only then does the mode matter: a period
    that has ended always compares in full.
    """

    date_from: date
    date_to: date
    current_from: date
    current_to: date
    mode: str
    ongoing: bool

    def as_json(self) -> dict[str, object]:
        return {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "mode": self.mode,
            "ongoing": self.ongoing,
            "current": {"from": self.current_from.isoformat(), "to": self.current_to.isoformat()},
        }


def comparison_period(
    date_from: date, date_to: date, today: date, mode: str = "to_date"
) -> Comparison:
    """The previous period a report of ``date_from``..``date_to`` compares with.

    The whole previous period is :func:`previous_period`'s. In ``to_date`` mode
    a period that has not ended (it holds ``today`` and goes past it: "this
    month" on the 28th) is set against as much of the previous period as has
    elapsed of its own, counted in calendar days from the start:

    - a period of whole months (month, quarter, year) keeps the day of the
      month: 1 Jan-28 Nov against 1 Jan-28 Nov a year before, 1 Oct-28 Nov
      (a quarter) against 1 Jul-28 Aug; a day the shorter month lacks becomes
      its last day, and the previous period never runs past its own end
      (1-31 March against 1-28 February, 1 Jan-29 Feb 2028 against
      1 Jan-28 Feb 2027);
    - any other period (a week, custom days) counts the same number of days
      from the previous period's start (Monday-Thursday against the
      Monday-Thursday before).

    Days are whole: today counts as a day in both periods. A period that has
    ended, ends today or has not started compares in full, and so does any
    period in ``full`` mode.
    """
    if mode not in COMPARE_MODES:
        raise ReportInputError("unknown_compare_mode", mode=mode, choices=", ".join(COMPARE_MODES))
    full_from, full_to = previous_period(date_from, date_to)
    ongoing = date_from <= today < date_to
    if mode == "full" or not ongoing:
        return Comparison(full_from, full_to, date_from, date_to, mode, ongoing)
    months = _whole_months(date_from, date_to)
    # Whole months keep the day of the month; other periods count days.
    cut = _shift_day(today, -months) if months else full_from + (today - date_from)
    return Comparison(full_from, min(cut, full_to), date_from, today, mode, True)


def _whole_months(date_from: date, date_to: date) -> int:
    """How many whole calendar months ``date_from``..``date_to`` is, or 0."""
    next_day = date_to + timedelta(days=1)
    if date_from.day != 1 or next_day.day != 1:
        return 0
    return (next_day.year - date_from.year) * 12 + next_day.month - date_from.month
