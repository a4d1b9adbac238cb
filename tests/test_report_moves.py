"""'Moved in the period' (deals_moved, leads_moved) against the history itself.

The relations decide most records by their first and last movement and read
the list of movements only for records moving before and after the period
(rop.metrics.sources.MOVED). Here every period of several lengths over a
generated demo portal is checked against the plain definition: a history row
of a movement type inside the period.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from rop.bitrix.snapshot import load_snapshot
from rop.report.build import build_report, drill
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store import open_store


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    generator = pytest.importorskip("rop.demo.generator")
    folder = tmp_path_factory.mktemp("moves")
    generator.generate(folder, seed=3, deals=1500)
    store = open_store(":memory:")
    load_snapshot(store, folder)
    yield store
    store.close()


def moved_ids(store, table: str, types: tuple[int, ...], flt: ReportFilter) -> set[int]:
    ctx = context(prepare(store, flt, None), flt.date_from, flt.date_to)
    rows = store.query(
        f"SELECT DISTINCT owner_id FROM {table} WHERE type_id IN (SELECT unnest($t)) "  # noqa: S608
        "AND created_time >= $a AND created_time < $b",
        {"t": list(types), "a": ctx.params["p_from"], "b": ctx.params["p_to"]},
    )
    return {r[0] for r in rows}


def periods(store) -> list[ReportFilter]:
    first = store.scalar("SELECT min(created_time) FROM deal_stage_history").date()
    last = store.scalar("SELECT max(created_time) FROM deal_stage_history").date()
    out = []
    for days in (1, 9, 31, 120):
        start = first - timedelta(days=3)
        while start <= last + timedelta(days=3):
            out.append(ReportFilter(start, start + timedelta(days=days - 1)))
            start += timedelta(days=max(days, 23))
    out.append(ReportFilter(date(first.year, 1, 1), last))
    return out


def test_moved_is_a_movement_in_the_period(demo):
    straddled = 0
    for flt in periods(demo):
        deals = {r["id"] for r in drill(demo, flt, "deals_moved")["records"]}
        assert deals == moved_ids(demo, "deal_stage_history", (2, 3, 5), flt), flt
        leads = {r["id"] for r in drill(demo, flt, "leads_moved")["records"]}
        assert leads == moved_ids(demo, "lead_status_history", (2, 3), flt), flt
        # The report's counts too: their statement reads the undecided records'
        # lists in place (rop.metrics.sources.moved, direct), not as the list does.
        total = build_report(demo, replace(flt, compare=False))["total"]["figures"]
        assert (total["deals_moved"], total["leads_moved"]) == (len(deals), len(leads)), flt
        ctx = context(prepare(demo, flt, None), flt.date_from, flt.date_to)
        # Records whose first and last movements do not decide (checked in the history).
        straddled += demo.scalar(
            "SELECT count(*) FROM (SELECT owner_id FROM deal_stage_history "
            "WHERE type_id IN (2, 3, 5) GROUP BY owner_id "
            "HAVING min(created_time) < $a AND max(created_time) >= $b)",
            {"a": ctx.params["p_from"], "b": ctx.params["p_to"]},
        )
    assert straddled > 0  # the slow path was exercised
