"""Each portal's data version on PostgreSQL: a counter every committed write moves.

What the per-process memo of small lookups is keyed by there (rop.store.memo,
docs/SERVER.md "Remembered lookups"). A DuckDB file has one writer process, so
its memo is forgotten at each write of that process; a PostgreSQL database is
written by workers and other web processes, so a reader asks the database, in
the statement that sets its portal (no extra round trip), how far each count
has moved.

Triggers keep the counts, on every table with a ``portal`` column (a table a
later migration adds included: :func:`install` runs after the migrations):

- a portal's table (row-level security): a write statement marks the portal
  of the session (``app.portal``: row-level security lets it write no other
  portal's rows); one by a role the policy does not hold (the owner), and any
  TRUNCATE, marks the global scope ``''``, which every portal's version adds;
- a shared registry (``portals``, ``app_portals``, ...): each row marks its
  own portal; a portal added, removed or renamed marks ``''`` (every reader's
  list of portals).

A mark is one row per transaction and scope (``rop_data_marks``, written by a
SECURITY DEFINER function, so the application role needs no right on it); a
deferred constraint trigger turns the transaction's marks into ``+1`` on
``rop_data_versions`` as it commits. The count therefore moves in the same
commit as the data (a reader that sees the new rows sees the new count, and
the other way round), and the counter's row lock is held for the commit only,
not for a sync's whole transaction. The scopes are bumped in sorted order, so
two transactions marking the same two scopes cannot deadlock.
"""

# The SQL here is assembled from this module's constants and the schema's name
# as quote_ident() gave it; no value reaches it, so S608 does not apply.
# ruff: noqa: S608

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

VERSIONS = "rop_data_versions"
MARKS = "rop_data_marks"
TRIGGER = "rop_data_version"

# The session's portal, its plan mode (rop.store.pg_plans) and the data's
# version for the portal, in one round trip (rop.store.postgres.PgStore.use_portal):
# the global scope '' counts too.
PIN_SQL = (
    "SELECT set_config('app.portal', %(p)s, false), set_config('plan_cache_mode', %(m)s, false), "
    f"(SELECT coalesce(sum(version), 0) FROM {VERSIONS} WHERE scope = %(p)s OR scope = '')"
)
# The version alone, for a handle whose portal is already set.
VERSION_SQL = f"SELECT coalesce(sum(version), 0) FROM {VERSIONS} WHERE scope = %(p)s OR scope = ''"


def _install_sql(schema: str) -> tuple[str, ...]:
    """Tables and functions (``schema`` quoted already); idempotent."""
    return (
        f"CREATE TABLE IF NOT EXISTS {schema}.{VERSIONS} "
        "(scope TEXT PRIMARY KEY, version BIGINT NOT NULL)",
        # Only marks of transactions in flight live here: unlogged (a crash
        # loses only marks of transactions that did not commit either).
        f"CREATE UNLOGGED TABLE IF NOT EXISTS {schema}.{MARKS} "
        "(xact xid8 NOT NULL, scope TEXT NOT NULL, PRIMARY KEY (xact, scope))",
        # As the owner: the application role writes no version of its own.
        f"""CREATE OR REPLACE FUNCTION {schema}.rop_mark_change(p_scope TEXT) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
  INSERT INTO {MARKS} (xact, scope) VALUES (pg_current_xact_id(), p_scope)
  ON CONFLICT DO NOTHING
$$""",
        f"""CREATE OR REPLACE FUNCTION {schema}.rop_statement_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Under row-level security a statement reads and writes the session's portal
  -- only; the owner (exempt) or a TRUNCATE may touch any portal: every scope.
  IF TG_OP <> 'TRUNCATE' AND row_security_active(TG_RELID) THEN
    PERFORM {schema}.rop_mark_change(coalesce(current_setting('app.portal', true), ''));
  ELSE
    PERFORM {schema}.rop_mark_change('');
  END IF;
  RETURN NULL;
END $$""",
        f"""CREATE OR REPLACE FUNCTION {schema}.rop_row_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.portal IS NOT DISTINCT FROM OLD.portal THEN
    PERFORM {schema}.rop_mark_change(coalesce(NEW.portal, ''));
  ELSIF TG_TABLE_NAME = 'portals' THEN
    -- A portal added, removed or renamed: every reader's list of portals.
    PERFORM {schema}.rop_mark_change('');
  ELSE
    IF TG_OP <> 'INSERT' THEN PERFORM {schema}.rop_mark_change(coalesce(OLD.portal, '')); END IF;
    IF TG_OP <> 'DELETE' THEN PERFORM {schema}.rop_mark_change(coalesce(NEW.portal, '')); END IF;
  END IF;
  RETURN NULL;
END $$""",
        # At commit: this transaction's marks -> +1 per scope, in scope order.
        f"""CREATE OR REPLACE FUNCTION {schema}.rop_bump_versions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
BEGIN
  WITH gone AS (DELETE FROM {MARKS} WHERE xact = pg_current_xact_id() RETURNING scope)
  INSERT INTO {VERSIONS} AS v (scope, version)
  SELECT scope, 1 FROM gone ORDER BY scope
  ON CONFLICT (scope) DO UPDATE SET version = v.version + 1;
  RETURN NULL;
END $$""",
        # No OR REPLACE for a constraint trigger: made once.
        f"""DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'rop_bump_versions'
                 AND tgrelid = '{schema}.{MARKS}'::regclass) THEN
    CREATE CONSTRAINT TRIGGER rop_bump_versions AFTER INSERT ON {schema}.{MARKS}
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {schema}.rop_bump_versions();
  END IF;
END $$""",
        f"REVOKE ALL ON {schema}.{MARKS} FROM PUBLIC",
        f"GRANT SELECT ON {schema}.{VERSIONS} TO PUBLIC",
    )


def install(conn: psycopg.Connection, portal_tables: list[str], shared: list[str]) -> None:
    """The counts and the triggers on every table given (run by the owner, after
    the migrations, in their transaction); a table that has them already is left."""
    from psycopg import sql

    schema = conn.execute("SELECT quote_ident(current_schema())").fetchone()
    quoted = str(schema[0]) if schema else "public"
    for statement in _install_sql(quoted):
        conn.execute(statement)
    for table, shared_table in [(t, False) for t in portal_tables] + [(t, True) for t in shared]:
        name = sql.Identifier(table)
        if shared_table:
            conn.execute(
                sql.SQL(
                    "CREATE OR REPLACE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} "
                    "FOR EACH ROW EXECUTE FUNCTION rop_row_changed()"
                ).format(sql.Identifier(TRIGGER), name)
            )
            conn.execute(
                sql.SQL(
                    "CREATE OR REPLACE TRIGGER {} AFTER TRUNCATE ON {} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION rop_statement_changed()"
                ).format(sql.Identifier(TRIGGER + "_truncate"), name)
            )
        else:
            conn.execute(
                sql.SQL(
                    "CREATE OR REPLACE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                    "ON {} FOR EACH STATEMENT EXECUTE FUNCTION rop_statement_changed()"
                ).format(sql.Identifier(TRIGGER), name)
            )


def installed(conn: psycopg.Connection) -> bool:
    """The counts exist and every table with a ``portal`` column has its trigger
    (a database migrated by an older rop has none until `rop migrate`)."""
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL AND NOT EXISTS ("
        " SELECT 1 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        " WHERE c.relnamespace = CAST(current_schema() AS regnamespace) AND c.relkind = 'r'"
        " AND a.attname = 'portal' AND NOT a.attisdropped AND NOT EXISTS ("
        "  SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = %s))",
        [VERSIONS, TRIGGER],
    ).fetchone()
    return bool(row and row[0])
