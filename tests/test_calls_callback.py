"""Missed calls not called back (calls_not_called_back), on a hand-made portal.

The portal (tests/fixtures/portals/callbacks) holds, in November 2026:
1 missed and called back by the same manager (same contact); 3 missed, the
manager dialled back and nobody answered (not called back); 5 missed and
called back by another manager (same contact, another number); 7 missed on
the 28th and called back on 1 December with the number spelt another way;
9 missed and the client rang again and got through; 11 missed, its contact's
only connected call the day before (not called back); and 13 missed in
October, never called back. The rule: docs/METRICS_DECISIONS.md.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from rop.metrics.catalogue import figure
from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load

NOV = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 12, 5))
KEY = "calls_not_called_back"


@pytest.fixture(scope="module", params=ENGINES)
def store(request, tmp_path_factory):
    s = load("callbacks", store_target(request.param, tmp_path_factory.mktemp("cb"), request))
    yield s
    s.close()


def ids(store, flt=NOV, **kw):
    return sorted(r["id"] for r in drill(store, flt, KEY, **kw)["records"])


def test_the_rule_on_every_case(store):
    assert ids(store) == [3, 11]
    assert drill(store, NOV, KEY)["value"] == 2
    # Missed calls themselves stay the report's figure: every unanswered incoming call.
    report = build_report(store, NOV)
    assert report["total"]["figures"]["calls_missed"] == 6
    assert KEY not in report["total"]["figures"]  # not a column of the table


def test_per_manager_and_in_each_viewers_scope(store):
    assert ids(store, user_id=2) == [3]
    assert ids(store, user_id=3) == [11]
    assert ids(store, replace(NOV, viewer=2)) == [3]
    assert ids(store, replace(NOV, viewer=3)) == [11]


def test_a_call_back_after_the_period_counts_up_to_now(store):
    # The period ends on the 28th, the call back came on 1 December: called back.
    to_28 = replace(NOV, date_to=date(2026, 11, 28))
    assert ids(store, to_28) == [3, 11]
    assert ids(store, replace(NOV, date_from=date(2026, 10, 1), date_to=date(2026, 10, 31))) == [13]
    assert ids(store, replace(NOV, date_from=date(2026, 12, 1), date_to=date(2026, 12, 5))) == []


def test_the_drill_down_equals_the_figure(store):
    d = drill(store, NOV, KEY)
    assert d["total_records"] == len(d["records"]) == d["value"]
    # The figure alone (its aggregate, what a digest reads) equals its list, for the
    # total, each manager and the department, in every period of the fixture.
    for flt in (
        NOV,
        replace(NOV, date_to=date(2026, 11, 28)),
        replace(NOV, date_from=date(2026, 10, 1), date_to=date(2026, 12, 5)),
    ):
        for where in ({}, {"user_id": 2}, {"user_id": 3}, {"department_id": 1}):
            listed = drill(store, flt, KEY, **where)["records"]
            assert drill(store, flt, KEY, limit=0, **where)["value"] == len(listed), where
    missed = {r["id"] for r in drill(store, NOV, "calls_missed")["records"]}
    assert {r["id"] for r in d["records"]} <= missed
    per_user = {u: drill(store, NOV, KEY, user_id=u)["value"] for u in (1, 2, 3)}
    assert sum(per_user.values()) == d["value"]
    assert per_user == {1: 0, 2: 1, 3: 1}


def test_the_figure_is_the_catalogues_and_not_a_column():
    fig = figure(KEY)
    assert fig.section == "calls" and fig.measure == "count"
    assert fig.label_en == "Missed, not called back"


def test_numbers_are_keys_however_spelt(store):
    rows = dict(store.query("SELECT id, phone_norm FROM calls WHERE id IN (3, 4, 7, 8, 6)"))
    assert rows == {3: "+79120000002", 4: "+79120000002", 7: "+79120000004",
                    8: "+79120000004", 6: "+74950001111"}  # fmt: skip


def test_the_digest_lists_missed_calls_not_called_back_in_the_readers_scope(store):
    from rop.digests.chat import render_chat
    from rop.digests.content import build_digest
    from rop.digests.subscriptions import make

    key = str(store.scalar("SELECT portal FROM portals"))
    store.use_portal(key)
    got = {}
    for reader in (1, 2, 3):
        sub = make(key, reader, frequency="monthly", period="last_month", language="en")
        d = build_digest(store, sub, date(2026, 12, 1))
        assert (d.date_from, d.date_to) == (NOV.date_from, NOV.date_to)
        got[reader] = {a.key: a.count for a in d.attention}
        assert "calls_missed" not in got[reader]
        if reader == 1:
            assert "Missed, not called back 2" in render_chat(d).message
    assert {r: a["calls_not_called_back"] for r, a in got.items()} == {1: 2, 2: 1, 3: 1}
