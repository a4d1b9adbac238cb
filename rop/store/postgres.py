"""The PostgreSQL store (server mode): the same tables, migrations and SQL as DuckDB.

Connections come from a psycopg pool; each is in autocommit mode with the
session's zone pinned to UTC (timestamps are UTC by convention), and
``numeric`` results come back as Python ``int`` or ``float`` as DuckDB gives
them (``sum`` of integers, ``avg``, ``EXTRACT(EPOCH ...)``), so the report's
JSON is the same on both engines.

Two roles (docs/SERVER.md): the owner runs ``rop migrate`` (tables, policies,
grants); the application connects as another role, so row-level security
applies to it: every table with a ``portal`` column shows only the rows of
the session's ``app.portal`` (set by :meth:`PgStore.use_portal`), and a query
that forgets its portal finds nothing of another portal's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from rop.store import pg_plans, pg_stats, pg_versions
from rop.store.db import Params, Store, StoreError, TableSpec
from rop.store.dialect import POSTGRES, to_pyformat
from rop.store.facts import mark_deleted
from rop.store.memo import Versions, for_database, writes
from rop.store.migrations import MIGRATIONS

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

T = TypeVar("T")

# PostgreSQL column types -> Arrow types (the spec's Arrow types are shared
# with DuckDB so callers see one TableSpec).
_ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "character varying": pa.string(),
    "timestamp without time zone": pa.timestamp("us"),
    "date": pa.date32(),
    "timestamp without time zone[]": pa.list_(pa.timestamp("us")),
}

# Tables with a ``portal`` column that are registries rather than a portal's
# data: which portal a request or an event is for is decided from them (the
# application mode finds its portal by member_id), so no portal is set yet.
SHARED_TABLES = frozenset(
    {"portals", "schema_migrations", "app_portals", "app_events_seen", "sync_sources"}
)
POLICY = "rop_portal_isolation"
# Indexes only PostgreSQL needs, made after the migrations (IF NOT EXISTS: each
# `rop migrate` adds what is missing). Its row store reads a whole table for a
# range test without one; DuckDB skips row groups by their min/max instead,
# and an index there would only slow its writes. A period's rollup rows, and
# the few records that may have moved in a period (rop.metrics.catalogue's
# ``bound`` of "moved"), are then read, not every row of the portal.
PG_INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS record_rollups_day ON record_rollups (portal, entity, kind, day)",
    "CREATE INDEX IF NOT EXISTS call_rollups_day ON call_rollups (portal, day)",
    # The client sections' flags: a period's days of one kind (rop.store.client_days).
    "CREATE INDEX IF NOT EXISTS client_days_day ON client_days (portal, kind, day)",
    # ... and a refresh replaces the rows of some clients.
    "CREATE INDEX IF NOT EXISTS client_days_id ON client_days (portal, kind, id)",
    # The client firsts: the same two (rop.store.client_firsts).
    "CREATE INDEX IF NOT EXISTS client_firsts_day ON client_firsts (portal, kind, day)",
    "CREATE INDEX IF NOT EXISTS client_firsts_id ON client_firsts (portal, kind, id)",
    # The client counts per manager and creation day: one kind's rows of one portal.
    "CREATE INDEX IF NOT EXISTS manager_clients_kind ON manager_clients (portal, kind)",
    "CREATE INDEX IF NOT EXISTS deal_facts_last_move ON deal_facts (portal, last_move)",
    "CREATE INDEX IF NOT EXISTS lead_facts_last_move ON lead_facts (portal, last_move)",
    # The client sections flag the clients with a deal created or won, or a
    # call, in the period: those deals and calls, not all of them (1.3 -> 0.85 s
    # of the contacts' query at 1M deals).
    "CREATE INDEX IF NOT EXISTS deal_facts_date_create ON deal_facts (portal, date_create)",
    "CREATE INDEX IF NOT EXISTS deal_facts_close_time ON deal_facts (portal, close_time)",
    # The new leads' drill-down pages (rop.report.drill): a period's leads by
    # creation, not a scan of every lead of the portal (326 ms at 500k leads).
    "CREATE INDEX IF NOT EXISTS lead_facts_date_create ON lead_facts (portal, date_create)",
    "CREATE INDEX IF NOT EXISTS call_facts_start ON call_facts (portal, call_start_date)",
    # The stage section reads the visits whose key moment ``k`` falls in or
    # after the period (rop.metrics.stages): a range, where DuckDB's sorted
    # table skips row groups; without it each of its queries scanned every
    # visit of the portal (and at 10k deals started two parallel workers for it).
    "CREATE INDEX IF NOT EXISTS deal_stage_visits_k ON deal_stage_visits (portal, k)",
    "CREATE INDEX IF NOT EXISTS lead_stage_visits_k ON lead_stage_visits (portal, k)",
    # The stage entries (rop.store.stage_entries): a refresh replaces some deals'
    # rows; the forecast finds the deals with history after its window.
    "CREATE INDEX IF NOT EXISTS deal_stage_entries_id ON deal_stage_entries (portal, id)",
    "CREATE INDEX IF NOT EXISTS deal_stage_entries_last ON deal_stage_entries (portal, last_at)",
)
# A version read this long ago is read again before the memo serves a value:
# a handle that does not pick its portal again (nothing but a report does) still
# sees another process's write within this time. A report re-reads it as it
# starts anyway (rop.report.portal.select_portal).
PIN_SECONDS = 1.0
# One lock id for migrations: two processes starting at once migrate once.
_MIGRATE_LOCK = 0x726F70  # "rop"


def _numeric_loader() -> type:
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        """``numeric`` -> int when integral in form (sums of integers), else float."""

        def load(self, data: Any) -> Any:
            # int() and float() read the ASCII bytes themselves (a report loads
            # about a thousand sums at 10k deals: no str in between).
            raw = bytes(data)
            if raw.lstrip(b"-").isdigit():
                return int(raw)
            return float(raw)

    return NumericLoader


def _configure(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("numeric", _numeric_loader())


def _reset(conn: psycopg.Connection) -> None:
    # A connection back in the pool serves no portal until the next use_portal
    # (which sets the portal's plan mode again: rop.store.pg_plans), and holds
    # no portal's lock (rop.store.portal_lock) for its next user.
    conn.execute(
        "SELECT set_config('app.portal', '', false), set_config('plan_cache_mode', 'auto', false), "
        "pg_advisory_unlock_all()"
    )


class PgStore(Store):
    """A PostgreSQL database (one schema) reached through a connection pool."""

    dialect = POSTGRES

    def __init__(
        self,
        pool: ConnectionPool,
        conn: psycopg.Connection,
        path: str,
        versions: Versions | None = None,
    ) -> None:
        super().__init__(conn, path)
        self.pool = pool
        self._root = True
        # The per-process memo of small lookups, keyed by each portal's data
        # version (rop.store.pg_versions); None until the triggers are there.
        self.versions = versions
        # (version, when read) for this handle's portal; None: read it again.
        self._pin: tuple[int, float] | None = None
        # Whether rop_analyze() is there for this role (rop.store.pg_stats); None: not asked.
        self._stats: bool | None = None

    # -- engine hooks ----------------------------------------------------
    def _fetch(self, sql: str, params: Params) -> tuple[list[str], list[tuple]]:
        try:
            with self._failures():
                cur = _execute(self.conn, sql, params)
        finally:
            if self._pin is not None and writes(sql):
                self._pin = None  # this handle wrote: the next lookup reads the version
        return _result(cur)

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """The server went away or refused (shutdown, network, disk): one line
        naming the store, as DuckDB's I/O failures are."""
        import psycopg

        try:
            yield
        except psycopg.OperationalError as exc:
            raise StoreError(f"the store {self.path} failed: {_first_line(exc)}") from None

    def query_chunks(self, sql: str, params: Params, size: int) -> Iterator[list[dict[str, Any]]]:
        """A server-side cursor in a transaction: one statement, one snapshot, and
        ``size`` rows come over the wire at a time (not the whole result)."""
        with self._failures(), self.conn.transaction():
            cur = self.conn.cursor(name="rop_chunks")
            try:
                cur.itersize = size
                _execute(cur, sql, params)
                cols = [d.name for d in cur.description or []]
                while rows := cur.fetchmany(size):
                    yield [dict(zip(cols, row, strict=True)) for row in rows]
            finally:
                cur.close()

    def query_batch(
        self, statements: Sequence[tuple[str, Params]]
    ) -> list[tuple[list[str], list[tuple]]]:
        """The reads sent in one pipeline (psycopg 3): one round trip for all of
        them, and the server runs each next statement while this process still
        reads the last one's rows (a report's figure statements, rop.report.build)."""
        if len(statements) < 2 or any(writes(sql) for sql, _ in statements):
            return super().query_batch(statements)
        conn = self.conn
        with self._failures():
            with conn.pipeline():
                cursors = [_execute(conn, sql, params) for sql, params in statements]
            return [_result(cur) for cur in cursors]

    def _spec(self, name: str) -> TableSpec | None:
        cols = self.query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            [name],
        )
        if not cols:
            return None
        keys = self.query(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass(?) AND i.indisprimary "
            "ORDER BY array_position(CAST(i.indkey AS int2[]), a.attnum)",
            [name],
        )
        return TableSpec(
            {c: _ARROW_TYPES[t] for c, t in cols},
            tuple(k for (k,) in keys),
            dict(cols),
        )

    @contextlib.contextmanager
    def staged(self, name: str, spec: TableSpec, data: dict[str, list[Any]]) -> Iterator[None]:
        """COPY the columns into a temporary table ``name`` (dropped afterwards)."""
        import psycopg

        cols = list(data)
        defs = ", ".join(f"{c} {spec.types[c]}" for c in cols)
        self.execute(f"CREATE TEMP TABLE {name} ({defs})")
        try:
            with (
                self.conn.cursor() as cur,
                cur.copy(
                    f"COPY {name} ({', '.join(cols)}) FROM STDIN"  # noqa: S608
                ) as copy,
            ):
                for row in zip(*data.values(), strict=True):
                    copy.write_row(row)
            yield
        finally:
            # In a failed transaction the rollback removes the table itself.
            with contextlib.suppress(psycopg.Error):
                self.execute(f"DROP TABLE IF EXISTS {name}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self.conn.transaction():
                yield
        finally:
            self._pin = None

    def delete_ids(self, table: str, portal: str, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        mark = mark_deleted(table, "(SELECT unnest(CAST(%s AS BIGINT[])) AS id) AS x")
        if mark and self.marking:
            self.conn.execute(mark.replace("?", "%s", 1), [portal, [int(i) for i in ids]])
        self._pin = None
        cur = self.conn.execute(
            f"DELETE FROM {table} WHERE portal = %s AND id = ANY(%s)",  # noqa: S608
            [portal, [int(i) for i in ids]],
        )
        return int(cur.rowcount or 0)

    def use_portal(self, portal: str) -> None:
        """Set the session's portal and read its data version, in one round trip."""
        self.portal = portal
        if self.versions is None:
            self.conn.execute("SELECT set_config('app.portal', %s, false)", [portal])
            return
        hints = pg_plans.for_database(self.path)
        hint = hints.get(portal)
        plan_mode = hint[1] if hint is not None else pg_plans.AUTO
        row = self.conn.execute(pg_versions.PIN_SQL, {"p": portal, "m": plan_mode}).fetchone()
        version = int(row[2]) if row else -1
        self._pin = (version, time.monotonic())
        if hint is None or hint[0] != version:
            # The portal's size under this version: once per version and process.
            counted = self.conn.execute(
                pg_plans.SIZE_SQL, {"p": portal, "n": pg_plans.SMALL_DEALS + 1}
            ).fetchone()
            fresh = pg_plans.mode(int(counted[0]) if counted else 0)
            hints.put(portal, version, fresh)
            if fresh != plan_mode:
                self.conn.execute("SELECT set_config('plan_cache_mode', %s, false)", [fresh])

    def refresh(self) -> None:
        """A report starts: read the data version of this handle's portal again,
        and set the session's portal again (a transaction rolled back since
        may have undone it), in one round trip."""
        if self.portal is not None:
            self.use_portal(self.portal)
        elif self.versions is not None:
            row = self.conn.execute(pg_versions.VERSION_SQL, {"p": ""}).fetchone()
            self._pin = (int(row[0]) if row else -1, time.monotonic())

    def data_version(self, portal: str | None = None) -> int | None:
        if self.versions is None:
            return None
        if (
            portal is not None
            and portal == self.portal
            and self._pin is not None
            and time.monotonic() - self._pin[1] <= PIN_SECONDS
        ):
            # Read with the portal as this request or report began (use_portal).
            return self._pin[0]
        if portal is None:
            sql = f"SELECT coalesce(sum(version), 0) FROM {pg_versions.VERSIONS}"  # noqa: S608
            row = self.conn.execute(sql).fetchone()
        else:
            row = self.conn.execute(pg_versions.VERSION_SQL, {"p": portal}).fetchone()
        return int(row[0]) if row else None

    def remember(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()``, remembered in this process for this portal's data version.

        Not inside a transaction (a value could read its uncommitted rows); the
        key holds the session's portal (row-level security decides what a
        lookup sees), the version is read again after this handle writes or
        after :data:`PIN_SECONDS`.
        """
        import psycopg

        if (
            self.versions is None
            or self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        ):
            return compute()
        if self._pin is None or time.monotonic() - self._pin[1] > PIN_SECONDS:
            self.refresh()
        assert self._pin is not None
        return self.versions.remember(self.portal or "", self._pin[0], key, compute)

    def analyze(self, first: bool = False) -> list[str]:
        """ANALYZE the tables this role owns (PostgreSQL 15 lets only the owner).

        Right after a first copy or a snapshot load the planner has no
        statistics until autovacuum gets to the tables (a minute or more): a
        report planned meanwhile took 81 s instead of 7 s at 10k deals, and
        calls_not_called_back 156 s at 1M. The application role owns nothing
        and gets an empty list: `rop migrate` (the owner) analyses then.

        Since the owner's ``rop_analyze()`` (rop.store.pg_stats) any writer
        analyses the portal tables that are stale, through that function; a
        database migrated by an older rop has none: the owner analyses what it
        owns, the application role nothing, as before.
        """
        if self._stats is None:
            self._stats = pg_stats.installed(self.conn)
        if self._stats:
            return pg_stats.analyze(self.conn, first)
        return [] if first else analyze_owned(self.conn)

    # -- the metrics cache: temporary tables of this session ---------------
    def scratch_key(self) -> tuple:
        # The connection object too: a pool's new connection may reuse a pid.
        return (self.path, self.conn.info.backend_pid, id(self.conn))

    def scratch_create(self, table: str, sql: str, params: dict[str, Any]) -> str:
        self.execute(f"CREATE TEMP TABLE {table} AS {sql}", params)
        self.execute(f"ANALYZE {table}")
        return table

    def scratch_exists(self, table: str) -> bool:
        return self.scalar("SELECT to_regclass(?) IS NOT NULL", ["pg_temp." + table]) is True

    def scratch_drop(self, table: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {table}")

    # -- handles -----------------------------------------------------------
    def cursor(self) -> Store:
        """Another pooled connection for another thread, serving the same portal."""
        twin = PgStore(self.pool, self.pool.getconn(), self.path, self.versions)
        twin._root = False
        twin._specs = self._specs
        if self.portal is not None:
            twin.use_portal(self.portal)
        return twin

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.pool.putconn(self.conn)
        if self._root:
            self.pool.close()


def _pending(conn: psycopg.Connection, target: str) -> list[tuple[int, str, str]]:
    """The migrations the database lacks; refuses a schema from a newer rop."""
    has = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    done: set[int] = set()
    if has and has[0]:
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    known = {m[0] for m in MIGRATIONS}
    if done - known:
        raise StoreError(
            f"the store {target} has schema version {max(done)}, newer than this rop "
            f"knows ({max(known)}): upgrade rop-report"
        )
    return [m for m in MIGRATIONS if m[0] not in done]


def analyze_owned(conn: psycopg.Connection) -> list[str]:
    """ANALYZE every table of the current schema the connected role owns."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = CAST(current_schema() "
        "AS regnamespace) AND c.relkind = 'r' AND pg_has_role(c.relowner, 'USAGE') "
        "ORDER BY c.relname"
    ).fetchall()
    from psycopg import sql

    for (table,) in rows:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    return [r[0] for r in rows]


def _with_portal(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE c.relnamespace = CAST(current_schema() AS regnamespace) AND c.relkind = 'r' "
        "AND a.attname = 'portal' AND NOT a.attisdropped ORDER BY c.relname"
    ).fetchall()
    return [r[0] for r in rows]


def portal_tables(conn: psycopg.Connection) -> list[str]:
    """Tables of the current schema with a ``portal`` column, the shared ones aside."""
    return [t for t in _with_portal(conn) if t not in SHARED_TABLES]


def shared_portal_tables(conn: psycopg.Connection) -> list[str]:
    """The shared registries (:data:`SHARED_TABLES`) that have a ``portal`` column."""
    return [t for t in _with_portal(conn) if t in SHARED_TABLES]


def secure(conn: psycopg.Connection) -> list[str]:
    """Row-level security on every portal table that lacks it; returns the tables changed.

    Runs after the migrations, so a table a later migration adds is covered
    too. The owner is exempt (it migrates and may repair); every other role
    sees and writes only the rows of its session's ``app.portal``; with none
    set (``''`` or unset) it sees nothing.
    """
    changed = []
    for table in portal_tables(conn):
        has = conn.execute(
            "SELECT count(*) FROM pg_policies WHERE schemaname = current_schema() "
            "AND tablename = %s AND policyname = %s",
            [table, POLICY],
        ).fetchone()
        if has and has[0]:
            continue
        conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        conn.execute(
            f"CREATE POLICY {POLICY} ON {table} "
            "USING (portal = current_setting('app.portal', true)) "
            "WITH CHECK (portal = current_setting('app.portal', true))"
        )
        changed.append(table)
    return changed


def grant(conn: psycopg.Connection, role: str) -> None:
    """Let the application role read and write rows (never change the schema)."""
    from psycopg import sql

    who = sql.Identifier(role)
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(who))
    conn.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            who
        )
    )
    conn.execute(sql.SQL("REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM {}").format(who))
    # The data versions move by the triggers only (rop.store.pg_versions).
    for table in (pg_versions.VERSIONS, pg_versions.MARKS):
        conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), who))
    conn.execute(
        sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(pg_versions.VERSIONS), who)
    )


def migrate_pg(conn: psycopg.Connection, target: str, app_role: str | None = None) -> list[int]:
    """Apply the missing migrations, then row-level security (and grants to ``app_role``)."""
    conn.execute("SELECT pg_advisory_lock(%s)", [_MIGRATE_LOCK])
    try:
        applied = []
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT, applied_at TIMESTAMP)"
        )
        for version, name, ddl in _pending(conn, target):
            with conn.transaction():
                conn.execute(ddl)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    [version, name, datetime.now(UTC).replace(tzinfo=None)],
                )
            applied.append(version)
        with conn.transaction():
            secure(conn)
            pg_versions.install(conn, portal_tables(conn), shared_portal_tables(conn))
            pg_stats.install(conn, portal_tables(conn) + shared_portal_tables(conn), app_role)
            for index in PG_INDEXES:
                conn.execute(index)
            if app_role:
                grant(conn, app_role)
        # Statistics for the planner now: after a bulk load by the application
        # role nothing else may take them until autovacuum does (docs/SERVER.md).
        analyze_owned(conn)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATE_LOCK])


def display(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "the PostgreSQL store"
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


# A statement run a second time on a connection is prepared (psycopg's default
# waits for the sixth): a report's queries are long texts whose parsing is a
# good part of their cost at 10k deals, and PostgreSQL may switch a prepared
# statement to a generic plan (no planning either) after five custom ones.
# 10k deals, runs 2-6 of a report on fresh connections: 89 -> 80 ms median
# (docs/BENCHMARKS.md "Sixth run: PostgreSQL's fixed costs").
PREPARE_THRESHOLD = 1

# The web keeps one connection per request thread (web/app.py StorePool), and
# Starlette runs sync routes on anyio's 40 worker threads, plus the sync job.
POOL_SIZE = 42


def connect_pool(url: str, max_size: int = POOL_SIZE) -> ConnectionPool:
    try:
        import psycopg
        from psycopg_pool import ConnectionPool
    except ImportError:
        raise StoreError(
            "a PostgreSQL store needs psycopg: pip install 'rop-report[server]'"
        ) from None
    # One direct attempt first: a wrong host, password or database is
    # answered at once and by name, where the pool would retry until its timeout.
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error as exc:
        raise StoreError(f"cannot open store {display(url)}: {_first_line(exc)}") from None
    pool = ConnectionPool(
        url,
        min_size=1,  # connections open as threads ask for them
        max_size=max_size,
        # JIT off: the report's statements are planned over a million rows, so
        # PostgreSQL compiled them (0.3-0.65 s each at 1M deals, a third of the
        # client sections' time) for runs shorter than the compilation
        # (docs/SERVER.md, docs/BENCHMARKS.md).
        kwargs={
            "autocommit": True,
            "options": "-c TimeZone=UTC -c jit=off",
            "prepare_threshold": PREPARE_THRESHOLD,
        },
        configure=_configure,
        reset=_reset,
        open=False,
        name="rop",
    )
    try:
        pool.open(wait=True, timeout=15)
    except Exception as exc:
        pool.close()
        raise StoreError(f"cannot open store {display(url)}: {_first_line(exc)}") from None
    return pool


def _first_line(exc: BaseException) -> str:
    """The cause in one line, without the password a URL may carry."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _execute(target: Any, sql: str, params: Params) -> Any:
    """Run ``sql`` on a connection or cursor; its cursor. Without parameters the
    text goes as written (no placeholders to rewrite)."""
    return target.execute(to_pyformat(sql), params) if params else target.execute(sql)


def _result(cur: Any) -> tuple[list[str], list[tuple]]:
    """A statement's column names and rows (none for a statement without rows)."""
    if cur.description is None:
        return [], []
    return [d.name for d in cur.description], cur.fetchall()


def open_pg_store(url: str, read_only: bool = False, migrate: bool = True) -> PgStore:
    """Connect, and bring the schema up to date when this role may (else say who must)."""
    import psycopg

    pool = connect_pool(url)
    conn = pool.getconn()
    store = PgStore(pool, conn, display(url))
    try:
        pending = _pending(conn, store.path)
        if pending and (read_only or not migrate):
            raise StoreError(
                f"the store {store.path} needs schema upgrades {[m[0] for m in pending]}: "
                "run `rop migrate --db URL` as the tables' owner"
            )
        if pending:
            try:
                migrate_pg(conn, store.path)
            except psycopg.errors.InsufficientPrivilege:
                raise StoreError(
                    f"the store {store.path} needs schema upgrades "
                    f"{[m[0] for m in pending]} and this role may not apply them: "
                    "run `rop migrate --db URL` as the tables' owner"
                ) from None
        if pg_versions.installed(conn):
            # Lookups remembered per data version; a database migrated by an
            # older rop has no versions until `rop migrate`: nothing remembered.
            store.versions = for_database(store.path)
        # Stored facts that lag (another FACTS_VERSION) are rebuilt by `rop migrate`
        # or the portal's next sync (rop.store.facts.ensure_facts), never by an open.
    except BaseException:
        store.close()
        raise
    return store
