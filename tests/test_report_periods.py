"""Period presets, the previous period and local midnights as UTC bounds."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from rop.report.filter import ReportFilter, ReportInputError
from rop.report.periods import PRESETS, previous_period, resolve_period, utc_bounds, zone

TODAY = date(2026, 11, 27)  # a Friday


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("today", (date(2026, 11, 27), date(2026, 11, 27))),
        ("yesterday", (date(2026, 11, 26), date(2026, 11, 26))),
        ("this_week", (date(2026, 11, 23), date(2026, 11, 29))),
        ("last_week", (date(2026, 11, 16), date(2026, 11, 22))),
        ("this_month", (date(2026, 11, 1), date(2026, 11, 30))),
        ("last_month", (date(2026, 10, 1), date(2026, 10, 31))),
        ("this_quarter", (date(2026, 10, 1), date(2026, 12, 31))),
        ("last_quarter", (date(2026, 7, 1), date(2026, 9, 30))),
        ("this_year", (date(2026, 1, 1), date(2026, 12, 31))),
        ("last_7_days", (date(2026, 11, 21), date(2026, 11, 27))),
        ("last_30_days", (date(2026, 10, 29), date(2026, 11, 27))),
    ],
)
def test_presets(preset, expected):
    assert resolve_period(preset, TODAY) == expected


def test_every_preset_is_covered_and_unknown_is_refused():
    assert len(PRESETS) == 11
    with pytest.raises(ReportInputError, match="unknown period"):
        resolve_period("next_month", TODAY)
    assert resolve_period("last_month", date(2026, 1, 15)) == (
        date(2025, 12, 1),
        date(2025, 12, 31),
    )
    assert resolve_period("last_quarter", date(2026, 2, 1)) == (
        date(2025, 10, 1),
        date(2025, 12, 31),
    )


def test_previous_period():
    assert previous_period(date(2026, 11, 1), date(2026, 11, 30)) == (
        date(2026, 10, 1),
        date(2026, 10, 31),
    )
    assert previous_period(date(2026, 3, 1), date(2026, 3, 31)) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    assert previous_period(date(2026, 10, 1), date(2026, 12, 31)) == (
        date(2026, 7, 1),
        date(2026, 9, 30),
    )
    assert previous_period(date(2026, 11, 23), date(2026, 11, 29)) == (
        date(2026, 11, 16),
        date(2026, 11, 22),
    )
    assert previous_period(date(2026, 11, 5), date(2026, 11, 14)) == (
        date(2026, 10, 26),
        date(2026, 11, 4),
    )


def test_previous_period_of_a_month_quarter_or_year_to_date():
    # Month to date: the same days of the previous month, not the 27 days before.
    assert previous_period(date(2026, 11, 1), date(2026, 11, 27)) == (
        date(2026, 10, 1),
        date(2026, 10, 27),
    )
    assert previous_period(date(2026, 3, 1), date(2026, 3, 30)) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    # Quarter to date: the same days of the previous quarter.
    assert previous_period(date(2026, 10, 1), date(2026, 11, 27)) == (
        date(2026, 7, 1),
        date(2026, 8, 27),
    )
    # Year to date: the same days a year before.
    assert previous_period(date(2026, 1, 1), date(2026, 11, 27)) == (
        date(2025, 1, 1),
        date(2025, 11, 27),
    )
    # 1 January starts a quarter too: two months of it are the first quarter to date.
    assert previous_period(date(2028, 1, 1), date(2028, 2, 28)) == (
        date(2027, 10, 1),
        date(2027, 11, 28),
    )
    # Starting on the 1st of a month that begins no quarter: two months to date
    # are not a calendar unit, so the days right before.
    assert previous_period(date(2026, 8, 1), date(2026, 9, 10)) == (
        date(2026, 6, 21),
        date(2026, 7, 31),
    )


def test_local_midnight_bounds_with_offset_and_dst():
    assert utc_bounds(date(2026, 11, 1), date(2026, 11, 30), zone("Europe/Moscow")) == (
        datetime(2026, 10, 31, 21, 0), datetime(2026, 11, 30, 21, 0),
    )  # fmt: skip
    # Berlin changes offset inside March: each bound uses its own day's offset.
    assert utc_bounds(date(2026, 3, 1), date(2026, 3, 31), zone("Europe/Berlin")) == (
        datetime(2026, 2, 28, 23, 0), datetime(2026, 3, 31, 22, 0),
    )  # fmt: skip
    with pytest.raises(ReportInputError):
        zone("Mars/Olympus")


def test_filter_validation_and_sentence():
    with pytest.raises(ReportInputError, match="starts after it ends"):
        ReportFilter(date(2026, 11, 30), date(2026, 11, 1)).validate()
    with pytest.raises(ReportInputError, match="grouping"):
        ReportFilter(date(2026, 11, 1), date(2026, 11, 30), by="planet").validate()
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), pipelines=(1,), min_call_seconds=30)
    assert flt.describe("ru") == "Период с 01.11.2026 по 30.11.2026; воронки: 1; звонки от 30 с"
    assert "from 2026-11-01 to 2026-11-30" in flt.describe("en")


def test_the_sentence_names_what_it_can():
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), pipelines=(1, 9), viewer=3)
    names = {("pipeline", 1): "Опт", ("user", 3): "Вера Москвина"}
    assert (
        flt.describe("ru", names)
        == "Период с 01.11.2026 по 30.11.2026; воронки: Опт, 9; глазами: Вера Москвина"
    )
