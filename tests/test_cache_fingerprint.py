"""The metrics cache's fingerprint follows every write, and stays cheap on PostgreSQL.

On PostgreSQL a bare count(*) scans the table, so the fingerprint there reads
the writers' marks (fact_changes, facts_state, portals, sync_runs) and never a
data table; on both engines a write changes it and a report computed after a
write shows the write.
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from rop.bitrix.snapshot import load_snapshot
from rop.metrics.cache import fingerprint
from rop.report.build import build_report
from rop.report.filter import ReportFilter
from rop.store import open_store
from rop.store.facts import refresh_facts
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import PORTALS

DATA_TABLES = (
    "deals|deal_stage_history|leads|lead_status_history|calls|contacts|companies|activities"
)


@pytest.fixture(params=ENGINES)
def target(request, tmp_path):
    return store_target(request.param, tmp_path, request)


def _won(report: dict) -> int:
    return int(report["total"]["figures"]["deals_won"] or 0)


def test_a_write_changes_the_fingerprint_and_the_next_report(target):
    with open_store(target) as store:
        portal = load_snapshot(store, PORTALS / "tricky")
        flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30))
        before = fingerprint(store, portal)
        assert fingerprint(store, portal) == before  # stable while nothing changes
        won = _won(build_report(store, flt))
        open_deal = store.query(
            "SELECT id FROM deals WHERE portal = ? AND stage_semantic = 'P' "
            "AND assigned_by_id IS NOT NULL ORDER BY id LIMIT 1",
            [portal],
        )[0][0]
        row = store.query_dicts(
            "SELECT * FROM deals WHERE portal = ? AND id = ?", [portal, open_deal]
        )[0]
        # A new won deal like the open one, written as the sync writes: marked,
        # not yet refreshed (an edit in place shows when its run ends).
        row["id"] = int(store.scalar("SELECT max(id) FROM deals WHERE portal = ?", [portal])) + 1
        row.update(stage_id="WON", stage_semantic="S", closed=True)
        store.upsert("deals", [row])
        marked = fingerprint(store, portal)
        assert marked != before
        assert _won(build_report(store, flt)) == won + 1
        refresh_facts(store, portal)
        assert _won(build_report(store, flt)) == won + 1


def test_the_postgres_fingerprint_counts_no_data_table(pg_cluster, request, tmp_path):
    from rop.store.postgres import PgStore

    target = store_target("postgres", tmp_path, request)
    with open_store(target) as store:
        portal = load_snapshot(store, PORTALS / "tricky")
        seen: list[str] = []
        fetch = PgStore._fetch

        def spy(self, sql, params):
            seen.append(sql)
            return fetch(self, sql, params)

        PgStore._fetch = spy  # type: ignore[method-assign]
        try:
            fingerprint(store, portal)
        finally:
            PgStore._fetch = fetch  # type: ignore[method-assign]
    assert seen
    scans = [s for s in seen if re.search(rf"count\(\*\) FROM ({DATA_TABLES})\b", s)]
    assert scans == []
