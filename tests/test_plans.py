"""Plans, plan/fact and both forecasts, pinned with exact numbers on tests/fixtures/plans_portal.

November 2026: 20 working days (4 November is a holiday), today the 27th is
the 19th, so 95 % is expected. Plans: user 2 won amount 200 000 set by the
admin on 10 Nov, then 160 000 by the head on 15 Nov (changed mid-period);
user 3 100 000; department 1 300 000 (its managers' plans sum to 260 000);
user 2 two won deals; user 4 and department 2 have none.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from rop.metrics.errors import ReportInputError
from rop.report.build import build_report
from rop.report.filter import ReportFilter
from rop.report.forecast import open_deals, stage_probabilities
from rop.report.planfact import expected_share
from rop.report.plans import (
    PlanEditDenied,
    PlanEntry,
    copy_plans,
    list_plans,
    parse_period,
    parse_value,
    plan_history,
    plans_for,
    set_plans,
)
from rop.report.workdays import working_days
from tests.fixtures import plans_portal
from tests.fixtures.plans_portal import HISTORY, PORTAL, SEMANTIC, TODAY

NOV = parse_period("2026-11")
FLT = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=TODAY)


def _plant(store):
    set_plans(store, PORTAL, [PlanEntry("user", 2, "deals_won_amount", NOV, 200000)], actor=9,
              now=datetime(2026, 11, 10, 9, tzinfo=UTC))  # fmt: skip
    set_plans(
        store,
        PORTAL,
        [
            PlanEntry("user", 2, "deals_won_amount", NOV, 160000),
            PlanEntry("user", 3, "deals_won_amount", NOV, 100000),
            PlanEntry("department", 1, "deals_won_amount", NOV, 300000),
            PlanEntry("user", 2, "deals_won", NOV, 2),
        ],
        actor=1,
        now=datetime(2026, 11, 15, 9, tzinfo=UTC),
    )


@pytest.fixture(scope="module")
def store():
    s = plans_portal.build()
    _plant(s)
    yield s
    s.close()


@pytest.fixture(scope="module")
def plans(store):
    return build_report(store, FLT)["plans"]


def _row(section, uid):
    return next(r for r in section["rows"] if r["user_id"] == uid)


def _dept(section, did):
    return next(d for d in section["departments"] if d["department_id"] == did)


def test_production_calendar_knows_holidays_and_transfers():
    assert working_days(date(2026, 11, 1), date(2026, 11, 30)) == 20  # 4 Nov off
    # 2025: Saturday 1 Nov is a working day, Monday 3 Nov a day off (the decree's transfer).
    assert working_days(date(2025, 11, 1), date(2025, 11, 1)) == 1
    assert working_days(date(2025, 11, 3), date(2025, 11, 3)) == 0
    assert working_days(date(2025, 11, 1), date(2025, 11, 30)) == 19
    assert working_days(date(2026, 1, 1), date(2026, 1, 31)) == 15
    assert expected_share(NOV, TODAY) == (20, 19, 95.0)
    assert expected_share(NOV, date(2026, 12, 1)) == (20, 20, 100.0)
    assert expected_share(NOV, date(2026, 10, 31)) == (20, 0, 0.0)


def test_plan_fact_per_manager(plans):
    assert plans["period"] == {"kind": "month", "key": "2026-11", "from": "2026-11-01",
                               "to": "2026-11-30"}  # fmt: skip
    assert plans["expected_pct"] == 95.0
    assert plans["figures"] == ["deals_won", "deals_won_amount"]
    # Plan changed mid-period: the value in force is the last one.
    assert _row(plans, 2)["figures"]["deals_won_amount"] == {
        "plan": 160000.0, "fact": 150000.0, "pct": 93.75, "gap": -10000.0, "status": "amber"}  # fmt: skip
    assert _row(plans, 2)["figures"]["deals_won"] == {
        "plan": 2.0, "fact": 2.0, "pct": 100.0, "gap": 0.0, "status": "green"}  # fmt: skip
    assert _row(plans, 3)["figures"]["deals_won_amount"] == {
        "plan": 100000.0, "fact": 30000.0, "pct": 30.0, "gap": -70000.0, "status": "red"}  # fmt: skip
    # A manager without a plan: the fact, nothing else.
    assert _row(plans, 4)["figures"]["deals_won_amount"] == {
        "plan": None, "fact": 70000.0, "pct": None, "gap": None, "status": None}  # fmt: skip


def test_department_plan_differs_from_its_managers(plans):
    d1 = _dept(plans, 1)["figures"]
    assert d1["deals_won_amount"]["plan"] == 300000.0
    assert d1["deals_won_amount"]["managers_plan"] == 260000.0
    assert d1["deals_won_amount"]["plan_source"] == "department"
    assert d1["deals_won_amount"]["pct"] == 60.0
    # No department plan for the count: the sum of its managers'.
    assert d1["deals_won"]["plan"] == 2.0
    assert d1["deals_won"]["plan_source"] == "managers"
    assert _dept(plans, 2)["figures"]["deals_won_amount"]["plan"] is None
    total = plans["total"]["figures"]["deals_won_amount"]
    assert total["plan"] == 300000.0 and total["fact"] == 250000.0
    assert total["pct"] == pytest.approx(250000 / 300000 * 100)


def test_run_rate_forecast(plans):
    rr = _row(plans, 2)["forecast"]["run_rate"]
    assert rr["deals_won_amount"] == pytest.approx(150000 / 19 * 20)
    assert rr["deals_won"] == pytest.approx(2 / 19 * 20)
    assert plans["total"]["forecast"]["run_rate"]["deals_won_amount"] == pytest.approx(
        250000 / 19 * 20
    )


def _reference_probabilities(today: date) -> dict[str, float]:
    """Independently of the SQL: per stage, of the deals that entered it within 12 months
    (local days, Moscow is UTC+3) and have closed since, the share won."""
    since = datetime(today.year - 1, today.month, today.day) - timedelta(hours=3)
    until = datetime(today.year, today.month, today.day) + timedelta(days=1, hours=-3)
    rows = [h for h in HISTORY if since <= h[2] < until]
    last: dict[int, tuple[datetime, int, str]] = {}
    for hid, deal, at, stage in rows:
        if deal not in last or (at, hid) > last[deal][:2]:
            last[deal] = (at, hid, stage)
    out: dict[str, float] = {}
    for stage in ("NEW", "PREPARATION"):
        entered = {deal for _, deal, _, s in rows if s == stage}
        outcomes = [SEMANTIC[last[d][2]] for d in entered]
        closed = [o for o in outcomes if o in ("S", "F")]
        out[stage] = closed.count("S") / len(closed)
    return out


def test_stage_probabilities_match_an_independent_reference(store):
    from zoneinfo import ZoneInfo

    probs = stage_probabilities(store, PORTAL, TODAY, ZoneInfo("Europe/Moscow"))
    ref = _reference_probabilities(TODAY)
    assert {s: p["probability"] for (_, s), p in probs.items()} == pytest.approx(ref)
    assert ref == {"NEW": 6 / 8, "PREPARATION": 2 / 3}  # the fixture as written


def test_weighted_pipeline_forecast(store, plans):
    fc = plans["forecast"]
    assert fc["current"] is True and fc["open_deals"] == 3
    stages = {s["stage_id"]: s for s in fc["stages"]}
    assert stages["NEW"]["deals"] == 2 and stages["NEW"]["weighted_amount"] == 45000.0
    assert stages["PREPARATION"]["weighted_amount"] == pytest.approx(60000.0)
    pipe = _row(plans, 2)["forecast"]["pipeline"]
    assert pipe["deals_won_amount"] == 150000 + 0.75 * 40000
    assert pipe["deals_won"] == 2 + 0.75
    assert _row(plans, 3)["forecast"]["pipeline"]["deals_won_amount"] == pytest.approx(90000.0)
    assert plans["total"]["forecast"]["pipeline"]["deals_won_amount"] == pytest.approx(355000.0)


def test_forecast_drill_lists_the_deals_with_their_weight(store):
    from rop.report.context import prepare

    deals = open_deals(prepare(store, FLT, None), NOV)
    assert [(d["id"], d["weight"]) for d in deals] == [
        (304, 0.75), (301, 0.75), (302, pytest.approx(2 / 3))]  # fmt: skip
    # The deal planned for December is not behind November's forecast.
    assert 303 not in {d["id"] for d in deals}


def test_no_forecast_for_a_period_that_has_ended(store):
    later = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 12, 3))
    section = build_report(store, later)["plans"]
    assert section["forecast"] == {"current": False}
    assert section["expected_pct"] == 100.0


def test_a_period_that_is_no_month_has_no_plans(store):
    flt = ReportFilter(date(2026, 11, 2), date(2026, 11, 30), today=TODAY)
    section = build_report(store, flt)["plans"]
    assert section["period"] is None and section["reason"] == "not_a_plan_period"


def test_quarter_plan_is_its_own_or_its_months(store):
    q4 = parse_period("2026-Q4")
    assert plans_for(store, PORTAL, q4)[("user", 2, "deals_won_amount")] == 160000.0
    s = plans_portal.build()
    _plant(s)
    set_plans(s, PORTAL, [PlanEntry("user", 2, "deals_won_amount", q4, 500000)], actor=None)
    assert plans_for(s, PORTAL, q4)[("user", 2, "deals_won_amount")] == 500000.0
    qflt = ReportFilter(date(2026, 10, 1), date(2026, 12, 31), today=TODAY)
    cell = _row(build_report(s, qflt)["plans"], 2)["figures"]["deals_won_amount"]
    assert cell["plan"] == 500000.0 and cell["fact"] == 150000.0
    s.close()


def test_history_records_each_change(store):
    hist = [h for h in plan_history(store, PORTAL, viewer=None)
            if h["subject"] == "user" and h["subject_id"] == 2
            and h["figure"] == "deals_won_amount"]  # fmt: skip
    assert [(h["old_value"], h["new_value"], h["changed_by"]) for h in hist] == [
        (None, 200000.0, 9), (200000.0, 160000.0, 1)]  # fmt: skip
    assert [h["changed_at"] for h in hist] == ["2026-11-10T09:00:00Z", "2026-11-15T09:00:00Z"]


def test_rights_to_change_plans():
    s = plans_portal.build()
    before = s.scalar("SELECT count(*) FROM plan_changes")
    # A manager changes no plan, not even their own.
    with pytest.raises(PlanEditDenied):
        set_plans(s, PORTAL, [PlanEntry("user", 2, "deals_won", NOV, 3)], actor=2)
    # A head changes their department's plans, not another's; one refused line
    # in a batch leaves the store as it was.
    with pytest.raises(PlanEditDenied) as exc:
        set_plans(s, PORTAL, [PlanEntry("user", 2, "deals_won", NOV, 3),
                              PlanEntry("department", 2, "deals_won", NOV, 3)], actor=1)  # fmt: skip
    assert "department 2" in str(exc.value)
    with pytest.raises(PlanEditDenied):
        set_plans(s, PORTAL, [PlanEntry("user", 4, "deals_won", NOV, 3)], actor=1)
    assert s.scalar("SELECT count(*) FROM plan_changes") == before
    assert set_plans(s, PORTAL, [PlanEntry("department", 1, "deals_won", NOV, 3),
                                 PlanEntry("user", 3, "deals_won", NOV, 1)], actor=1) == 2  # fmt: skip
    # The report admin changes any plan.
    assert set_plans(s, PORTAL, [PlanEntry("department", 2, "deals_won", NOV, 5)], actor=9) == 1
    # Setting the same value again is no change.
    assert set_plans(s, PORTAL, [PlanEntry("department", 2, "deals_won", NOV, 5)], actor=9) == 0
    s.close()


def test_everyone_sees_the_plans_of_the_rows_they_see(store):
    mine = list_plans(store, PORTAL, viewer=2, period=NOV)
    assert {(p["subject"], p["subject_id"]) for p in mine} == {("user", 2), ("department", 1)}
    assert {(p["subject"], p["subject_id"]) for p in list_plans(store, PORTAL, viewer=5)} == set()
    head = list_plans(store, PORTAL, viewer=1, period=NOV)
    assert {(p["subject"], p["subject_id"]) for p in head} == {
        ("user", 2), ("user", 3), ("department", 1)}  # fmt: skip
    viewer_report = build_report(store, ReportFilter(
        date(2026, 11, 1), date(2026, 11, 30), today=TODAY, viewer=2))["plans"]  # fmt: skip
    assert [r["user_id"] for r in viewer_report["rows"]] == [2]


def test_copy_last_periods_plans():
    s = plans_portal.build()
    _plant(s)
    dec = parse_period("2026-12")
    assert copy_plans(s, PORTAL, NOV, dec, actor=9) == 4
    assert plans_for(s, PORTAL, dec) == plans_for(s, PORTAL, NOV)
    s.close()


@pytest.mark.parametrize(
    ("text", "value"),
    [("1 500 000,50", 1500000.5), ("1\u00a0000", 1000.0), ("250000", 250000.0), (7, 7.0)],
)
def test_russian_number_input(text, value):
    assert parse_value(text) == value


@pytest.mark.parametrize("text", ["-5", "abc", "1e400", "", "1,2,3", True])
def test_bad_plan_values(text):
    with pytest.raises(ReportInputError):
        parse_value(text)


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "26-11", "ноябрь"])
def test_bad_plan_periods(text):
    with pytest.raises(ReportInputError):
        parse_period(text)


def test_bad_entries_leave_the_store_as_it_was():
    s = plans_portal.build()
    for entry in (
        PlanEntry("user", 99, "deals_won", NOV, 1),
        PlanEntry("department", 77, "deals_won", NOV, 1),
        PlanEntry("user", 2, "deals_win_rate", NOV, 1),
        PlanEntry("team", 2, "deals_won", NOV, 1),
    ):
        with pytest.raises(ReportInputError):
            set_plans(s, PORTAL, [PlanEntry("user", 2, "deals_won", NOV, 1), entry], actor=None)
    assert s.scalar("SELECT count(*) FROM plans") == 0
    s.close()


def test_xlsx_export_has_a_plan_fact_sheet(store):
    import io

    import openpyxl

    from rop.report.export import report_to_xlsx

    book = openpyxl.load_workbook(io.BytesIO(report_to_xlsx(build_report(store, FLT), lang="ru")))
    sheet = book["План-факт"]
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[0][:2] == ["Период плана", "2026-11"]
    assert rows[3][:2] == ["Ожидается, %", 95]
    peter = next(r for r in rows if r[0] == "Пётр Т" and r[1] == "Сумма успешных")
    assert peter[2:7] == [160000, 150000, 93.75, -10000, "amber"]
    assert peter[7] == pytest.approx(150000 / 19 * 20) and peter[8] == 180000


def test_forecast_drill_goes_through_the_drill_route(store):
    from rop.metrics.errors import AccessDenied
    from rop.report.build import drill

    got = drill(store, FLT, "forecast_pipeline", user_id=2)
    assert [(r["id"], r["probability"], r["weighted_amount"]) for r in got["records"]] == [
        (301, 0.75, 30000.0)]  # fmt: skip
    assert got["value"] == 30000.0 and got["total_records"] == 1
    whole = drill(store, FLT, "forecast_pipeline")
    assert whole["value"] == pytest.approx(45000.0 + 60000.0)
    assert [r["id"] for r in drill(store, FLT, "forecast_pipeline", department_id=2)["records"]] == [
        304]  # fmt: skip
    # Rights: a manager does not drill into another's forecast.
    viewer2 = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=TODAY, viewer=2)
    with pytest.raises(AccessDenied):
        drill(store, viewer2, "forecast_pipeline", user_id=3)
    assert [r["id"] for r in drill(store, viewer2, "forecast_pipeline")["records"]] == [301]
    with pytest.raises(ReportInputError):
        drill(store, ReportFilter(date(2026, 11, 2), date(2026, 11, 30), today=TODAY),
              "forecast_pipeline")  # fmt: skip
