"""A fresh migration leaves the planner no false statistics (rop.store.postgres.analyze_owned).

An empty table analysed is taken for empty until autovacuum analyses it again,
and the application role's first sync into it (it may not ANALYZE) was planned
as nested loops over "one row": seconds per statement at a few hundred deals.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import migrated_database


def test_a_fresh_migration_leaves_its_empty_tables_never_analysed(pg_cluster: Any) -> None:
    db = migrated_database(pg_cluster).rsplit("/", 1)[1]
    rows = dict(
        pg_cluster.psql(
            "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = CAST('public' AS regnamespace)",
            db=db,
        )
    )
    for table in ("deals", "deal_stage_history", "leads", "statuses", "deal_facts"):
        assert rows[table] == -1, table  # never analysed: estimated from its size
    assert rows["schema_migrations"] > 0  # written, so analysed
