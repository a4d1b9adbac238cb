"""The workers' job queue schema (procrastinate's) in the store's database, kept current.

procrastinate ships its schema (``schema.sql``, for a new database) and one
SQL file per change (``sql/migrations``, named ``xx.yy.zz_ab_[pre|post]_...``),
and leaves keeping track of which files a database has had to its users
(procrastinate's "Migrate the Procrastinate schema" how-to). ``rop migrate``
does it here, in the table ``queue_migrations``:

- a database without the queue gets ``schema.sql``, and every migration file
  of the installed procrastinate is recorded as applied (the schema already
  holds them);
- a database with the queue gets each file it has not had, in name order (the
  version, then the serial number: a version's ``pre`` files before its
  ``post`` files), each in its own transaction with its record, so a failure
  leaves the files before it applied and recorded and the run can be repeated;
- a queue created by an earlier rop (before this table) was created by
  procrastinate 3.5 or later, whose ``schema.sql`` holds every file up to
  ``BASELINE``: those are recorded, the later ones applied.

Run it with the workers stopped (procrastinate's "with service interruption"
way): the files of several versions are applied in one go.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("rop.jobs")

TABLE = "queue_migrations"
# The last migration file of procrastinate 3.5-3.10 (the versions rop created
# queues with before it recorded them): those queues hold every file up to it.
BASELINE = "03.04.00_50_post_add_retry_failed_job_procedure.sql"


def migration_files() -> list[Path]:
    """procrastinate's migration files, in the order they apply."""
    from procrastinate.schema import SchemaManager

    return sorted(Path(SchemaManager.get_migrations_path()).glob("*.sql"), key=lambda p: p.name)


def _record(conn: Any, names: list[str]) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {TABLE} (name, applied_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",  # noqa: S608
            [(name, now) for name in names],
        )


def _applied(conn: Any) -> set[str]:
    return {r[0] for r in conn.execute(f"SELECT name FROM {TABLE}").fetchall()}  # noqa: S608


def upgrade_queue(conn: Any) -> tuple[bool, list[str]]:
    """Create the queue or apply the migration files it lacks (as the owner).

    Returns (created now, the files applied now). Idempotent: a current queue
    gets nothing. ``conn`` is a psycopg connection in autocommit mode.
    """
    from procrastinate.schema import SchemaManager

    files = migration_files()
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied_at TIMESTAMP)"
    )
    row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NULL").fetchone()
    if row and row[0]:
        with conn.transaction():
            conn.execute(SchemaManager.get_schema())
            _record(conn, [f.name for f in files])
        return True, []
    done = _applied(conn)
    if not done:
        # A queue from before this table: procrastinate 3.5+ made it.
        _record(conn, [f.name for f in files if f.name <= BASELINE])
        done = _applied(conn)
    applied = []
    for path in files:
        if path.name in done:
            continue
        with conn.transaction():
            conn.execute(path.read_text(encoding="utf-8"))
            _record(conn, [path.name])
        log.info("applied procrastinate migration %s", path.name)
        applied.append(path.name)
    return False, applied


def install_queue(conn: Any, app_role: str | None = None) -> tuple[bool, list[str]]:
    """The queue created or brought up to date, then granted to ``app_role``.

    Returns what :func:`upgrade_queue` did. Called by ``rop migrate``.
    """
    from psycopg import sql

    result = upgrade_queue(conn)
    if app_role:
        who = sql.Identifier(app_role)
        conn.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(who)
        )
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(who)
        )
        # Schema records are the owner's to write.
        for table in ("schema_migrations", TABLE):
            conn.execute(
                sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM {}").format(
                    sql.Identifier(table), who
                )
            )
    return result
