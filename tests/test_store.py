"""The store: migrations run once and are recorded; upsert replaces by key."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from rop.store import open_store
from rop.store.db import StoreError
from rop.store.migrations import MIGRATIONS
from tests.conftest import ENGINES, store_target


@pytest.fixture(params=ENGINES)
def target(request, tmp_path):
    """A fresh store of each engine (PostgreSQL: as the application role, RLS on)."""
    return store_target(request.param, tmp_path, request, fresh=True)


def test_migrations_recorded_once(target):
    path = target
    with open_store(path) as store:
        versions = [r[0] for r in store.query("SELECT version FROM schema_migrations")]
    assert versions == [m[0] for m in MIGRATIONS]
    with open_store(path) as store:
        count = store.scalar("SELECT count(*) FROM schema_migrations")
    assert count == len(MIGRATIONS)


def test_every_table_is_keyed_by_portal(target):
    # Portal first in every key: PostgreSQL can distribute the tables by portal (Citus).
    with open_store(target) as store:
        tables = [
            r[0]
            for r in store.query(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name != 'schema_migrations'"
            )
            # PostgreSQL's data versions are counters beside the data, keyed by
            # scope (a portal, or '' for all): rop.store.pg_versions, not distributed.
            if not r[0].startswith("rop_data_")
        ]
        assert "deals" in tables
        # The installed-application registry is keyed by Bitrix24's member_id
        # (stable across domain changes); its `portal` column names the key
        # the CRM tables use (docs/ARCHITECTURE.md, Store conventions).
        by_member = {"app_portals", "app_events_seen"}
        for table in tables:
            spec = store.table(table)
            # A table of aggregates has no key (its groups are replaced whole, per
            # portal): portal is then its first column, as in every index on it.
            first = spec.key[0] if spec.key else next(iter(spec.columns))
            assert first == ("member_id" if table in by_member else "portal"), table


def _deal(id_: int, title: str) -> dict:
    return {
        "portal": "p.bitrix24.ru",
        "id": id_,
        "title": title,
        "opportunity": 10.5,
        "date_create": datetime(2026, 1, 2, 3, 4, 5),
        "closedate": date(2026, 2, 1),
    }


def test_upsert_is_idempotent_and_replaces(target):
    with open_store(target) as store:
        store.use_portal("p.bitrix24.ru")
        rows = [_deal(1, "Первая"), _deal(2, "<b>&</b> 🚀")]
        store.upsert("deals", rows)
        snapshot = store.query("SELECT * FROM deals ORDER BY id")
        store.upsert("deals", rows)
        assert store.query("SELECT * FROM deals ORDER BY id") == snapshot
        store.upsert("deals", [_deal(2, "Вторая")])
        titles = store.query("SELECT id, title FROM deals ORDER BY id")
    assert titles == [(1, "Первая"), (2, "Вторая")]


def test_upsert_keeps_other_portals_apart(target):
    with open_store(target) as store:
        store.use_portal("p.bitrix24.ru")
        store.upsert("deals", [_deal(1, "a")])
        store.use_portal("other.bitrix24.ru")
        store.upsert("deals", [{**_deal(1, "b"), "portal": "other.bitrix24.ru"}])
        assert store.query("SELECT portal, title FROM deals WHERE id = 1 ORDER BY portal") in (
            [("other.bitrix24.ru", "b")],  # PostgreSQL: the session's portal only
            [("other.bitrix24.ru", "b"), ("p.bitrix24.ru", "a")],  # DuckDB: all
        )
        assert store.delete_ids("deals", "other.bitrix24.ru", [1, 99]) == 1
        store.use_portal("p.bitrix24.ru")
        assert store.query("SELECT portal, title FROM deals") == [("p.bitrix24.ru", "a")]


def test_transaction_rolls_back_on_error(target):
    with open_store(target) as store:
        store.use_portal("p.bitrix24.ru")
        store.upsert("deals", [_deal(1, "a")])
        with pytest.raises(RuntimeError), store.transaction():
            store.upsert("deals", [_deal(1, "changed"), _deal(3, "new")])
            raise RuntimeError("boom")
        assert store.query("SELECT id, title FROM deals") == [(1, "a")]


def test_unknown_table_is_named(target):
    with open_store(target) as store, pytest.raises(StoreError, match="nope"):
        store.upsert("nope", [{"portal": "p", "id": 1}])


def test_a_store_from_a_newer_rop_is_refused_untouched(tmp_path):
    path = tmp_path / "s.duckdb"
    newest = MIGRATIONS[-1][0]
    with open_store(path) as store:
        store.execute("INSERT INTO schema_migrations VALUES (?, 'future', NULL)", [newest + 1])
    for read_only in (False, True):
        with pytest.raises(StoreError, match=f"schema version {newest + 1}, newer than"):
            open_store(path, read_only=read_only)
    # Refused before writing anything.
    conn = duckdb.connect(str(path))
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchall() == [
        (len(MIGRATIONS) + 1,)
    ]
    conn.close()


def test_read_only_refuses_a_store_that_needs_migrations(tmp_path):
    path = tmp_path / "s.duckdb"
    with open_store(path) as store:
        store.execute("DELETE FROM schema_migrations WHERE version = ?", [MIGRATIONS[-1][0]])
    with pytest.raises(StoreError, match=rf"needs schema upgrades \[{MIGRATIONS[-1][0]}\]"):
        open_store(path, read_only=True)


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"hello", "not a valid DuckDB database file"),
        # DuckDB would download its SQLite reader to open this; we stay offline.
        (b"SQLite format 3\x00" + bytes(100), "not a DuckDB database file"),
    ],
)
def test_a_foreign_file_is_one_clear_line(tmp_path, content, problem):
    path = tmp_path / "s.duckdb"
    path.write_bytes(content)
    with pytest.raises(StoreError) as caught:
        open_store(path)
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    assert path.read_bytes() == content


def test_an_impossible_folder_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=r"cannot open store .*: File exists"):
        open_store(blocker / "s.duckdb")


def test_a_misspelt_column_is_refused_not_dropped(target):
    with open_store(target) as store:
        store.use_portal("p.bitrix24.ru")
        with pytest.raises(StoreError, match="no column titel in table 'deals'"):
            store.upsert("deals", [{**_deal(1, "a"), "titel": "typo"}])
        assert store.scalar("SELECT count(*) FROM deals") == 0


def test_table_specs_agree_across_engines(tmp_path, request):
    # One TableSpec whatever the engine: the same columns, Arrow types and keys.
    duck = open_store(store_target("duckdb", tmp_path, request))
    pg = open_store(store_target("postgres", tmp_path, request))
    try:
        for table in ("deals", "users", "statuses", "sync_runs", "report_admins"):
            a, b = duck.table(table), pg.table(table)
            assert (a.columns, a.key) == (b.columns, b.key), table
    finally:
        duck.close()
        pg.close()


def test_a_postgresql_store_from_a_newer_rop_is_refused(pg_cluster, request, tmp_path):
    from tests.pg import OWNER

    url = store_target("postgres", tmp_path, request)
    owner = url.replace("rop_app@", f"{OWNER}@")
    newest = MIGRATIONS[-1][0]
    with open_store(owner) as store:
        store.execute("INSERT INTO schema_migrations VALUES (?, 'future', NULL)", [newest + 1])
    with pytest.raises(StoreError, match=f"schema version {newest + 1}, newer than"):
        open_store(url)


def test_an_unreachable_postgresql_is_one_clear_line():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql://rop:secret@127.0.0.1:{port}/rop")
    text = str(caught.value)
    assert text.startswith(f"cannot open store postgresql://rop@127.0.0.1:{port}/rop")
    assert "secret" not in text and "\n" not in text


def test_a_postgresql_server_gone_midway_is_a_store_error(pg_cluster, request, tmp_path):
    url = store_target("postgres", tmp_path, request)
    with open_store(url) as store:
        pid = store.conn.info.backend_pid
        pg_cluster.psql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(StoreError, match=r"^the store postgresql://rop_app@.* failed: "):
            store.query("SELECT count(*) FROM deals")
