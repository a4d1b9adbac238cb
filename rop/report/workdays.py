"""Working days by the Russian production calendar (производственный календарь).

The calendar comes from python-holidays (country RU): public holidays, the
government's transfers of days off (a Saturday made a working day, a holiday
moved to a Monday) and the New Year break, kept up to date by its maintainers
with each year's decree. Pre-holiday short days are whole working days here:
the plan is spread over days, not hours.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=8)
def _calendar(years: tuple[int, ...]) -> holidays.HolidayBase:
    return holidays.country_holidays("RU", years=list(years))


def is_working_day(day: date) -> bool:
    return bool(_calendar((day.year,)).is_working_day(day))


def working_days(first: date, last: date) -> int:
    """Working days in ``first``..``last`` inclusive (0 when ``last`` < ``first``)."""
    n = 0
    day = first
    while day <= last:
        n += is_working_day(day)
        day += timedelta(days=1)
    return n
