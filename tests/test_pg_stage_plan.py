"""PostgreSQL plans the furthest-stage step without a subquery per record.

A correlated subquery on a CTE (the stage visits) was run by PostgreSQL as a
scan of every visit for each record (the first report at 10k deals took
154 s); DuckDB decorrelates it, so only PostgreSQL's plan shows it.
"""

from __future__ import annotations

import re

import pytest

from rop.bitrix.snapshot import load_snapshot
from rop.metrics.stage_facts import KINDS, reach_base, stage_order, visits_helper
from rop.store import open_store
from rop.store.dialect import to_pyformat
from tests.conftest import store_target
from tests.fixtures.portals import PORTALS


@pytest.mark.parametrize("kind", ["deal", "lead"])
def test_the_reach_step_has_no_subplan(kind, pg_cluster, request, tmp_path):
    k = KINDS[kind]
    steps = [stage_order(k), visits_helper(k)]
    reach = reach_base(k)
    sql = "WITH " + ", ".join(f"{c.name} AS ({c.sql})" for c in steps) + "\n" + reach.sql
    with open_store(store_target("postgres", tmp_path, request)) as store:
        portal = load_snapshot(store, PORTALS / "stages")
        rows = store.query(sql, {"portal": portal})
        assert rows and any(r[5] is not None for r in rows)  # reach_stage found
        plan = [r[0] for r in store.conn.execute("EXPLAIN " + to_pyformat(sql), {"portal": portal})]
    assert not [line for line in plan if "SubPlan" in line], plan


def test_the_stage_section_reads_a_range_of_the_visits(pg_cluster, request, tmp_path):
    """The period's visits come from the (portal, k) index, not from every visit
    of the portal (rop.store.postgres.PG_INDEXES): with sequential scans priced
    out (the fixture is tiny), a plan without that index reads the primary key's
    whole range of the portal instead. The period is after the fixture's visits:
    the load leaves statistics (rop.store.pg_stats), by which the fixture's own
    month holds nearly every visit and is rightly read whole; a later month is
    what a big portal's month is, a small share of its visits."""
    from datetime import date

    from rop.report.filter import ReportFilter
    from rop.report.stages import stage_section
    from rop.store.postgres import PgStore

    with open_store(store_target("postgres", tmp_path, request)) as store:
        assert isinstance(store, PgStore)
        load_snapshot(store, PORTALS / "stages")
        seen: list[tuple[str, object]] = []
        fetch = store._fetch

        def recording(sql, params):
            seen.append((sql, params))
            return fetch(sql, params)

        store._fetch = recording  # type: ignore[method-assign]
        stage_section(store, ReportFilter(date(2027, 3, 1), date(2027, 3, 31)))
        del store._fetch
        visits = [(s, p) for s, p in seen if "_stage_visits" in s and "$p_from" in s]
        assert visits
        store.conn.execute("SET enable_seqscan = off")
        for sql, params in visits:
            plan = [r[0] for r in store.conn.execute("EXPLAIN " + to_pyformat(sql), params)]
            reads = [line for line in plan if re.search(r" on (deal|lead)_stage_visits\b", line)]
            # The period's range (not the primary key (portal, id, n) read whole
            # for the portal; on so few rows a join may still use that too).
            assert any("_stage_visits_k" in line for line in reads), "\n".join(plan)
