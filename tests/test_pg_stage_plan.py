"""PostgreSQL plans the furthest-stage step without a subquery per record.

A correlated subquery on a CTE (the stage visits) was run by PostgreSQL as a
scan of every visit for each record (the first report at 10k deals took
154 s); DuckDB decorrelates it, so only PostgreSQL's plan shows it.
"""

from __future__ import annotations

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
