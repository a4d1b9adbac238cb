"""warm_cache computes every static step ahead, so the next report only reads them."""

from __future__ import annotations

from datetime import date

from rop.metrics.cache import CACHE_DB
from rop.report.build import build_report, drill
from rop.report.context import warm_cache
from rop.report.filter import ReportFilter
from tests.fixtures.portals import load


def cache_tables(store) -> list[str]:
    return sorted(
        r[0]
        for r in store.query(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [CACHE_DB]
        )
    )


def test_warm_cache_builds_what_a_report_then_reuses(tmp_path):
    store = load("tricky", tmp_path / "s.duckdb")
    assert not store.query("SELECT * FROM duckdb_databases() WHERE database_name = ?", [CACHE_DB])
    warm_cache(store)
    warmed = cache_tables(store)
    assert {t.rsplit("_", 1)[0] for t in warmed} == {
        "deal_base", "lead_base", "call_base", "deal_text", "lead_text", "call_text",
        "company_text", "contact_text",  # last call, last sale, phone (issue 9)
        # Stage analytics (issue 12): visits, stage order, open visits, furthest stage.
        "deal_visit_base", "deal_order_base", "deal_open_base", "deal_reach_base",
        "lead_visit_base", "lead_order_base", "lead_open_base", "lead_reach_base",
    }  # fmt: skip
    flt = ReportFilter(date(2026, 10, 1), date(2026, 11, 30), today=date(2026, 11, 27))
    report = build_report(store, flt)
    assert cache_tables(store) == warmed  # nothing rebuilt, nothing added
    drill(store, flt, "deals_won")
    drill(store, flt, "calls_total")
    drill(store, flt, "companies_not_called")
    assert cache_tables(store) == warmed
    assert report["total"]["figures"]["deals_won"] > 0
    store.close()
