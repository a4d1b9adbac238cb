"""A report's fixed costs on PostgreSQL (issue 11, 10k deals under 50 ms): its
figure statements go to the server in one pipeline (rop.report.build ``_Batch``,
``Store.query_batch``), and a small portal's prepared statements run their
generic plans (rop.store.pg_plans), decided per data version.

On the session's private cluster (tests/pg.py) as the application role.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from rop.bitrix.snapshot import load_snapshot
from rop.report.build import build_report
from rop.report.filter import ReportFilter
from rop.store import open_store, pg_plans
from rop.store.db import Store
from rop.store.postgres import PgStore, connect_pool
from tests.conftest import migrated_database
from tests.fixtures.portals import PORTALS
from tests.pg import Cluster

FLT = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
PORTAL = "tricky.bitrix24.ru"


@pytest.fixture
def db(pg_cluster: Cluster) -> str:
    url = migrated_database(pg_cluster)
    with open_store(url) as store:
        load_snapshot(store, PORTALS / "tricky")
    return url


@pytest.fixture
def store(db: str) -> Iterator[PgStore]:
    opened = open_store(db)
    assert isinstance(opened, PgStore)
    opened.use_portal(PORTAL)
    yield opened
    opened.close()


def _sent(store: PgStore, fn) -> list[tuple[bool, str]]:
    """Each statement ``fn`` sends on the store's connection: (in a pipeline, text)."""
    seen: list[tuple[bool, str]] = []
    conn = store.conn
    execute = conn.execute

    def recording(query, params=None, **kw):
        piped = conn.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF
        seen.append((piped, str(query)))
        return execute(query, params, **kw)

    conn.execute = recording  # type: ignore[method-assign]
    try:
        fn()
    finally:
        del conn.execute
    return seen


def test_a_warm_reports_figure_statements_go_in_one_pipeline(store: PgStore, monkeypatch) -> None:
    build_report(store, FLT, stages=False)
    build_report(store, FLT, stages=False)
    sent = _sent(store, lambda: build_report(store, FLT, stages=False))
    piped = [sql for is_piped, sql in sent if is_piped]
    alone = [sql for is_piped, sql in sent if not is_piped]
    # Both periods' sections (deals, leads, calls, companies, contacts): one
    # pipeline, every statement of it a figure statement (grouped per manager).
    assert len(piped) >= 6, piped
    assert all("GROUP BY" in sql for sql in piped)
    # Alone: the statement that sets the portal and reads its version, and the
    # plan section's own (its plans and forecast, after the figures).
    assert len(alone) <= 4, alone
    batched = build_report(store, FLT, stages=False)
    # The statements one by one (DuckDB's way): the same statements, the same report.
    monkeypatch.setattr(PgStore, "query_batch", Store.query_batch)
    one_by_one = _sent(store, lambda: build_report(store, FLT, stages=False))
    assert not [sql for is_piped, sql in one_by_one if is_piped]
    assert sorted(sql for _, sql in one_by_one) == sorted(sql for _, sql in sent)
    assert build_report(store, FLT, stages=False) == batched


def test_a_failing_statement_in_the_pipeline_leaves_the_connection_usable(store: PgStore) -> None:
    with pytest.raises(psycopg.errors.UndefinedTable):
        store.query_batch([("SELECT 1 AS a", ()), ("SELECT * FROM no_such_table", ())])
    assert store.query_batch([("SELECT 1 AS a", ()), ("SELECT ? AS b", [2])]) == [
        (["a"], [(1,)]),
        (["b"], [(2,)]),
    ]


def _plans(store: PgStore) -> tuple[int, int]:
    """Custom and generic plans made by this connection's prepared statements."""
    row = store.conn.execute(
        "SELECT coalesce(sum(custom_plans), 0), coalesce(sum(generic_plans), 0) "
        "FROM pg_prepared_statements"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.fixture
def fresh_hints(monkeypatch) -> None:
    """This test's own per-process hints (the tricky portal is in other databases too)."""
    monkeypatch.setattr(pg_plans, "_DATABASES", {})


def test_a_small_portals_statements_run_generic_plans(fresh_hints, db: str) -> None:
    with open_store(db) as store:
        assert isinstance(store, PgStore)
        store.use_portal(PORTAL)
        assert store.scalar("SHOW plan_cache_mode") == pg_plans.GENERIC
        for _ in range(3):
            build_report(store, FLT, stages=False)
        custom, generic = _plans(store)
        # Prepared at their second run, then never planned for their values.
        assert custom == 0 and generic > 0


def test_a_big_portal_leaves_the_choice_to_postgresql(fresh_hints, db: str, monkeypatch) -> None:
    monkeypatch.setattr(pg_plans, "SMALL_DEALS", 2)  # the tricky portal is "big" now
    with open_store(db) as store:
        assert isinstance(store, PgStore)
        store.use_portal(PORTAL)
        assert store.scalar("SHOW plan_cache_mode") == pg_plans.AUTO
        for _ in range(3):
            build_report(store, FLT, stages=False)
        custom, _ = _plans(store)
        assert custom > 0  # PostgreSQL's first five runs of each are custom


def test_a_portal_that_grows_past_the_line_is_counted_again_after_the_write(
    fresh_hints, db: str, monkeypatch
) -> None:
    with open_store(db) as store:
        assert isinstance(store, PgStore)
        store.use_portal(PORTAL)
        deals = int(store.scalar("SELECT count(*) FROM deals"))
        monkeypatch.setattr(pg_plans, "SMALL_DEALS", deals)
        pg_plans._DATABASES.clear()
        store.refresh()
        assert store.scalar("SHOW plan_cache_mode") == pg_plans.GENERIC
        store.refresh()  # the same version: the hint, no count
        assert store.scalar("SHOW plan_cache_mode") == pg_plans.GENERIC
        # Another handle (another process would do the same) adds a deal: the
        # data version moves, the next report counts again.
        with open_store(db) as other:
            other.use_portal(PORTAL)
            other.upsert("deals", [{"portal": PORTAL, "id": 999_999, "title": "one more"}])
        store.refresh()
        assert store.scalar("SHOW plan_cache_mode") == pg_plans.AUTO


def test_a_connection_back_in_the_pool_plans_as_postgresql_chooses(db: str) -> None:
    pool = connect_pool(db, max_size=1)
    try:
        with pool.connection() as conn:
            conn.execute("SELECT set_config('plan_cache_mode', %s, false)", [pg_plans.GENERIC])
        with pool.connection() as conn:
            row = conn.execute("SHOW plan_cache_mode").fetchone()
            assert row is not None and row[0] == pg_plans.AUTO
    finally:
        pool.close()
