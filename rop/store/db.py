"""DuckDB connection, migrations and the one write path: bulk upsert."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from rop.store.migrations import MIGRATIONS


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says why."""


# DuckDB column types -> Arrow types for the upsert staging batch.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DATE": pa.date32(),
}


class TableSpec:
    """Columns, their Arrow types and the primary key of one table, read from the schema."""

    def __init__(self, columns: dict[str, pa.DataType], key: tuple[str, ...]) -> None:
        self.columns = columns
        self.key = key


class Store:
    """A DuckDB store file. Build one with :func:`open_store`."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: str) -> None:
        self.conn = conn
        self.path = path
        self._specs: dict[str, TableSpec] = {}

    def table(self, name: str) -> TableSpec:
        """The table's columns and key, read once from the live schema."""
        spec = self._specs.get(name)
        if spec is None:
            cols = self.query(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [name],
            )
            if not cols:
                raise StoreError(f"no table {name!r} in the store")
            keys = self.query(
                "SELECT constraint_column_names FROM duckdb_constraints() "
                "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
                [name],
            )
            spec = TableSpec(
                {c: _ARROW_TYPES[t] for c, t in cols},
                tuple(keys[0][0]) if keys else (),
            )
            self._specs[name] = spec
        return spec

    # -- reading ---------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def query_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        cols = [d[0] for d in cur.description or []]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        rows = self.conn.execute(sql, params).fetchall()
        return rows[0][0] if rows else None

    # -- writing ---------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> None:
        """Run a statement and drain its result (DuckDB wants results consumed)."""
        self.conn.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: on any exception the store stays as it was."""
        self.conn.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def upsert(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        """Insert or replace many rows at once, keyed by the table's primary key.

        Rows are dicts with the table's column names; missing columns are NULL.
        Within one call the last row for a key wins. Returns the rows written.
        """
        if not rows:
            return 0
        spec = self.table(table)
        # Rows of one call come from one builder; a misspelt column in the
        # first row would otherwise be dropped silently from every row.
        unknown = rows[0].keys() - spec.columns.keys()
        if unknown:
            raise StoreError(f"no column {', '.join(sorted(unknown))} in table {table!r}")
        unique: dict[tuple, dict[str, Any]] = {}
        for row in rows:
            unique[tuple(row[k] for k in spec.key)] = row
        columns = {c: [r.get(c) for r in unique.values()] for c in spec.columns}
        batch = pa.table({c: pa.array(v, type=spec.columns[c]) for c, v in columns.items()})
        cols = ", ".join(spec.columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in spec.columns if c not in spec.key)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        self.conn.register("_rop_batch", batch)
        try:
            self.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _rop_batch "  # noqa: S608
                f"ON CONFLICT ({', '.join(spec.key)}) {conflict}"
            )
        finally:
            self.conn.unregister("_rop_batch")
        return len(unique)

    def delete_ids(self, table: str, portal: str, ids: Sequence[int]) -> int:
        """Delete the rows of ``portal`` whose ``id`` is in ``ids``."""
        if not ids:
            return 0
        batch = pa.table({"id": pa.array(list(ids), type=pa.int64())})
        self.conn.register("_rop_ids", batch)
        try:
            # DuckDB answers a DELETE with the number of rows it removed.
            removed = self.scalar(
                f"DELETE FROM {table} WHERE portal = ? AND id IN (SELECT id FROM _rop_ids)",  # noqa: S608
                [portal],
            )
        finally:
            self.conn.unregister("_rop_ids")
        return int(removed or 0)

    def cursor(self) -> Store:
        """Another handle on the same database for another thread (DuckDB MVCC)."""
        twin = Store(self.conn.cursor(), self.path)
        twin._specs = self._specs
        return twin

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _recorded(conn: duckdb.DuckDBPyConnection, target: str) -> set[int]:
    """The migration versions the store has; refuses a store from a newer rop."""
    has_table = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchall()[0][0]
    if not has_table:
        return set()
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    known = {m[0] for m in MIGRATIONS}
    if done - known:
        # Its tables may hold columns this code would drop or misread.
        raise StoreError(
            f"the store {target} has schema version {max(done)}, newer than this rop "
            f"knows ({max(known)}): upgrade rop-report"
        )
    return done


def migrate(conn: duckdb.DuckDBPyConnection, target: str = "the store") -> list[int]:
    """Apply the migrations not yet recorded; returns the versions applied."""
    done = _recorded(conn, target)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT, applied_at TIMESTAMP)"
    )
    applied = []
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(sql)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [version, name, datetime.now(UTC).replace(tzinfo=None)],
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(version)
    return applied


def _open_problem(exc: duckdb.Error) -> str:
    text = str(exc)
    if "extension" in text.lower() and "not found" in text.lower():
        # DuckDB recognised a foreign format (SQLite, ...) and wants a reader for it.
        return "not a DuckDB database file"
    return text.splitlines()[0] if text else type(exc).__name__


def open_store(path: str | Path, read_only: bool = False) -> Store:
    """Open (creating if needed) the store file and bring its schema up to date.

    ``":memory:"`` gives a throwaway in-memory store for tests.
    """
    target = str(path)
    try:
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        # No extension downloads: given a SQLite or other foreign file, DuckDB
        # would otherwise fetch a reader from the internet to open it.
        conn = duckdb.connect(
            target, read_only=read_only, config={"autoinstall_known_extensions": False}
        )
    except OSError as exc:
        raise StoreError(f"cannot open store {target}: {exc.strerror} ({exc.filename})") from None
    except duckdb.Error as exc:
        raise StoreError(f"cannot open store {target}: {_open_problem(exc)}") from None
    # Timestamps are UTC by convention; pin the session so DuckDB never
    # converts them to the machine's zone.
    with contextlib.suppress(duckdb.Error):
        conn.execute("SET TimeZone = 'UTC'")
    try:
        if read_only:
            missing = {m[0] for m in MIGRATIONS} - _recorded(conn, target)
            if missing:
                raise StoreError(
                    f"the store {target} needs schema upgrades {sorted(missing)}: "
                    "open it once for writing (any rop command but a read-only one)"
                )
        else:
            migrate(conn, target)
    except BaseException:
        conn.close()
        raise
    return Store(conn, target)
