"""The rollups follow the stored facts, and the figures read from them equal the
figures over the records, on DuckDB and PostgreSQL (rop/store/rollups.py,
rop/metrics/rollups.py).

The portal is the emulator over real HTTP; the store a real DuckDB file or a
database of the private PostgreSQL cluster (as the application role).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rop.metrics import rollups as metric_rollups
from rop.metrics.compile import Context
from rop.metrics.sources import Options
from rop.report.build import build_report
from rop.report.filter import ReportFilter
from rop.store import facts, rollups
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load
from tests.sync_portal import make_portal
from tests.test_facts import Spy, change_portal, differences
from tests.test_sync import emulate, sync


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=300)


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest):
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def _rows(store: Store, sql: str, params: dict[str, Any]) -> list[tuple]:
    """Rows in one order, floats to 9 digits (a sum's last bits depend on the
    order the engine adds in: a group recomputed after an update is read in
    another order than in a rebuild)."""
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    rows = store.query(sql, used)
    out = [tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows]
    return sorted(out, key=repr)


def stored_rollups(store: Store, portal: str) -> dict[str, list[tuple]]:
    record = ", ".join(rollups.RECORD_COLUMNS)
    call = ", ".join(rollups.CALL_COLUMNS)
    return {
        "record_rollups": _rows(
            store, f"SELECT {record} FROM record_rollups WHERE portal = $portal", {"portal": portal}
        ),
        "call_rollups": _rows(
            store, f"SELECT {call} FROM call_rollups WHERE portal = $portal", {"portal": portal}
        ),
    }


def rebuilt_rollups(store: Store, portal: str) -> dict[str, list[tuple]]:
    """The rollups computed from the stored facts now, by the same SQL, nothing stored."""
    tz = store.scalar("SELECT timezone FROM portals WHERE portal = ?", [portal])
    params = {"portal": portal, "tz": tz or "UTC"}
    record = " UNION ALL ".join(
        f"({rollups._record_sql(e, k, False)})" for e in rollups.ENTITIES.values() for k in e.kinds
    )
    return {
        "record_rollups": _rows(
            store, f"SELECT {', '.join(rollups.RECORD_COLUMNS)} FROM ({record}) r", params
        ),
        "call_rollups": _rows(
            store,
            f"SELECT {', '.join(rollups.CALL_COLUMNS)} FROM ({rollups._call_sql(False)}) r",
            params,
        ),
    }


def assert_rollups_equal_a_rebuild(store: Store, portal: str) -> None:
    assert rollups.rollups_ready(store, portal)
    got, want = stored_rollups(store, portal), rebuilt_rollups(store, portal)
    for table, rows in want.items():
        assert rows, table  # the portal has some of each
        assert got[table] == rows, table


def _same_report(store: Store, flt: ReportFilter, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The report from the rollups, checked against the one from the records only."""
    monkeypatch.setattr("rop.report.context.USE_ROLLUPS", True)
    fast = build_report(store, flt, stages=False)
    monkeypatch.setattr("rop.report.context.USE_ROLLUPS", False)
    slow = build_report(store, flt, stages=False)
    monkeypatch.setattr("rop.report.context.USE_ROLLUPS", True)
    assert not differences(fast, slow), (flt, differences(fast, slow)[:5])
    return fast


def _reads_rollups(store: Store, flt: ReportFilter, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many of the report's queries read a rollup table."""
    seen: list[str] = []
    real = type(store).query_dicts

    def spy(self: Store, sql: str, params: Any = None) -> list[dict[str, Any]]:
        seen.append(sql)
        return real(self, sql, params)

    # The figure statements go together (Store.query_batch, rop.report.build).
    real_batch = type(store).query_batch

    def batch_spy(self: Store, statements: Any) -> Any:
        seen.extend(sql for sql, _ in statements)
        return real_batch(self, statements)

    monkeypatch.setattr(type(store), "query_dicts", spy)
    monkeypatch.setattr(type(store), "query_batch", batch_spy)
    build_report(store, flt, stages=False)
    monkeypatch.setattr(type(store), "query_dicts", real)
    monkeypatch.setattr(type(store), "query_batch", real_batch)
    return sum(" record_rollups " in s or " call_rollups " in s for s in seen)


def test_incremental_syncs_keep_the_rollups_equal_to_a_rebuild(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(monkeypatch)
    rnd = random.Random(11)
    with emulate(portal_dir) as emu:
        sync(store, emu)
        assert spy.runs[-1].rollups is None  # the first copy builds them whole
        assert_rollups_equal_a_rebuild(store, emu.key)
        for _ in range(2):
            change_portal(emu, rnd)
            sync(store, emu)
            last = spy.runs[-1]
            # Only the days the changed records leave or enter were recomputed.
            assert last.rollups is not None and 0 < last.rollups < 200, last
            assert_rollups_equal_a_rebuild(store, emu.key)
        month = ReportFilter(date(2026, 3, 1), date(2026, 3, 31), today=date(2026, 5, 1))
        assert _reads_rollups(store, month, monkeypatch) >= 3  # deals, leads, calls
        # Every figure from the rollups equals the one over the records, for the
        # team, departments, pipelines, a pipeline subset, a manager, long periods.
        flt = ReportFilter(date(2026, 1, 1), date(2026, 4, 30), today=date(2026, 5, 1))
        for narrowed in (
            month,
            flt,
            replace(flt, by="department"),
            replace(flt, by="pipeline"),
            replace(flt, by="source"),
            replace(flt, pipelines=(1,)),
            replace(flt, managers=(7,)),
            replace(flt, departments=(2,)),
            replace(flt, min_call_seconds=30),
            replace(flt, date_from=date(2025, 1, 1), date_to=date(2026, 12, 31)),
        ):
            report = _same_report(store, narrowed, monkeypatch)
        assert report["total"]["figures"]["deals_new"] > 0


def test_days_are_the_portals_local_days_across_a_daylight_saving_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Records near local midnight fall on the local day, in winter and summer time.
    store = load("tricky", tmp_path / "s.duckdb")
    portal = "tricky.bitrix24.ru"
    store.execute("UPDATE portals SET timezone = 'America/New_York'")
    facts.refresh_facts(store, portal)
    assert_rollups_equal_a_rebuild(store, portal)
    for day in range(1, 31):
        flt = ReportFilter(date(2026, 11, day), date(2026, 11, day), today=date(2026, 11, 27))
        _same_report(store, flt, monkeypatch)
    for month in (10, 11):
        flt = ReportFilter(date(2026, month, 1), date(2026, month, 28), today=date(2026, 11, 27))
        _same_report(store, flt, monkeypatch)
    store.close()


def test_a_store_from_before_the_rollups_gets_them_from_ensure_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    store = load("tricky", path)
    portal = "tricky.bitrix24.ru"
    expected = stored_rollups(store, portal)
    store.execute("DELETE FROM record_rollups")
    store.execute("DELETE FROM call_rollups")
    store.execute("DELETE FROM rollup_state")  # as the previous version left it
    store.close()
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
    with open_store(path, read_only=True) as ro:
        # The facts are current, the rollups are not: the sums come from the records.
        assert facts.facts_ready(ro, portal) and not rollups.rollups_ready(ro, portal)
        assert _reads_rollups(ro, flt, monkeypatch) == 0
        before = build_report(ro, flt, stages=False)
    with open_store(path) as reopened:
        assert not rollups.rollups_ready(reopened, portal)  # no open builds them
        # `rop migrate` or the next sync does (ensure_facts).
        assert facts.ensure_facts(reopened) == [portal]
        assert stored_rollups(reopened, portal) == expected
        assert rollups.rollups_ready(reopened, portal)
        assert _reads_rollups(reopened, flt, monkeypatch) > 0
        assert not differences(build_report(reopened, flt, stages=False), before)


def _ctx(**kw: Any) -> Context:
    params = {"min_s": kw.pop("min_s", 0)}
    opts = Options(pipelines=False, max_call=kw.pop("max_call", False))
    return Context(params=params, opts=opts, rollups=kw.pop("rollups", True), **kw)


def test_the_rollups_answer_only_where_they_are_exact() -> None:
    usable = metric_rollups.usable
    assert usable("deals", _ctx()) and usable("calls", _ctx()) and usable("leads", _ctx())
    assert not usable("deals", _ctx(rollups=False))  # not current
    assert not usable("contacts", _ctx())  # client coverage: distinct clients
    assert not usable("deals", _ctx(group="source"))  # no source in the rollups
    assert not usable("calls", _ctx(min_s=30))  # no durations in them
    assert not usable("calls", _ctx(max_call=True))
    # App mode: a viewer granted single deals reads the deal records, not the calls'.
    granted = {"grant_viewer": 5, "grant_full": {"deal": frozenset({1})}}
    assert not usable("deals", _ctx(**granted)) and usable("calls", _ctx(**granted))


def test_postgres_statistics_come_from_the_owner_and_its_indexes_exist(pg_cluster: Any) -> None:
    """A load by the application role leaves statistics through the owner's
    rop_analyze() (rop.store.pg_stats); without that function (a database an
    older rop migrated) it may not ANALYZE and leaves none until `rop migrate`;
    the same load by the owner analyses as it ends (docs/SERVER.md)."""
    import psycopg

    from rop.bitrix.snapshot import load_snapshot
    from rop.store.postgres import PG_INDEXES, migrate_pg
    from tests.conftest import migrated_database
    from tests.fixtures.portals import PORTALS
    from tests.pg import APP, OWNER

    def analysed(url: str) -> set[str]:
        rows = pg_cluster.psql(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL",
            db=url.rsplit("/", 1)[1],
        )
        return {r[0] for r in rows}

    app_url = migrated_database(pg_cluster)
    # migrate_pg analysed the empty tables once: start from none analysed.
    db = app_url.rsplit("/", 1)[1]
    pg_cluster.psql("SELECT pg_stat_reset()", db=db)
    with open_store(app_url) as store:
        load_snapshot(store, PORTALS / "tricky")
        assert store.analyze() == []  # nothing stale left by the load's own
    assert {"deals", "deal_facts", "record_rollups", "call_facts"} <= analysed(app_url)
    # A database without the function: the application role analyses nothing.
    app_url = migrated_database(pg_cluster)
    owner_url = app_url.replace(f"{APP}@", f"{OWNER}@", 1)
    db = app_url.rsplit("/", 1)[1]
    pg_cluster.psql("DROP FUNCTION rop_analyze(boolean)", db=db, role=OWNER)
    pg_cluster.psql("SELECT pg_stat_reset()", db=db)
    with open_store(app_url) as store:
        load_snapshot(store, PORTALS / "tricky")
        assert store.analyze() == []  # owns nothing
    assert "deal_facts" not in analysed(app_url)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        migrate_pg(conn, db, app_role=APP)  # `rop migrate`
    assert {"deals", "deal_facts", "record_rollups", "call_facts"} <= analysed(app_url)
    indexes = {r[0] for r in pg_cluster.psql("SELECT indexname FROM pg_indexes", db=db)}
    for sql in PG_INDEXES:
        assert sql.split(" ON ")[0].rsplit(" ", 1)[1] in indexes
    # The owner loading a portal analyses as it ends (no migrate needed).
    other = pg_cluster.new_database()
    with psycopg.connect(pg_cluster.url(other, OWNER), autocommit=True) as conn:
        migrate_pg(conn, other)
    pg_cluster.psql("SELECT pg_stat_reset()", db=other)
    with open_store(pg_cluster.url(other, OWNER)) as store:
        load_snapshot(store, PORTALS / "tricky")
    assert {"deals", "deal_facts", "record_rollups"} <= analysed(pg_cluster.url(other, OWNER))
