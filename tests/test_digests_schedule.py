"""Digest slots in the reader's zone, and a slot claimed once (docs/DIGESTS.md)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from rop.digests import sends
from rop.digests.errors import DigestInputError
from rop.digests.schedule import last_slot, reader_zone
from rop.digests.subscriptions import make, period_days
from rop.store.db import open_store
from tests.conftest import ENGINES, store_target

MSK = reader_zone("Europe/Moscow", None)


def test_weekly_slot_is_the_readers_local_monday_nine():
    sub = make("p", 1, frequency="weekly", weekday="mon", at_time="09:00")
    # Monday 30 Nov 2026, 06:00 UTC = 09:00 in Moscow: due now.
    day, at = last_slot(sub, datetime(2026, 11, 30, 6, 0), MSK)
    assert (day, at) == (date(2026, 11, 30), datetime(2026, 11, 30, 6, 0))
    # A minute earlier the last slot is the Monday before.
    day, _ = last_slot(sub, datetime(2026, 11, 30, 5, 59), MSK)
    assert day == date(2026, 11, 23)
    # The same subscription for a reader in Vladivostok is due 7 hours earlier (UTC).
    vvo = reader_zone("Asia/Vladivostok", "Europe/Moscow")
    assert last_slot(sub, datetime(2026, 11, 29, 23, 0), vvo)[0] == date(2026, 11, 30)


def test_working_days_only_moves_a_holiday_slot_and_skips_days_off():
    weekly = make("p", 1, frequency="weekly", weekday="mon", at_time="09:00")
    # Monday 11 May 2026 is a day off (Victory Day observed): the slot moves to Tuesday.
    assert last_slot(weekly, datetime(2026, 5, 12, 12, 0), MSK)[0] == date(2026, 5, 12)
    anyday = make("p", 1, frequency="weekly", weekday="mon", workdays_only=False)
    assert last_slot(anyday, datetime(2026, 5, 12, 12, 0), MSK)[0] == date(2026, 5, 11)
    daily = make("p", 1, frequency="daily", at_time="09:00")
    # Sunday 29 Nov 2026: the last daily slot was Friday's.
    assert last_slot(daily, datetime(2026, 11, 29, 12, 0), MSK)[0] == date(2026, 11, 27)


def test_monthly_day_31_is_the_last_day_of_a_short_month():
    sub = make("p", 1, frequency="monthly", month_day=31, workdays_only=False)
    assert last_slot(sub, datetime(2026, 3, 1, 12, 0), MSK)[0] == date(2026, 2, 28)


def test_periods_relative_to_the_send_day():
    assert period_days("last_week", date(2026, 11, 30)) == (date(2026, 11, 23), date(2026, 11, 29))
    assert period_days("yesterday", date(2026, 11, 30)) == (date(2026, 11, 29),) * 2
    assert period_days("last_month", date(2026, 12, 1)) == (date(2026, 11, 1), date(2026, 11, 30))
    # Month to date on the 1st: the whole month just ended.
    assert period_days("month_to_date", date(2026, 12, 1)) == (
        date(2026, 11, 1),
        date(2026, 11, 30),
    )
    assert period_days("month_to_date", date(2026, 12, 15)) == (
        date(2026, 12, 1),
        date(2026, 12, 14),
    )


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"frequency": "hourly"}, "unknown frequency"),
        ({"at_time": "25:00"}, "HH:MM"),
        ({"weekday": "someday"}, "not a day"),
        ({"channels": "fax"}, "unknown channel"),
        ({"period": "next_year"}, "unknown period"),
        ({"filter": {"pipelines": ["x"]}}, "not an ID"),
    ],
)
def test_bad_subscription_input_is_named(kw, words):
    with pytest.raises(DigestInputError, match=words):
        make("p", 1, **kw)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_slot_is_claimed_once_and_retried_when_due(engine, tmp_path, request):
    store = open_store(store_target(engine, tmp_path, request))
    store.use_portal("p")
    key = sends.SendKey("p", 1, "2026-11-30 09:00", "email")
    now = datetime(2026, 11, 30, 6, 0)
    assert sends.claim(store, key, now)
    assert not sends.claim(store, key, now)  # a second server, a restart: refused
    sends.finish(store, key, "retry", now, tries=1, next_attempt_at=datetime(2026, 11, 30, 6, 1))
    assert sends.due_again(store, "p", now) == []
    later = datetime(2026, 11, 30, 6, 1)
    assert sends.due_again(store, "p", later) == [key]
    assert sends.take_again(store, key, later)
    assert not sends.take_again(store, key, later)  # taken: nobody else gets it
    store.close()
