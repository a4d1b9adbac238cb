"""Planner statistics after a first sync by the application role (rop.store.pg_stats).

The application role does not own the tables and may not ANALYZE them; the
owner's ``rop_analyze()`` does it for the stale portal tables only. A first
sync into a fresh database therefore leaves statistics the planner uses (its
estimate of a portal's rows is the count, not a default guess), and the
application role still cannot ANALYZE or change anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from rop.bitrix.sync import run_sync
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.store.db import open_store
from tests.pg import APP, OWNER
from tests.sync_portal import make_portal

# The tables a first sync fills and the facts' refresh reads or writes.
FILLED = ("deals", "deal_stage_history", "calls", "deal_facts", "call_facts", "deal_stage_visits")


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory, pg_cluster: Any) -> tuple[str, str]:
    """A fresh database migrated by the owner, then a portal's first sync as the
    application role: (the app role's URL, the portal's key)."""
    from tests.conftest import migrated_database

    folder = make_portal(tmp_path_factory.mktemp("portal"), deals=300)
    url = migrated_database(pg_cluster)
    app = create_app(folder, EmulatorConfig(rate_limit=False))
    with serve_in_thread(app, host="127.0.0.1", port=0) as base, open_store(url) as store:
        p = app.state.portal
        run_sync(store, f"{base}/rest/{p.webhook_user_id}/{p.webhook_token}/", rate_per_second=1000)
        return url, base.split("://", 1)[1]


def _db(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _stats(cluster: Any, url: str) -> dict[str, tuple[float, int, Any]]:
    """Per table: (reltuples, rows counted, last_analyze)."""
    rows = cluster.psql(
        "SELECT c.relname, c.reltuples, s.last_analyze FROM pg_class c "
        "JOIN pg_stat_user_tables s ON s.relid = c.oid",
        db=_db(url),
        role=OWNER,
    )
    out = {}
    for name, tuples, when in rows:
        if name in FILLED:
            count = cluster.psql(f"SELECT count(*) FROM {name}", db=_db(url), role=OWNER)[0][0]
            out[name] = (tuples, count, when)
    return out


def test_a_first_sync_by_the_application_role_leaves_statistics(
    synced: tuple[str, str], pg_cluster: Any
) -> None:
    url, portal = synced
    stats = _stats(pg_cluster, url)
    assert set(stats) == set(FILLED)
    for table, (tuples, count, when) in stats.items():
        # Migrated (and analysed) empty: only an ANALYZE after the sync knows the rows.
        assert count > 0 and tuples == count and when is not None, table
    # The planner uses them: the portal's deals are estimated as many as there are
    # (with no statistics of `portal` it guessed 0.5 % of the table: one row).
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.portal', %s, false)", [portal])
        plan = conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT * FROM deal_facts WHERE portal = %s", [portal]
        ).fetchone()
        assert plan is not None
        assert plan[0][0]["Plan"]["Plan Rows"] == stats["deal_facts"][1]
        # Nothing is stale after the sync: a call analyses nothing more.
        assert conn.execute("SELECT rop_analyze()").fetchone() == ([],)


def test_the_application_role_analyses_only_through_the_fixed_function(
    synced: tuple[str, str], pg_cluster: Any
) -> None:
    url, _portal = synced
    db = _db(url)

    def analysed_at(table: str) -> Any:
        rows = pg_cluster.psql(
            f"SELECT last_analyze FROM pg_stat_user_tables WHERE relname = '{table}'", db=db
        )
        return rows[0][0]

    # A table of the owner's outside the function's list, stale (rows, never analysed).
    pg_cluster.psql("CREATE TABLE IF NOT EXISTS outside (x int)", db=db, role=OWNER)
    pg_cluster.psql("GRANT SELECT, INSERT ON outside TO " + APP, db=db, role=OWNER)
    pg_cluster.psql("INSERT INTO outside SELECT generate_series(1, 1000)", db=db, role=OWNER)
    before = analysed_at("deals")
    with psycopg.connect(url, autocommit=True) as conn:
        # ANALYZE itself: PostgreSQL skips a table the role does not own (a warning).
        conn.execute("ANALYZE deals")
        conn.execute("ANALYZE outside")
        assert analysed_at("deals") == before and analysed_at("outside") is None
        # The function analyses its fixed list: not the table outside it.
        assert "outside" not in conn.execute("SELECT rop_analyze()").fetchone()[0]  # type: ignore[index]
        assert analysed_at("outside") is None
        # No change of schema, of the function, or of its rights.
        for statement in (
            "ALTER TABLE deals ADD COLUMN x int",
            "CREATE OR REPLACE FUNCTION rop_analyze(first boolean DEFAULT false) "
            "RETURNS text[] LANGUAGE sql AS $$ SELECT '{}'::text[] $$",
            "ALTER FUNCTION rop_analyze(boolean) SECURITY INVOKER",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # A grant by a role without the grant option grants nothing (a warning):
        # PUBLIC still may not call it (below).
        conn.execute("GRANT EXECUTE ON FUNCTION rop_analyze(boolean) TO PUBLIC")
    # The function: the owner's, SECURITY DEFINER with its search_path pinned, no
    # dynamic SQL (EXECUTE) in its body, callable by the application role, not PUBLIC.
    row = pg_cluster.psql(
        "SELECT pg_get_userbyid(proowner), prosecdef, proconfig, prosrc, "
        f"has_function_privilege('{APP}', oid, 'EXECUTE'), "
        "EXISTS (SELECT 1 FROM aclexplode(proacl) a WHERE a.grantee = 0) "
        "FROM pg_proc WHERE proname = 'rop_analyze'",
        db=db,
    )
    assert len(row) == 1
    owner, definer, config, source, app_may, public_may = row[0]
    assert owner == OWNER and definer and app_may and not public_may
    assert config == ["search_path=pg_catalog, pg_temp"]
    assert "EXECUTE" not in source.upper() and "ANALYZE (SKIP_LOCKED) public.deals;" in source
    # A role given nothing may not call it.
    pg_cluster.psql(
        "DO $$ BEGIN CREATE ROLE rop_stranger LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    pg_cluster.psql(f"GRANT CONNECT ON DATABASE {db} TO rop_stranger")
    pg_cluster.psql("GRANT USAGE ON SCHEMA public TO rop_stranger", db=db, role=OWNER)
    stranger = pg_cluster.url(db, "rop_stranger")
    with (
        psycopg.connect(stranger, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT rop_analyze()")


def test_migrate_covers_a_table_added_later(pg_cluster: Any, tmp_path: Path) -> None:
    """The list is the portal tables as the owner migrated: `rop migrate` remakes it."""
    from rop.store.postgres import migrate_pg
    from tests.conftest import migrated_database

    url = migrated_database(pg_cluster)
    db = _db(url)
    owner = pg_cluster.url(db, OWNER)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("CREATE TABLE later (portal TEXT, x INT)")
        migrate_pg(conn, db, app_role=APP)  # RLS, grants and the function for it
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.portal', 'p.bitrix24.ru', false)")
        conn.execute("INSERT INTO later SELECT 'p.bitrix24.ru', generate_series(1, 100)")
        assert conn.execute("SELECT rop_analyze()").fetchone() == (["later"],)
    tuples = pg_cluster.psql("SELECT reltuples FROM pg_class WHERE relname = 'later'", db=db)
    assert tuples == [(100.0,)]


def test_the_new_leads_drill_down_reads_a_range_of_the_lead_facts(
    synced: tuple[str, str], pg_cluster: Any
) -> None:
    """The new leads' page reads the period's leads by creation (lead_facts_date_create),
    not every lead fact of the portal: with sequential scans priced out (the portal is
    small) and a month after its leads (a big portal's month is a small share of them),
    a plan without that index reads the primary key's whole range of the portal."""
    from datetime import date

    from rop.report.build import drill
    from rop.report.filter import ReportFilter
    from rop.store.dialect import to_pyformat
    from rop.store.postgres import PgStore

    url, portal = synced
    with open_store(url) as store:
        assert isinstance(store, PgStore)
        store.use_portal(portal)
        last = store.scalar("SELECT max(date_create) FROM lead_facts")
        assert last is not None
        seen: list[tuple[str, Any]] = []
        fetch = store._fetch

        def recording(sql: str, params: Any) -> Any:
            seen.append((sql, params))
            return fetch(sql, params)

        store._fetch = recording  # type: ignore[method-assign]
        later = date(last.year + 1, 1, 1)
        drill(store, ReportFilter(later, date(later.year, 1, 31)), "leads_new", limit=100)
        del store._fetch
        pages = [(s, p) for s, p in seen if "lead_facts" in s and "date_create" in s]
        assert pages
        store.conn.execute("SET enable_seqscan = off")
        for sql, params in pages:
            plan = [r[0] for r in store.conn.execute("EXPLAIN " + to_pyformat(sql), params)]
            reads = [line for line in plan if " on lead_facts" in line]
            assert any("lead_facts_date_create" in line for line in reads), "\n".join(plan)
