"""The store: one interface over DuckDB (a file) and PostgreSQL (a URL), migrations, upsert."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from rop.store.dialect import DUCKDB, Dialect
from rop.store.facts import mark_deleted, mark_upserted
from rop.store.memo import Generation, for_file, writes
from rop.store.migrations import MIGRATIONS

Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says why."""


class StoreOverloaded(StoreError):
    """A query needed more memory than the store may use (``ROP_DB_MEMORY_LIMIT``).

    Nothing is wrong with the data or the request: the same query succeeds
    when fewer run at once, so the web answers 503 with Retry-After, not 500.
    """


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


# What a query past the memory limit tells to do (a server's reports; see bound()).
SERVER_LIMIT_HINT = "try again in a moment, choose a shorter period, or raise ROP_DB_MEMORY_LIMIT"


@contextlib.contextmanager
def _io_guard(path: str, hint: str = SERVER_LIMIT_HINT) -> Iterator[None]:
    """Turn DuckDB's I/O failures into StoreError; other errors pass unchanged."""
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreOverloaded(
            f"the store {path} ran out of its memory limit for this query ({first}); {hint}"
        ) from None
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
    "TIMESTAMP[]": pa.list_(pa.timestamp("us")),  # a record's movements (stored facts)
}


# The in-memory database DuckDB's metrics cache attaches (rop.metrics.cache).
SCRATCH_DB = "rop_cache"


class TableSpec:
    """Columns, their Arrow types, SQL types and the primary key of one table, from the schema."""

    def __init__(
        self,
        columns: dict[str, pa.DataType],
        key: tuple[str, ...],
        types: dict[str, str] | None = None,
    ) -> None:
        self.columns = columns
        self.key = key
        self.types = types or {}


class Store:
    """What every engine's store offers; build one with :func:`open_store`.

    SQL is written once, in the subset DuckDB and PostgreSQL share, with
    ``$name`` or ``?`` parameters; ``dialect`` spells the rest.
    """

    dialect: Dialect = DUCKDB

    def __init__(self, conn: Any, path: str) -> None:
        self.conn = conn
        self.path = path
        self.portal: str | None = None
        self._specs: dict[str, TableSpec] = {}
        # Writes mark the records whose stored facts they change (rop.store.facts);
        # a writer that rebuilds the facts whole anyway may turn this off.
        self.marking = True
        # Lookups remembered until the next write (rop.store.memo); None: the
        # engine has writers in other processes, so nothing is remembered.
        self.generation: Generation | None = None

    @contextlib.contextmanager
    def unmarked(self) -> Iterator[None]:
        """Writes inside leave no fact marks: the caller rebuilds the facts whole after."""
        self.marking = False
        try:
            yield
        finally:
            self.marking = True

    # -- engine hooks ----------------------------------------------------
    def _fetch(self, sql: str, params: Params) -> tuple[list[str], list[tuple]]:
        raise NotImplementedError

    def _spec(self, name: str) -> TableSpec | None:
        raise NotImplementedError

    @contextlib.contextmanager
    def staged(self, name: str, spec: TableSpec, data: dict[str, list[Any]]) -> Iterator[None]:
        """``data`` (columns of ``spec``'s types) readable as the relation ``name`` meanwhile."""
        raise NotImplementedError
        yield  # pragma: no cover

    def use_portal(self, portal: str) -> None:
        """From now on this handle works for ``portal``.

        DuckDB keeps every portal readable (one file, one owner); PostgreSQL
        sets the session's ``app.portal`` so row-level security hides the
        other portals' rows from a query that forgets its portal.
        """
        self.portal = portal

    def refresh(self) -> None:
        """A report starts: PostgreSQL reads the data version of this handle's
        portal again (what its remembered lookups are keyed by, rop.store.memo);
        DuckDB's memo is forgotten at each write already: nothing to do."""

    def data_version(self, portal: str | None = None) -> int | None:
        """A count every committed write to ``portal``'s data moves (None: any
        portal's), where the engine keeps one (PostgreSQL, rop.store.pg_versions);
        None where it does not (DuckDB)."""
        return None

    def table(self, name: str) -> TableSpec:
        """The table's columns and key, read once from the live schema."""
        spec = self._specs.get(name)
        if spec is None:
            found = self._spec(name)
            if found is None:
                raise StoreError(f"no table {name!r} in the store")
            spec = self._specs[name] = found
        return spec

    # -- reading ---------------------------------------------------------
    def query(self, sql: str, params: Params = ()) -> list[tuple]:
        return self._fetch(sql, params)[1]

    def query_dicts(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        cols, rows = self._fetch(sql, params)
        return [dict(zip(cols, row, strict=True)) for row in rows]

    def scalar(self, sql: str, params: Params = ()) -> Any:
        rows = self._fetch(sql, params)[1]
        return rows[0][0] if rows else None

    def query_batch(
        self, statements: Sequence[tuple[str, Params]]
    ) -> list[tuple[list[str], list[tuple]]]:
        """Independent reads, each one's column names and rows, in order. DuckDB
        runs them one after the other; PostgreSQL sends them together (its pipeline)."""
        return [self._fetch(sql, params) for sql, params in statements]

    def query_chunks(self, sql: str, params: Params, size: int) -> Iterator[list[dict[str, Any]]]:
        """``sql``'s rows as dicts, ``size`` at a time, from one statement (one
        consistent read): a long list (a drill-down export) never held whole.
        This fallback reads every row first; each engine streams them."""
        cols, rows = self._fetch(sql, params)
        for start in range(0, len(rows), size):
            yield [dict(zip(cols, row, strict=True)) for row in rows[start : start + size]]

    def query_arrow(self, sql: str, params: Params, schema: Any) -> Any:
        """``sql``'s rows as a ``pyarrow.Table`` of ``schema`` (its columns in the
        statement's order): a few hundred thousand rows kept in memory without a
        Python object per value (rop.metrics.rollup_memory)."""
        import pyarrow as pa

        cols, rows = self._fetch(sql, params)
        return pa.table(
            [pa.array([r[i] for r in rows], schema.field(i).type) for i in range(len(cols))],
            schema=schema,
        )

    def remember(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()``, remembered until the data changes where the engine allows
        it (rop.store.memo); the value is shared: callers must not change it."""
        if self.generation is None:
            return compute()
        return self.generation.remember(key, compute)

    def query_remembered(self, sql: str, params: Params = ()) -> list[tuple]:
        """``query`` of a small lookup, remembered until the data changes."""
        key = ("query", sql, repr(params))
        return list(self.remember(key, lambda: tuple(self.query(sql, params))))

    # -- writing ---------------------------------------------------------
    def execute(self, sql: str, params: Params = ()) -> None:
        """Run a statement and drain its result (DuckDB wants results consumed)."""
        self._fetch(sql, params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: on any exception the store stays as it was."""
        self.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def upsert(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        """Insert or replace many rows at once, keyed by the table's primary key.

        Rows are dicts with the table's column names; missing columns are NULL.
        Within one call the last row for a key wins. Returns the rows written.
        The rows are staged as one relation (Arrow on DuckDB, COPY into a
        temporary table on PostgreSQL) and merged by one statement.
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
        cols = ", ".join(spec.columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in spec.columns if c not in spec.key)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        mark = mark_upserted(table, list(spec.columns), spec.key) if self.marking else None
        with self.staged("_rop_batch", spec, columns):
            if mark:  # first: it compares the batch with the rows it replaces
                self.execute(mark)
            self.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _rop_batch "  # noqa: S608
                f"ON CONFLICT ({', '.join(spec.key)}) {conflict}"
            )
        return len(unique)

    def delete_ids(self, table: str, portal: str, ids: Sequence[int]) -> int:
        """Delete the rows of ``portal`` whose ``id`` is in ``ids``; returns how many."""
        raise NotImplementedError

    def scratch_key(self) -> tuple:
        """What the metrics cache's tables are shared by (rop.metrics.cache)."""
        raise NotImplementedError

    def scratch_create(self, table: str, sql: str, params: dict[str, Any]) -> str:
        raise NotImplementedError

    def scratch_exists(self, table: str) -> bool:
        raise NotImplementedError

    def scratch_drop(self, table: str) -> None:
        raise NotImplementedError

    def cursor(self) -> Store:
        """Another handle on the same database for another thread."""
        raise NotImplementedError

    def bound(self, memory_limit: str, threads: int = 0, hint: str = "") -> None:
        """Bound the engine's memory and threads (a server's settings); PostgreSQL
        is bounded by its own server's configuration, so nothing to do there."""

    @contextlib.contextmanager
    def narrowed(self, share: float) -> Iterator[None]:
        """Inside, the engine's memory limit is ``share`` of its bound; the bound
        comes back after. Nothing where there is no bound (or no pool of ours:
        PostgreSQL)."""
        yield

    def reopen(self) -> None:
        """Close the connection and open the store again, bound as before: what
        the engine kept beside its pool goes with the old connection. Only for a
        handle that is the process's one (no cursors of it open); nothing on
        PostgreSQL (its memory is the server's)."""

    def analyze(self, first: bool = False) -> list[str]:
        """Planner statistics after a bulk write, where the engine needs them and
        this connection may take them; returns the tables analysed. ``first``:
        only tables that have rows but no statistics of them yet (a copy under
        way: once, not at each batch). DuckDB keeps its own as it writes:
        nothing to do."""
        return []

    def interrupt(self) -> None:
        """Stop the statement this handle runs now (it raises in its thread), from
        another thread; nothing when it runs none. A server's warm-up gives its
        build slot to a viewer this way (rop.web.builds). Nothing on PostgreSQL:
        a piece of warm-up there runs to its end."""

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckStore(Store):
    """A DuckDB store file."""

    dialect = DUCKDB

    def __init__(self, conn: Any, path: str, generation: Generation | None = None) -> None:
        super().__init__(conn, path)
        # Every write of this process to the file passes through a handle like
        # this one, and the file's lock keeps other processes from writing.
        self._generation = generation or for_file(path)
        self.generation = self._generation
        self.limit_hint = SERVER_LIMIT_HINT
        # The memory limit :meth:`bound` set, in bytes (None: DuckDB's default).
        self.limit_bytes: int | None = None
        self._bound_args: tuple[str, int, str] | None = None

    # Every statement runs under _io_guard: a damaged file or a full disk is
    # a StoreError naming the file, wherever it shows.
    def _fetch(self, sql: str, params: Params) -> tuple[list[str], list[tuple]]:
        try:
            with _io_guard(self.path, self.limit_hint):
                cur = self.conn.execute(sql, params)
                cols = [d[0] for d in cur.description or []]
                return cols, cur.fetchall()
        finally:
            if writes(sql):  # after it ran (or failed half-way): forget
                self._generation.bump()

    def query_chunks(self, sql: str, params: Params, size: int) -> Iterator[list[dict[str, Any]]]:
        # One statement is one snapshot (MVCC): a sync committing meanwhile is
        # not seen. DuckDB streams the result: fetchmany holds one chunk here.
        with _io_guard(self.path, self.limit_hint):
            cur = self.conn.execute(sql, params)
            cols = [d[0] for d in cur.description or []]
        while True:
            with _io_guard(self.path, self.limit_hint):
                rows = cur.fetchmany(size)
            if not rows:
                return
            yield [dict(zip(cols, row, strict=True)) for row in rows]

    def query_arrow(self, sql: str, params: Params, schema: Any) -> Any:
        # DuckDB hands its columns over as Arrow directly: no Python row at all.
        with _io_guard(self.path, self.limit_hint):
            rel = self.conn.sql(sql, params=params)
            # DuckDB 2 names it to_arrow_table, 1.x arrow (a Table there).
            table = (getattr(rel, "to_arrow_table", None) or rel.arrow)()
        return table.rename_columns(schema.names).cast(schema)

    def interrupt(self) -> None:
        # DuckDB drops an interrupt that finds no statement running.
        self.conn.interrupt()

    def _scratch(self, sql: str, params: Params = ()) -> None:
        """A statement on the metrics cache's own tables: the data stays as it was."""
        with _io_guard(self.path, self.limit_hint):
            self.conn.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self._generation.begin()
        try:
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
        finally:
            self._generation.end()

    def _spec(self, name: str) -> TableSpec | None:
        cols = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [name],
        )
        if not cols:
            return None
        keys = self.query(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
            [name],
        )
        return TableSpec(
            {c: _ARROW_TYPES[t] for c, t in cols},
            tuple(keys[0][0]) if keys else (),
            dict(cols),
        )

    @contextlib.contextmanager
    def staged(self, name: str, spec: TableSpec, data: dict[str, list[Any]]) -> Iterator[None]:
        batch = pa.table({c: pa.array(v, type=spec.columns[c]) for c, v in data.items()})
        self.conn.register(name, batch)
        try:
            yield
        finally:
            # In a transaction a failed statement aborted (past the memory
            # limit), unregistering fails too; that error would hide the first.
            with contextlib.suppress(duckdb.TransactionException):
                self.conn.unregister(name)

    def delete_ids(self, table: str, portal: str, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        batch = pa.table({"id": pa.array(list(ids), type=pa.int64())})
        self.conn.register("_rop_ids", batch)
        try:
            mark = mark_deleted(table, "_rop_ids") if self.marking else None
            if mark:
                self.execute(mark, [portal])
            # DuckDB answers a DELETE with the number of rows it removed.
            removed = self.scalar(
                f"DELETE FROM {table} WHERE portal = ? AND id IN (SELECT id FROM _rop_ids)",  # noqa: S608
                [portal],
            )
        finally:
            self.conn.unregister("_rop_ids")
        return int(removed or 0)

    def bound(self, memory_limit: str, threads: int = 0, hint: str = SERVER_LIMIT_HINT) -> None:
        # One DuckDB instance serves every cursor: the bounds are the instance's.
        # ``hint``: what a query past the limit tells to do (names the setting).
        self.limit_hint = hint
        self._bound_args = (memory_limit, threads, hint)
        # The limit covers the buffer pool, the metrics cache's attached
        # in-memory tables included; a query past it spills to a temporary file.
        self.execute(f"SET memory_limit = '{_memory(memory_limit)}'")
        self.limit_bytes = _bytes(memory_limit)
        # DuckDB's allocator keeps up to this much freed memory after a task,
        # outside the limit: 128 MB by default, most of a small limit again
        # (a sync's). An eighth of the limit, returned by a background thread.
        flush = min(max(_bytes(memory_limit) // 8, 4 << 20), 128 << 20)
        self.execute(f"SET allocator_flush_threshold = '{flush}B'")
        # And when a query frees a large block of memory at once (a hash table,
        # a sort), its pages go back to the system then, not to the allocator's
        # own reserve (512 MB by default: never, under a sync's bound).
        self.execute(f"SET allocator_bulk_deallocation_flush_threshold = '{flush}B'")
        self.execute("SET allocator_background_threads = true")
        self.execute(f"SET threads = {int(threads) or (os.cpu_count() or 1)}")

    @contextlib.contextmanager
    def narrowed(self, share: float) -> Iterator[None]:
        bound = self.limit_bytes
        lowered = False
        if bound is not None and share < 1:
            # Best effort: DuckDB refuses a limit below what it cannot evict
            # (another cursor's running query); the bound then stays as it was.
            with contextlib.suppress(StoreError, duckdb.Error):
                self.execute(f"SET memory_limit = '{int(bound * share)}B'")
                lowered = True
        try:
            yield
        finally:
            if lowered:
                self.execute(f"SET memory_limit = '{bound}B'")

    def reopen(self) -> None:
        with _io_guard(self.path):
            self.conn.close()
            self.conn = _connect(self.path)
        if self._bound_args is not None:
            self.bound(*self._bound_args)

    # -- the metrics cache: an in-memory database attached to this instance --
    # Every cursor of the instance (the web serves each thread its own) sees
    # the same tables, and it is writable even when the file is read-only.
    def scratch_key(self) -> tuple:
        """What the cache's tables are shared by: the whole DuckDB instance."""
        return (self.path,)

    def scratch_create(self, table: str, sql: str, params: dict[str, Any]) -> str:
        """Compute ``sql`` into a cache table; returns the name to read it by."""
        self._scratch(f"ATTACH IF NOT EXISTS ':memory:' AS {SCRATCH_DB} (READ_ONLY false)")
        self._scratch(f"CREATE TABLE {SCRATCH_DB}.{table} AS {sql}", params)
        return f"{SCRATCH_DB}.{table}"

    def scratch_exists(self, table: str) -> bool:
        return bool(
            self.scalar(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
                [SCRATCH_DB, table],
            )
        )

    def scratch_drop(self, table: str) -> None:
        if self.scalar(
            "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [SCRATCH_DB]
        ):
            self._scratch(f"DROP TABLE IF EXISTS {SCRATCH_DB}.{table}")

    def cursor(self) -> Store:
        """Another handle on the same database for another thread (DuckDB MVCC)."""
        twin = DuckStore(self.conn.cursor(), self.path, self._generation)
        twin._specs = self._specs
        twin.portal = self.portal
        twin.limit_hint = self.limit_hint
        twin.limit_bytes = self.limit_bytes
        return twin


_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip


def _bytes(text: str) -> int:
    """``1GB`` or ``512 MiB`` (the settings' form) in bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", text, re.IGNORECASE)
    if not found:
        raise ValueError(f"not a size: {text!r}")
    return int(float(found.group(1)) * _UNITS[found.group(2).upper()])


def _memory(text: str) -> str:
    """A size like ``1GB`` or ``512 MiB`` (settings check the form), spelled for SET."""
    return "".join(text.split())


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


def is_url(target: str | Path) -> bool:
    """A PostgreSQL URL (server mode) rather than a DuckDB file path."""
    return str(target).startswith(("postgresql://", "postgres://"))


def _connect(target: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection as every store handle has it (the open's and a reopen's)."""
    # No extension downloads: given a SQLite or other foreign file, DuckDB
    # would otherwise fetch a reader from the internet to open it.
    conn = duckdb.connect(
        target, read_only=read_only, config={"autoinstall_known_extensions": False}
    )
    # Timestamps are UTC by convention; pin the session so DuckDB never
    # converts them to the machine's zone.
    with contextlib.suppress(duckdb.Error):
        conn.execute("SET TimeZone = 'UTC'")
    return conn


def open_store(path: str | Path, read_only: bool = False) -> Store:
    """Open (creating if needed) the store and bring its schema up to date.

    A ``postgresql://`` URL opens the PostgreSQL store (rop.store.postgres).

    ``":memory:"`` gives a throwaway in-memory store for tests.
    """
    target = str(path)
    if is_url(target):
        from rop.store.postgres import open_pg_store

        return open_pg_store(target, read_only=read_only)
    try:
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(target, read_only)
    except OSError as exc:
        raise StoreError(f"cannot open store {target}: {exc.strerror} ({exc.filename})") from None
    except duckdb.Error as exc:
        problem = io_problem(target, exc)
        if problem is not None:
            raise problem from None
        raise StoreError(f"cannot open store {target}: {_open_problem(exc)}") from None
    try:
        with _io_guard(target):
            _bring_up_to_date(conn, target, read_only)
    except BaseException:
        conn.close()
        raise
    store = DuckStore(conn, target)
    # Another process may have written the file since this process last had it open.
    store._generation.bump()
    return store


def _bring_up_to_date(conn: duckdb.DuckDBPyConnection, target: str, read_only: bool) -> None:
    if read_only:
        missing = {m[0] for m in MIGRATIONS} - _recorded(conn, target)
        if missing:
            raise StoreError(
                f"the store {target} needs schema upgrades {sorted(missing)}: "
                "open it once for writing (any rop command but a read-only one)"
            )
    else:
        # The schema only: a store whose stored facts lag (another FACTS_VERSION)
        # gets them from `rop migrate` or the next sync, under the sync's memory
        # bound (rop.store.facts.ensure_facts); its reports compute in memory until then.
        migrate(conn, target)
