"""Planner statistics on PostgreSQL for the role that writes but does not own.

A portal's first sync (or a snapshot load) writes its rows as the
application role into tables the owner ANALYZEd while they were empty
(``rop migrate``); PostgreSQL 15 lets only a table's owner ANALYZE it, and
autovacuum gets there a minute or more later. Meanwhile the planner estimates
every ``portal = ...`` test and join from no statistics at all and runs the
stored facts' rebuild as nested loops: 26 s of a 10k-deal first sync's 40 s
(docs/BENCHMARKS.md "PostgreSQL statistics after a first sync").

So ``rop migrate`` (the owner) makes one function, ``rop_analyze()``, owned by
it and SECURITY DEFINER, which the application role may EXECUTE and nothing
more (docs/SERVER.md "Planner statistics"):

- **no input reaches SQL**: the tables are the schema's product tables (every
  table with a ``portal`` column) as they were when the owner migrated; each is
  a statement written into the function's body (``ANALYZE (SKIP_LOCKED) t``),
  so there is no dynamic SQL at all. Its one argument, ``first``, only narrows
  which of them are stale (a copy under way: a table with rows and no
  statistics of them yet, once);
- **only what is stale**: a table is analysed when its file grew by more than
  a tenth in pages since its statistics were taken (the first rows after an
  empty ANALYZE, a copy that went on, a whole rebuild's new rows beside the
  dead ones). The pages are read from the file (``pg_relation_size``), so the
  caller's writes count at once, where the statistics views lag behind. A
  caller calling it in a loop therefore makes nothing autovacuum would not
  make too, only sooner; calling it when nothing is stale costs a catalogue
  read per table. Changes in place (updates, deletes) are autovacuum's, as before;
- **never waits**: ``SKIP_LOCKED`` passes a table another ANALYZE (another
  portal's sync, autovacuum) holds, so two syncs do not queue on each other;
- ``search_path`` pinned (the tables schema-qualified as well), EXECUTE revoked
  from PUBLIC and granted to the application role only.

The writers call :meth:`rop.store.db.Store.analyze` (this function on
PostgreSQL) where a bulk write ends: before the stored facts' refresh reads the
copied rows, after each fact table a whole rebuild writes, and as it ends
(rop.store.facts.refresh_facts).
"""

# The SQL here is assembled from this module's constants and names read from
# the catalogue, quoted by the server's quote_ident(); no caller's value reaches it.
# ruff: noqa: S608

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

FUNCTION = "rop_analyze"

# A table is stale when its file grew past this share of the pages its
# statistics saw. The file, not the statistics views: those count the rows of a
# transaction up to a second after it commits (and after an ANALYZE that ran
# meanwhile), so a count since the last ANALYZE says "stale" again right after.
GROWTH = 1.1


def _stale(table: str) -> str:
    """The test that ``table`` (schema-qualified, quoted) needs statistics now;
    with ``first`` (the function's argument) only a table whose statistics saw
    no page yet."""
    rel = "'" + table.replace("'", "''") + "'::regclass"
    pages = f"pg_relation_size({rel}) / current_setting('block_size')::int"
    return (
        f"(SELECT {pages} > {GROWTH} * c.relpages AND (NOT first OR c.relpages = 0) "
        f"FROM pg_class c WHERE c.oid = {rel})"
    )


def function_sql(schema: str, tables: list[tuple[str, str]]) -> str:
    """The function's text: one fixed ANALYZE per table ((name, name quoted) pairs)."""
    steps = "\n".join(
        f"  IF {_stale(f'{schema}.{quoted}')} THEN\n"
        f"    ANALYZE (SKIP_LOCKED) {schema}.{quoted};\n"
        f"    done := done || {_literal(name)};\n"
        "  END IF;"
        for name, quoted in tables
    )
    return f"""CREATE OR REPLACE FUNCTION {schema}.{FUNCTION}(first boolean DEFAULT false)
RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  done text[] := '{{}}';
BEGIN
{steps}
  RETURN done;
END $$"""


def _literal(name: str) -> str:
    # A table's name (from the catalogue) as a text literal for the result list.
    return "'" + name.replace("'", "''") + "'::text"


def install(conn: psycopg.Connection, tables: list[str], app_role: str | None) -> None:
    """(Re)make the function for ``tables`` (run by the owner, after the
    migrations: a table a later migration adds is covered by the next
    ``rop migrate``); EXECUTE for ``app_role`` only."""
    from psycopg import sql

    row = conn.execute("SELECT quote_ident(current_schema())").fetchone()
    schema = str(row[0]) if row else "public"
    quoted = []
    for table in tables:
        got = conn.execute("SELECT quote_ident(%s)", [table]).fetchone()
        quoted.append((table, str(got[0]) if got else table))
    conn.execute(function_sql(schema, quoted).encode())
    name = sql.SQL(f"{schema}.{FUNCTION}(boolean)")
    conn.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(name))
    if app_role:
        conn.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(name, sql.Identifier(app_role))
        )


def installed(conn: psycopg.Connection) -> bool:
    """The function exists (a database migrated by an older rop has none until
    ``rop migrate``) and this role may call it."""
    row = conn.execute(
        "SELECT p IS NOT NULL AND has_function_privilege(p, 'EXECUTE') "
        "FROM to_regprocedure(%s) AS p",
        [f"{FUNCTION}(boolean)"],
    ).fetchone()
    return bool(row and row[0])


def analyze(conn: psycopg.Connection, first: bool = False) -> list[str]:
    """The stale tables analysed now (``first``: only those with no statistics
    yet); returns their names (one another ANALYZE held at that moment was
    passed, not waited for, and is named too)."""
    row = conn.execute(f"SELECT {FUNCTION}(%s)", [first]).fetchone()
    return list(row[0]) if row and row[0] else []
