"""Every figure equals its drill-down, for every manager, department and the total.

count = rows, sum = sum of rows, mean = mean of rows, share = numerator over
denominator recomputed from the listed records. Runs on the hand-made portals
and, when the demo generator is present, on a generated demo portal
(3000 deals) over three periods. Rows by department, source and pipeline are
checked the same way, their "—" rows (no department, source, pipeline) included.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from rop.store import open_store
from tests.fixtures.portals import load


def expected_value(d: dict, records: list[dict]):
    """The figure recomputed from its drill-down list."""
    if d["measure"] == "count":
        return len(records)
    if d["measure"] == "sum":
        return sum(r[d["value_column"]] or 0 for r in records)
    if d["measure"] == "mean":
        values = [r[d["value_column"]] for r in records if r[d["value_column"]] is not None]
        return sum(values) / len(values) if values else None
    num = sum(1 for r in records if r["counted"])
    return num / len(records) if records else None


def same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a == pytest.approx(b, rel=1e-9, abs=1e-6)


def agrees(d: dict, expected, got) -> bool:
    """``same``, except that amounts are reported to the kopeck (rounded half a kopeck)."""
    money = d["measure"] in ("sum", "mean") and any(
        c["key"] == d["value_column"] and c["kind"] == "amount" for c in d["columns"]
    )
    if money and expected is not None and got is not None:
        return abs(expected - got) <= 0.005 + 1e-6 and got == round(got, 2)
    return same(expected, got)


def report_row(report, uid):
    return next(r for r in report["rows"] if r["user_id"] == uid)


def check(store, flt: ReportFilter, per_user: bool = False) -> int:
    """Compare every cell of the report with its drill-down; returns the cells checked.

    With ``per_user``, also drill each figure for the first manager with records and
    compare with that manager's share of the total's list.
    """
    report = build_report(store, flt)
    dept_of = {r["user_id"]: r["department_id"] for r in report["rows"]}
    checked = 0
    for col in report["columns"]:
        key = col["key"]
        d = drill(store, flt, key)
        assert d["total_records"] == len(d["records"])
        assert len({r["id"] for r in d["records"]}) == len(d["records"]), key  # distinct
        assert same(d["value"], report["total"]["figures"][key]), key
        assert agrees(d, expected_value(d, d["records"]), report["total"]["figures"][key]), key
        by_user, by_dept = defaultdict(list), defaultdict(list)
        for rec in d["records"]:
            by_user[rec["manager_id"]].append(rec)
        for row in report["rows"]:
            got = row["figures"][key]
            assert agrees(d, expected_value(d, by_user.get(row["user_id"], [])), got), (
                key,
                row["user_id"],
            )
            checked += 1
        for uid, recs in by_user.items():
            # Records of managers without a row only exist where every figure is zero.
            if uid not in dept_of:
                assert d["measure"] in ("share", "mean") or expected_value(d, recs) in (0, 0.0), (
                    key,
                    uid,
                )
            by_dept[dept_of.get(uid, "none")].extend(recs)
        if per_user and by_user:
            uid = next(u for u in (r["user_id"] for r in report["rows"]) if u in by_user)
            mine = drill(store, flt, key, user_id=uid)
            assert sorted(r["id"] for r in mine["records"]) == sorted(r["id"] for r in by_user[uid])
            assert same(mine["value"], report_row(report, uid)["figures"][key]), (key, uid)
        for dep in report["departments"]:
            recs = by_dept.get(dep["department_id"], [])
            assert agrees(d, expected_value(d, recs), dep["figures"][key]), (
                key,
                dep["department_id"],
            )
            if dep["department_id"] is None:
                # The "no department" subtotal drills down like any other.
                mine = drill(store, flt, key, none_row=True)
                assert sorted(r["id"] for r in mine["records"]) == sorted(r["id"] for r in recs)
                assert same(mine["value"], dep["figures"][key]), (key, None)
    return checked


def check_rows(store, flt: ReportFilter) -> int:
    """Rows by department, source or pipeline: every cell equals its own drill-down,
    the "—" row's included, and the rows' lists split the total's list exactly."""
    assert flt.by != "manager"
    report = build_report(store, flt)
    checked = 0
    for col in report["columns"]:
        key = col["key"]
        total = drill(store, flt, key)
        seen: list[int] = []
        for row in report["rows"]:
            if total["measure"] == "count" and row["figures"][key] == 0:
                continue  # nothing to list: the split of the total's list below checks it
            target = {"none_row": True} if row["key"] is None else {"key": row["key"]}
            d = drill(store, flt, key, **target)
            assert d["total_records"] == len(d["records"])
            got = row["figures"][key]
            assert same(d["value"], got), (flt.by, key, row["key"])
            assert agrees(d, expected_value(d, d["records"]), got), (flt.by, key, row["key"])
            seen += [r["id"] for r in d["records"]]
            checked += 1
        assert len(seen) == len(set(seen)), (flt.by, key)  # each record in one row
        assert set(seen) == {r["id"] for r in total["records"]}, (flt.by, key)
    return checked


def _none_rows(store, flt: ReportFilter) -> int:
    return sum(1 for r in build_report(store, flt)["rows"] if r["key"] is None)


@pytest.mark.parametrize("by", ["department", "source", "pipeline"])
def test_rows_by_group_equal_their_drill_downs_none_rows_included(by):
    tricky = load("tricky")
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), key_stages=("C1:PREP", "WON"),
                       key_statuses=("IN_PROCESS",), today=date(2026, 11, 27), by=by)  # fmt: skip
    assert check_rows(tricky, flt) > 0
    if by == "source":  # a viewer's scope narrows every row, "—" included
        flt = ReportFilter(date(2026, 10, 1), date(2026, 10, 31), min_call_seconds=30, viewer=2,
                           by=by)  # fmt: skip
        assert check_rows(tricky, flt) > 0
    blanks = load("blanks")
    flt = ReportFilter(date(2026, 10, 1), date(2026, 10, 31), by=by)
    assert _none_rows(blanks, flt) == 1  # the "—" row is checked too
    assert check_rows(blanks, flt) > 0
    # By manager, the "no department" subtotal of the same portal.
    assert check(blanks, ReportFilter(date(2026, 10, 1), date(2026, 10, 31))) > 0


def test_tricky_portal_figures_equal_their_drill_downs():
    store = load("tricky")
    for flt in (
        ReportFilter(date(2026, 11, 1), date(2026, 11, 30), key_stages=("C1:PREP", "WON"),
                     key_statuses=("IN_PROCESS",), today=date(2026, 11, 27)),
        ReportFilter(date(2026, 10, 1), date(2026, 10, 31), min_call_seconds=30, viewer=2),
        ReportFilter(date(2026, 9, 1), date(2026, 12, 31), pipelines=(0,), max_call_seconds=100),
    ):  # fmt: skip
        assert check(store, flt) > 0
    # A drill for one manager lists exactly that manager's share of the total's records.
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30))
    mine = drill(store, flt, "deals_won", user_id=4)
    assert {r["manager_id"] for r in mine["records"]} == {4}
    assert mine["value"] == 3


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    pytest.importorskip("rop.demo.generator")
    from tests.demo_stores import demo_store_copy

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    demo_store_copy(tmp_path_factory, path, seed=1, deals=3000)
    store = open_store(path)
    yield store
    store.close()


def test_demo_portal_figures_equal_their_drill_downs(demo_store):
    (portal,) = demo_store.query("SELECT portal FROM portals")[0]
    last = demo_store.scalar("SELECT max(date_create) FROM deals").date()
    month = last.replace(day=1)
    prev_month = (month.replace(day=1) - timedelta(days=1)).replace(day=1)
    stages = [
        s for (s,) in demo_store.query(
            "SELECT status_id FROM statuses WHERE entity_id LIKE 'DEAL_STAGE%' ORDER BY sort LIMIT 2"
        )
    ]  # fmt: skip
    periods = [
        ReportFilter(month, last, key_stages=tuple(stages)),
        ReportFilter(prev_month, month - timedelta(days=1), min_call_seconds=20),
        ReportFilter(date(last.year, 1, 1), last),
    ]
    total = sum(check(demo_store, flt, per_user=i == 0) for i, flt in enumerate(periods))
    assert total > 100, portal
    # Rows by source where a source is: a deal's own or its lead's, "—" without.
    by_source = replace(periods[0], by="source", sections=("deals", "leads", "contacts"))
    assert check_rows(demo_store, by_source) > 0


def check_quality(store, flt: ReportFilter, per_user: bool = False) -> int:
    """Every number of the data-quality panel equals its drill-down: the total's
    list, split by manager, gives every manager's number; with ``per_user``,
    the first manager's own drill-down lists exactly their share."""
    from rop.report.quality import build_quality

    panel = build_quality(store, flt)
    checked = 0
    for col in panel["columns"]:
        key = col["key"]
        d = drill(store, flt, key)
        assert d["total_records"] == len(d["records"]) == panel["total"]["figures"][key], key
        assert d["value"] == panel["total"]["figures"][key], key
        by_user = defaultdict(list)
        for rec in d["records"]:
            by_user[rec["manager_id"]].append(rec["id"])
        assert set(by_user) <= {r["user_id"] for r in panel["rows"]}, key
        for row in panel["rows"]:
            assert row["figures"][key] == len(by_user.get(row["user_id"], [])), key
            checked += 1
        if per_user and by_user:
            row = next(r for r in panel["rows"] if r["user_id"] in by_user)
            mine = drill(store, flt, key, user_id=row["user_id"])
            assert sorted(r["id"] for r in mine["records"]) == sorted(by_user[row["user_id"]])
            assert mine["value"] == row["figures"][key], (key, row["user_id"])
    return checked


def test_demo_portal_quality_checks_equal_their_drill_downs(demo_store):
    last = demo_store.scalar("SELECT max(date_create) FROM deals").date()
    month = last.replace(day=1)
    prev_month = (month - timedelta(days=1)).replace(day=1)
    periods = [
        ReportFilter(month, last),
        ReportFilter(prev_month, month - timedelta(days=1)),
        ReportFilter(date(last.year, 1, 1), last),
    ]
    total = sum(check_quality(demo_store, flt, per_user=i == 0) for i, flt in enumerate(periods))
    assert total > 100


def test_cached_static_steps_agree_with_inline_sql_and_follow_data_changes(monkeypatch):
    import rop.report.context as context

    store = load("tricky")
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
    cached = build_report(store, flt)
    monkeypatch.setattr(context, "CACHE_STATIC_STEPS", False)
    inline = build_report(store, flt)
    monkeypatch.setattr(context, "CACHE_STATIC_STEPS", True)
    assert cached["rows"] == inline["rows"] and cached["total"] == inline["total"]
    # A new close in the history (as a sync would write it) is seen by the next report.
    store.upsert(
        "deal_stage_history",
        [{"portal": "tricky.bitrix24.ru", "id": 9999, "type_id": 3, "owner_id": 10,
          "created_time": datetime(2026, 11, 20, 7, 0), "category_id": 1,
          "stage_semantic": "S", "stage_id": "C1:WON"}],
    )  # fmt: skip
    after = build_report(store, flt)
    assert after["total"]["figures"]["deals_won"] == cached["total"]["figures"]["deals_won"] + 1


def test_cached_steps_are_shared_by_every_cursor_of_the_store(tmp_path):
    from rop.metrics.cache import CACHE_DB

    store = load("tricky", tmp_path / "s.duckdb")
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
    first = build_report(store, flt)
    tables = store.query(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [CACHE_DB]
    )
    assert tables  # deal_base, lead_base, call_base
    twin = store.cursor()
    assert build_report(twin, flt)["total"] == first["total"]
    assert (
        twin.query("SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [CACHE_DB])
        == tables
    )  # reused, not rebuilt
    twin.close()
    store.close()
