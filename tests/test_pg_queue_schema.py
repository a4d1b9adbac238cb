"""`rop migrate` keeps procrastinate's queue schema current, on real PostgreSQL.

procrastinate leaves tracking its migration files to its users; rop records
them in ``queue_migrations``. A queue as an old procrastinate left it is
brought to the schema a new database gets, file by file, and a second run
changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from rop.cli import cli
from tests.conftest import migrated_database
from tests.pg import APP, OWNER, Cluster

pytest.importorskip("procrastinate")

KEY = "queue-schema-test-key"


def _owner(url: str) -> str:
    return url.replace(f"{APP}@", f"{OWNER}@", 1)


def _migrate(url: str) -> str:
    out = CliRunner(env={"ROP_APP_SECRET_KEY": KEY}).invoke(
        cli, ["migrate", "--db", _owner(url), "--app-role", APP]
    )
    assert out.exit_code == 0, out.output
    return out.output


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(_owner(url), autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def shape(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """What the workers depend on: procrastinate's tables, types, functions, indexes, triggers."""
    return {
        "columns": _query(
            url,
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name LIKE 'procrastinate%' ORDER BY 1, 2",
        ),
        "enums": _query(
            url,
            "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
            "WHERE t.typname LIKE 'procrastinate%' ORDER BY 1, 2",
        ),
        "functions": _query(
            url,
            "SELECT proname, pg_get_function_identity_arguments(oid), "
            "pg_get_function_result(oid) FROM pg_proc "
            "WHERE proname LIKE 'procrastinate%' ORDER BY 1, 2",
        ),
        "indexes": _query(
            url,
            "SELECT tablename, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' AND tablename LIKE 'procrastinate%' ORDER BY 1, 2",
        ),
        "triggers": _query(
            url,
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
            "WHERE NOT tgisinternal AND tgname LIKE 'procrastinate%' ORDER BY 1, 2",
        ),
    }


def _queue_sync(url: str) -> None:
    """The application role queues a sync: the upgraded queue's functions and grants work."""
    out = CliRunner(env={"ROP_APP_SECRET_KEY": KEY}).invoke(
        cli, ["sync", "--queue", "--db", url, "--webhook", "https://a.example/rest/1/tok/"]
    )
    assert out.exit_code == 0, out.output
    assert _query(url, "SELECT args->>'portal', status::text FROM procrastinate_jobs") == [
        ("a.example", "todo")
    ]


def test_an_old_queue_is_upgraded_file_by_file_to_a_new_ones_schema(pg_cluster: Cluster):
    from rop.jobs.queue_schema import TABLE, migration_files

    files = migration_files()
    fresh = migrated_database(pg_cluster)
    assert "job queue was created" in _migrate(fresh)
    assert _query(fresh, f"SELECT count(*) FROM {TABLE}") == [(len(files),)]  # noqa: S608

    # The queue as procrastinate's first release created it, recorded as such.
    old = migrated_database(pg_cluster)
    initial = files[0]
    assert initial.name.startswith("00.00.00_01")
    import psycopg

    with psycopg.connect(_owner(old), autocommit=True) as conn:
        conn.execute(initial.read_text(encoding="utf-8"))
        conn.execute(f"CREATE TABLE {TABLE} (name TEXT PRIMARY KEY, applied_at TIMESTAMP)")
        conn.execute(f"INSERT INTO {TABLE} VALUES (%s, now())", [initial.name])  # noqa: S608
    assert shape(old) != shape(fresh)

    out = _migrate(old)
    assert "job queue upgraded" in out and files[-1].name in out
    assert shape(old) == shape(fresh)
    assert {r[0] for r in _query(old, f"SELECT name FROM {TABLE}")} == {f.name for f in files}  # noqa: S608
    # Idempotent: nothing more to apply, nothing said about the queue.
    again = _migrate(old)
    assert "job queue" not in again and "none needed" in again
    assert shape(old) == shape(fresh)
    _queue_sync(old)


def test_a_queue_from_before_the_record_is_taken_as_current(pg_cluster: Cluster):
    """rop created queues from procrastinate's schema.sql (3.5+) without recording files."""
    import psycopg
    from procrastinate.schema import SchemaManager

    from rop.jobs.queue_schema import BASELINE, TABLE, migration_files

    url = migrated_database(pg_cluster)
    with psycopg.connect(_owner(url), autocommit=True) as conn:
        conn.execute(SchemaManager.get_schema())
    before = shape(url)
    out = _migrate(url)
    assert "job queue" not in out  # nothing created, nothing applied
    recorded = {r[0] for r in _query(url, f"SELECT name FROM {TABLE}")}  # noqa: S608
    assert recorded == {f.name for f in migration_files() if f.name <= BASELINE}
    assert BASELINE in recorded
    assert shape(url) == before
    _queue_sync(url)
