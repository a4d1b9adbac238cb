"""Each tricky rule of METRICS.md, pinned on the hand-made portal `tricky` with exact numbers.

The portal (tests/fixtures/portals/tricky, Europe/Moscow, +03:00) is read
for November 2026, compared with October; "today" is 2026-11-27.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from rop.report.build import build_report, drill
from rop.report.export import report_to_csv
from rop.report.filter import ReportFilter, ReportInputError
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load

NOV = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))


@pytest.fixture(scope="module", params=ENGINES)
def store(request, tmp_path_factory):
    # Every rule holds on both engines: the same figures from the same SQL.
    s = load("tricky", store_target(request.param, tmp_path_factory.mktemp("rules"), request))
    yield s
    s.close()


@pytest.fixture(scope="module")
def report(store):
    return build_report(store, NOV)


def row(report, user_id):
    return next(r for r in report["rows"] if r["user_id"] == user_id)


def ids(store, figure, flt=NOV, **kw):
    return sorted(r["id"] for r in drill(store, flt, figure, **kw)["records"])


def test_close_time_history_then_moved_time_then_closedate(store, report):
    # D1 by its history row (MOVED_TIME says 6 Nov, history 5 Nov), D2 by MOVED_TIME,
    # D3 by CLOSEDATE at local midnight: all three won in November.
    assert ids(store, "deals_won", user_id=4) == [1, 2, 3]
    recs = {r["id"]: r for r in drill(store, NOV, "deals_won", user_id=4)["records"]}
    assert recs[1]["close_time"] == "2026-11-05T12:00:00+03:00"
    assert recs[2]["close_time"] == "2026-11-10T10:00:00+03:00"
    assert recs[3]["close_time"] == "2026-11-20T00:00:00+03:00"
    # Cycle: 16d2h, 9d9h50m, 19d0h30m.
    expected = (16 + 2 / 24 + 9 + (9 * 60 + 50) / 1440 + 19 + 30 / 1440) / 3
    assert row(report, 4)["figures"]["deals_sale_cycle_days"] == pytest.approx(expected)


def test_reopened_deal_counts_by_its_latest_close(store, report):
    # D4 was lost on 10 Oct, re-opened, and won on 12 Nov: won in November,
    # not lost in October; its cycle runs from creation to the last close.
    assert ids(store, "deals_won", user_id=7) == [4]
    oct_ = ReportFilter(date(2026, 10, 1), date(2026, 10, 31), today=date(2026, 11, 27))
    assert ids(store, "deals_lost", oct_) == []
    assert row(report, 7)["figures"]["deals_sale_cycle_days"] == pytest.approx(72.0)
    assert report["previous"]["total"]["figures"]["deals_lost"] == 0


def test_pipeline_change_is_a_movement_and_the_deal_belongs_to_its_new_pipeline(store):
    wholesale = ReportFilter(
        date(2026, 11, 1), date(2026, 11, 30), pipelines=(1,), key_stages=("C1:PREP",),
        today=date(2026, 11, 27),
    )  # fmt: skip
    r = build_report(store, wholesale)
    assert ids(store, "deals_moved", wholesale) == [5]
    assert ids(store, "deals_new", wholesale) == [5, 8]
    assert r["total"]["figures"]["deal_stage:C1:PREP"] == 1
    general = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), pipelines=(0,))
    assert 5 not in ids(store, "deals_new", general)


def test_loss_cycle_counts_deals_created_before_the_period(store, report):
    # D6 created 15 Aug, lost 15 Nov (92 days); D9 created 8 Nov, lost 9 Nov (1 day).
    assert ids(store, "deals_lost", user_id=4) == [6, 9]
    assert row(report, 4)["figures"]["deals_loss_cycle_days"] == pytest.approx(46.5)


def test_two_currencies_in_base_currency_and_missing_amount_flagged(store, report):
    f = row(report, 4)["figures"]
    assert f["deals_new_amount"] == pytest.approx(1000 * 90 + 10000)
    assert f["deals_won_amount"] == pytest.approx(100000 + 90000 + 50000)
    assert f["deals_avg_won"] == pytest.approx(80000)
    lost = {r["id"]: r for r in drill(store, NOV, "deals_lost", user_id=4)["records"]}
    assert lost[6]["amount_missing"] is True and lost[6]["amount"] == 0
    assert lost[9]["amount_missing"] is False
    assert report["currency"] == "RUB"


def test_shares_and_nothing_to_divide_by(report):
    f4, f7 = row(report, 4)["figures"], row(report, 7)["figures"]
    assert f4["deals_conversion_sale"] == 0.5 and f4["deals_conversion_loss"] == 0.5
    assert f4["deals_win_rate"] == pytest.approx(0.6)
    assert f7["deals_loss_cycle_days"] is None
    assert f7["leads_conversion_sale"] is None  # no new leads: null, never 0 %
    total = report["total"]["figures"]
    # The total's ratio is its own numerator over its own denominator: 4 won of 6 closed.
    assert total["deals_win_rate"] == pytest.approx(4 / 6)
    assert total["deals_conversion_sale"] == pytest.approx(1 / 5)


def test_dismissed_and_unknown_managers_get_rows(store, report):
    dismissed = row(report, 5)
    assert dismissed["dismissed"] is True and dismissed["figures"]["deals_overdue"] == 1
    unknown = row(report, 99)
    assert unknown["unknown"] is True and unknown["name"] == "user #99"
    assert (unknown["name_ru"], unknown["name_en"]) == ("Пользователь #99", "user #99")
    known = row(report, 4)
    assert known["name_ru"] == known["name_en"] == known["name"] == "Ирина Петрова"
    no_dept = next(d for d in report["departments"] if d["department_id"] is None)
    assert (no_dept["name_ru"], no_dept["name_en"]) == ("Без отдела", "No department")
    recs = drill(store, NOV, "deals_new")["records"]
    flags = {r["manager_id"]: r["manager_unknown"] for r in recs}
    assert flags[99] is True and flags[4] is False
    assert next(r for r in recs if r["manager_id"] == 99)["manager"] == "user #99"
    csv_lines = report_to_csv(report, "ru").splitlines()
    assert any(";99;Пользователь #99;" in line for line in csv_lines)
    assert any(",99,user #99," in line for line in report_to_csv(report, "en").splitlines())
    assert unknown["department_id"] is None
    # A manager with nothing in the period gets no row (D10 of user 3 closed in October).
    assert 3 not in {r["user_id"] for r in report["rows"]}
    assert row(report, 4)["profile_url"] == "https://tricky.bitrix24.ru/company/personal/user/4/"


def test_period_edge_at_local_midnight(store, report):
    # D2 was created at 00:10 Moscow on 1 Nov (21:10 UTC on 31 Oct): November.
    # D3 at 23:30 Moscow on 31 Oct (20:30 UTC): October.
    assert ids(store, "deals_new", user_id=4) == [2, 9]
    # November on the 27th compares with 1-27 October by default (issue 15), which
    # leaves D3 out; the whole of October holds the edge.
    assert report["previous"]["period"]["to"] == "2026-10-27"
    full = build_report(store, replace(NOV, previous="full"))
    assert full["previous"]["period"] == {
        "from": "2026-10-01", "to": "2026-10-31", "timezone": "Europe/Moscow", "mode": "full",
        "ongoing": True, "current": {"from": "2026-11-01", "to": "2026-11-30"},
    }  # fmt: skip
    prev4 = next(r for r in full["previous"]["rows"] if r["user_id"] == 4)
    assert prev4["figures"]["deals_new"] == 2  # D1 and D3
    # A call at 23:59 on 30 Nov is November's; one at 00:00 on 1 Dec is not.
    assert ids(store, "calls_total", user_id=7) == [4, 5]


def test_company_called_only_through_its_contact(store, report):
    f = row(report, 4)["figures"]
    assert f["companies_total"] == 3
    assert ids(store, "companies_not_called", user_id=4) == [3]
    assert f["companies_with_deals"] == 2 and f["companies_with_sales"] == 1
    assert f["companies_coverage"] == pytest.approx(2 / 3)
    assert f["companies_sell_through"] == pytest.approx(1 / 3)
    # "My company" records are the portal's own, not clients.
    assert ids(store, "companies_total", user_id=7) == [4]


def test_call_duration_bounds_apply_to_every_call_figure(store):
    bounded = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), min_call_seconds=30)
    r = build_report(store, bounded)
    f4, f7 = row(r, 4)["figures"], row(r, 7)["figures"]
    assert (f4["calls_total"], f4["calls_missed"], f4["calls_talk_seconds"]) == (2, 0, 145)
    assert f4["calls_avg_seconds"] == pytest.approx(72.5)
    assert (f7["calls_total"], f7["calls_talk_seconds"]) == (1, 200)
    # The 10-second call to ЗАО Пион no longer counts: the company is "not called".
    assert f7["companies_not_called"] == 1
    capped = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), max_call_seconds=50)
    assert ids(store, "calls_total", capped) == [2, 3, 4]


def test_leads_close_time_and_key_status(store):
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), key_statuses=("IN_PROCESS",))
    r = build_report(store, flt)
    f4, f7 = row(r, 4)["figures"], row(r, 7)["figures"]
    assert (f4["leads_new"], f4["leads_moved"], f4["leads_converted"], f4["leads_junk"]) == (
        3,
        1,
        1,
        1,
    )
    assert f4["leads_conversion_cycle_days"] == pytest.approx(3.0)
    assert f4["leads_junk_cycle_days"] == pytest.approx(2.0)  # by MOVED_TIME
    assert f4["lead_status:IN_PROCESS"] == 1
    # L4 has only DATE_CLOSED (2 Nov, 00:00 Moscow): converted in November.
    assert f7["leads_converted"] == 1
    assert f7["leads_conversion_cycle_days"] == pytest.approx(31 + 14 / 24)


def test_potential_and_overdue(store, report):
    assert ids(store, "deals_potential") == [5]
    assert ids(store, "deals_overdue") == [5, 7]
    later = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 20))
    assert ids(store, "deals_overdue", later) == [7]


def test_department_subtotals_and_total_count_distinct_records(report):
    depts = {d["department_id"]: d["figures"] for d in report["departments"]}
    assert depts[3]["deals_new"] == 2  # Ирина
    assert depts[4]["deals_new"] == 2  # Глеб (dismissed) and Егор, first department 4
    assert depts[None]["deals_new"] == 1  # the unknown user
    assert report["total"]["figures"]["deals_new"] == 5
    assert report["total"]["figures"]["companies_total"] == 4


def test_rows_by_source_and_pipeline(store):
    by_source = build_report(
        store, ReportFilter(date(2026, 11, 1), date(2026, 11, 30), by="source", sections=("deals",))
    )
    names = {r["key"]: (r["name"], r["figures"]["deals_new"]) for r in by_source["rows"]}
    # D2, D5, D9 and D8, which has no source of its own but comes from lead L4 (CALL); D7.
    assert names == {"CALL": ("Звонок", 4), "WEB": ("Сайт", 1)}
    assert by_source["departments"] == []
    by_pipe = build_report(
        store,
        ReportFilter(date(2026, 11, 1), date(2026, 11, 30), by="pipeline", sections=("deals",)),
    )
    pipes = {r["name"]: r["figures"]["deals_new"] for r in by_pipe["rows"]}
    assert pipes == {"Общая": 3, "Опт": 2}
    by_pipe_flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), by="pipeline")
    assert ids(store, "deals_new", by_pipe_flt, key="1") == [5, 8]


def test_departments_chosen_show_every_active_user(store):
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), departments=(3,))
    r = build_report(store, flt)
    assert sorted(x["user_id"] for x in r["rows"]) == [3, 4, 7]  # 7 is in 3 as a second dept
    assert next(x for x in r["rows"] if x["user_id"] == 3)["figures"]["deals_new"] == 0


def test_drill_pages_sort_and_keep_the_figures_value(store):
    first = drill(store, NOV, "deals_won_amount", sort="amount", desc=True, limit=2)
    assert [r["id"] for r in first["records"]] == [1, 2]  # 100 000, 90 000
    assert first["total_records"] == 4 and first["value"] == pytest.approx(270000)
    rest = drill(store, NOV, "deals_won_amount", sort="amount", desc=True, limit=2, offset=2)
    assert [r["id"] for r in rest["records"]] == [3, 4]
    beyond = drill(store, NOV, "deals_win_rate", limit=5, offset=50)
    assert beyond["records"] == [] and beyond["total_records"] == 6
    assert beyond["value"] == pytest.approx(4 / 6)
    none = drill(store, NOV, "deals_sale_cycle_days", user_id=5)
    assert none["records"] == [] and none["value"] is None and none["total_records"] == 0
    with pytest.raises(ReportInputError, match="cannot sort by"):
        drill(store, NOV, "deals_new", sort="password")


def test_drill_a_key_stage_not_chosen_as_a_column(store):
    assert ids(store, "deal_stage:C1:PREP") == [5]
    assert ids(store, "lead_status:IN_PROCESS") == [1]
    with pytest.raises(ReportInputError, match="unknown deal stage 'NOPE'"):
        drill(store, NOV, "deal_stage:NOPE")
    general = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), pipelines=(0,))
    with pytest.raises(ReportInputError, match="not in the chosen pipelines"):
        drill(store, general, "deal_stage:C1:PREP")


def test_several_portals_need_a_name(store):
    from rop.report.portal import select_portal

    store.upsert("portals", [{"portal": "other.bitrix24.ru", "timezone": "UTC"}])
    try:
        with pytest.raises(ReportInputError, match="several portals"):
            build_report(store, NOV)
        assert (
            build_report(store, NOV, portal="tricky.bitrix24.ru")["total"]["figures"]["deals_new"]
            == 5
        )
        assert select_portal(store, "other.bitrix24.ru").timezone == "UTC"
        with pytest.raises(ReportInputError, match="no portal 'nope'"):
            select_portal(store, "nope")
    finally:
        store.execute("DELETE FROM portals WHERE portal = 'other.bitrix24.ru'")


def test_closedate_at_local_midnight_uses_that_days_offset():
    # The same portal read in Berlin: D3 closed by CLOSEDATE 20 Nov (CET, +01:00) stays
    # at local midnight although the period starts in summer time (1 Oct, +02:00).
    berlin = load("tricky")
    berlin.execute("UPDATE portals SET timezone = 'Europe/Berlin'")
    flt = ReportFilter(date(2026, 10, 1), date(2026, 11, 30), today=date(2026, 11, 27))
    recs = {r["id"]: r for r in drill(berlin, flt, "deals_won", user_id=4)["records"]}
    assert recs[3]["close_time"] == "2026-11-20T00:00:00+01:00"
    summer = ReportFilter(date(2026, 7, 1), date(2026, 11, 30), today=date(2026, 11, 27))
    recs = {r["id"]: r for r in drill(berlin, summer, "deals_won", user_id=4)["records"]}
    assert recs[3]["close_time"] == "2026-11-20T00:00:00+01:00"
    berlin.close()
