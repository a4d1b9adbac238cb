"""The demo calendar: Bitrix24 date strings, working hours, activity spread over the window."""

from __future__ import annotations

from datetime import UTC, datetime

from rop.demo.clock import DAY, HOUR, Clock, local_seconds

NOW = local_seconds(datetime(2026, 11, 27, 12, 0))  # a Friday, noon in Moscow


def test_local_seconds_converts_offsets_to_moscow():
    assert local_seconds(datetime(2026, 11, 27, 9, 0, tzinfo=UTC)) == NOW
    assert local_seconds(datetime(2026, 11, 27, 12, 0)) == NOW


def test_iso_strings_match_bitrix():
    clock = Clock(NOW, 12)
    assert clock.iso(NOW) == "2026-11-27T12:00:00+03:00"
    assert clock.iso(NOW + 59 * 60 + 7) == "2026-11-27T12:59:07+03:00"
    assert clock.iso_date(NOW + 11 * HOUR) == "2026-11-27T03:00:00+03:00"
    assert clock.iso(clock.start) == "2025-12-01T00:00:00+03:00"


def test_window_starts_on_the_first_of_the_earliest_month():
    assert Clock(NOW, 1).iso(Clock(NOW, 1).start).startswith("2026-11-01T00:00")
    assert Clock(NOW, 14).iso(Clock(NOW, 14).start).startswith("2025-10-01T00:00")


def test_activity_is_monotonic_in_office_hours_and_never_after_now():
    clock = Clock(NOW, 12)
    moments = [clock.at(i / 5000) for i in range(5001)]
    assert moments == sorted(moments)
    assert moments[0] >= clock.start and moments[-1] <= NOW
    hours = {m % DAY // HOUR for m in moments}
    assert hours <= set(range(9, 19))
    january_holidays = sum(
        1 for m in moments if clock.iso(m)[:10] <= "2026-01-08" and clock.iso(m)[:7] == "2026-01"
    )
    ordinary_week = sum(1 for m in moments if "2026-02-09" <= clock.iso(m)[:10] <= "2026-02-16")
    assert january_holidays < ordinary_week / 5


def test_working_moves_to_the_next_opening():
    clock = Clock(NOW, 12)
    saturday_night = local_seconds(datetime(2026, 11, 28, 23, 0))
    assert clock.iso(clock.working(saturday_night, 0)) == "2026-11-30T09:00:00+03:00"
    friday_evening = local_seconds(datetime(2026, 11, 27, 19, 30))
    assert clock.iso(clock.working(friday_evening, 61)) == "2026-11-30T09:01:01+03:00"
    tuesday_noon = local_seconds(datetime(2026, 11, 24, 12, 0))
    assert clock.working(tuesday_noon, 500) == tuesday_noon
    new_year = local_seconds(datetime(2026, 12, 31, 20, 0))
    assert clock.iso(clock.working(new_year, 0)) == "2027-01-11T09:00:00+03:00"
