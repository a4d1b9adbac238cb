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
    # Deal, lead and call facts are the store's own tables (rop.store.facts), and so
    # are the stage visits, open visits and furthest stages (rop.store.stage_facts).
    # No list text: each is paged (tests/test_drill_texts.py; the calls' too since
    # the callpage branch); the clients' are stored (rop.store.client_texts).
    assert {t.rsplit("_", 1)[0] for t in warmed} == {
        "deal_order_base", "lead_order_base",  # stage analytics' stage directory (issue 12)
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


def test_postgresql_cache_tables_are_the_sessions_and_follow_changes(tmp_path, request):
    # PostgreSQL: the static steps not stored live in temporary tables of the
    # connection; a change of the data made in place and stamped sends the
    # stored facts' steps there too until the next refresh.
    from datetime import datetime

    from rop.report.context import prepare
    from rop.store.facts import refresh_facts
    from tests.conftest import store_target

    def temp_steps(store) -> set[str]:
        temp = store.query(
            "SELECT relname FROM pg_class WHERE relnamespace = pg_my_temp_schema() "
            "AND relkind = 'r'"
        )
        return {r[0].rsplit("_", 1)[0] for r in temp}

    store = load("tricky", store_target("postgres", tmp_path, request))
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
    before = build_report(store, flt)["total"]["figures"]
    assert "deal_order_base" in temp_steps(store)
    stored = {"deal_base", "lead_base", "call_base", "deal_visit_base", "deal_open_base"}
    assert not temp_steps(store) & stored
    # Deal 9 (lost in November) is won after all.
    store.execute("UPDATE deals SET stage_id = 'WON', stage_semantic = 'S' WHERE id = 9")
    store.execute("UPDATE portals SET updated_at = ?", [datetime(2030, 1, 1)])
    after = build_report(store, flt)["total"]["figures"]
    assert after["deals_won"] == before["deals_won"] + 1
    assert after["deals_lost"] == before["deals_lost"] - 1
    # Computed in memory: the stored ones lag.
    assert {"deal_base", "deal_visit_base"} <= temp_steps(store)
    refresh_facts(store, "tricky.bitrix24.ru", full=True)
    assert prepare(store, flt, None).stored is not None
    assert build_report(store, flt)["total"]["figures"] == after
    # Another connection of the pool has none of these tables: nothing shared.
    twin = store.cursor()
    assert not twin.query(
        "SELECT relname FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r'"
    )
    assert prepare(twin, flt, None).materialize is not None
    assert build_report(twin, flt)["total"]["figures"] == after
    twin.close()
    store.close()
