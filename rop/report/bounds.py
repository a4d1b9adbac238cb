"""The ranges a report's input may take: one definition for the CLI and the web.

Dates outside ``FIRST_DAY``..``LAST_DAY`` are refused before any arithmetic
(the previous period of 0001-01-01, or the day after 9999-12-31, do not
exist), and whole numbers (IDs, paging, call seconds) must fit the store's
BIGINT. Every refusal is a ReportInputError naming the field; callers pass
the field as their reader knows it ("--from" on the command line, "from" in a
URL).
"""

from __future__ import annotations

from datetime import date

from rop.metrics.errors import ReportInputError

# CRM data older than 1970 or planned past 2199 is not a sales report's
# business; the margins keep the previous period and "to + 1 day" in range.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2199, 12, 31)
# Ten years: enough for any honest question, and it keeps a typo in a year
# from scanning the whole store.
MAX_DAYS = 3700
# IDs, offsets, limits and seconds are stored or compared as BIGINT.
MAX_WHOLE = 2**63 - 1


def check_day(day: date, field: str) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ReportInputError(
            "day_out_of_range",
            field=field,
            day=day.isoformat(),
            first=FIRST_DAY.isoformat(),
            last=LAST_DAY.isoformat(),
        )
    return day


def check_period(date_from: date, date_to: date, fields: tuple[str, str]) -> None:
    """Both days in range, in order, and at most ``MAX_DAYS`` apart."""
    if (date_to - date_from).days > MAX_DAYS:
        raise ReportInputError(
            "period_too_long",
            field=fields[0],
            date_from=date_from.isoformat(),
            date_to=date_to.isoformat(),
            days=MAX_DAYS,
        )
    check_day(date_from, fields[0])
    check_day(date_to, fields[1])
    if date_from > date_to:
        raise ReportInputError("period_reversed", date_from=date_from, date_to=date_to)


def check_whole(value: int, field: str, minimum: int = 0, maximum: int = MAX_WHOLE) -> int:
    """A whole number within ``minimum``..``maximum``; the message names ``field``."""
    if value < minimum:
        raise ReportInputError("number_too_small", field=field, value=value, minimum=minimum)
    if value > maximum:
        raise ReportInputError("number_too_large", field=field, value=value, maximum=maximum)
    return value
