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


def io_problem(path: str, exc: BaseException) -> StoreError | None:
    """DuckDB's I/O failures as one line naming the file and what to do; None for others.

    A full disk fails a write (often the commit: the store keeps every batch
    committed before, so the next run carries on); a file cut short or
    damaged fails a read wherever it happens, even at open.
    """
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    low = text.lower()
    if "lock" in low and ("conflicting" in low or "could not set" in low):
        return None  # another process holds the file: the caller says which
    if "not a valid duckdb database" in low or "extension" in low:
        return None  # a foreign file: the caller names it
    if "no space left" in low or "disk is full" in low or "disk full" in low:
        return StoreError(
            f"cannot write the store {path}: the disk is full; free some space and run "
            "the command again (the store keeps everything written before)"
        )
    if "could not write" in low or "could not truncate" in low or "could not fsync" in low:
        return StoreError(
            f"cannot write the store {path}: {first}; fix the file or the disk and run "
            "the command again (the store keeps everything written before)"
        )
    if "invalidated" in low:
        return StoreError(
            f"the store {path} stopped after an earlier write error ({first}); "
            "run the command again"
        )
    if isinstance(exc, duckdb.IOException) or "could not read" in low or "corrupt" in low:
        return StoreError(
            f"cannot read the store {path}: the file is damaged or cut short ({first}); "
            "restore it from a backup, or move it away and run `rop sync` to copy "
            "the portal again"
        )
    return None


@contextlib.contextmanager
def _io_guard(path: str) -> Iterator[None]:
    """Turn DuckDB's I/O failures into StoreError; other errors pass unchanged."""
    try:
        yield
    except duckdb.Error as exc:
        problem = io_problem(path, exc)
        if problem is None:
            raise
        raise problem from None


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
    # Every statement runs under _io_guard: a damaged file or a full disk is
    # a StoreError naming the file, wherever it shows.
    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        with _io_guard(self.path):
            return self.conn.execute(sql, params).fetchall()

    def query_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        with _io_guard(self.path):
            cur = self.conn.execute(sql, params)
            cols = [d[0] for d in cur.description or []]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        with _io_guard(self.path):
            rows = self.conn.execute(sql, params).fetchall()
        return rows[0][0] if rows else None

    # -- writing ---------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> None:
        """Run a statement and drain its result (DuckDB wants results consumed)."""
        with _io_guard(self.path):
            self.conn.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: on any exception the store stays as it was."""
        self.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            # After a failed write DuckDB may have ended the transaction itself.
            with contextlib.suppress(duckdb.Error):
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.execute("COMMIT")
        except StoreError:
            # A commit that failed (a full disk) leaves nothing half-written.
            with contextlib.suppress(duckdb.Error):
                self.conn.execute("ROLLBACK")
            raise

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
        problem = io_problem(target, exc)
        if problem is not None:
            raise problem from None
        raise StoreError(f"cannot open store {target}: {_open_problem(exc)}") from None
    # Timestamps are UTC by convention; pin the session so DuckDB never
    # converts them to the machine's zone.
    with contextlib.suppress(duckdb.Error):
        conn.execute("SET TimeZone = 'UTC'")
    try:
        with _io_guard(target):
            _bring_up_to_date(conn, target, read_only)
    except BaseException:
        conn.close()
        raise
    return Store(conn, target)


def _bring_up_to_date(conn: duckdb.DuckDBPyConnection, target: str, read_only: bool) -> None:
    if read_only:
        missing = {m[0] for m in MIGRATIONS} - _recorded(conn, target)
        if missing:
            raise StoreError(
                f"the store {target} needs schema upgrades {sorted(missing)}: "
                "open it once for writing (any rop command but a read-only one)"
            )
    else:
        migrate(conn, target)
