"""`rop migrate` and `rop portals`: looking after a store that holds many portals."""

from __future__ import annotations

import json
from typing import Any

import click

from rop.cli.problems import UsageProblem
from rop.config import load_settings

DB_HELP = "Store file or postgresql:// URL (default: ROP_DB)"


@click.command("migrate")
@click.option("--db", help=DB_HELP)
@click.option(
    "--app-role",
    help="PostgreSQL: the role the application connects as; granted row access "
    "(never schema changes). Run as the tables' owner.",
)
def migrate_command(db: str | None, app_role: str | None) -> None:
    """Bring the store's schema up to date (PostgreSQL: also row-level security)."""
    from rop.store.db import StoreError, is_url, open_store

    settings = load_settings(db=db)
    target = settings.db
    if not is_url(target):
        if app_role:
            raise UsageProblem("--app-role applies to a postgresql:// store only")
        try:
            store = open_store(target)  # DuckDB migrates on open
        except StoreError as exc:
            raise UsageProblem(str(exc)) from None
        with store:
            built = _bring_facts_up_to_date(store, settings.sync_memory_limit, settings.db_threads)
        click.echo(f"the store {target} is up to date")
        if built:
            click.echo(f"stored facts rebuilt for: {', '.join(built)}")
        return
    from rop.store.postgres import connect_pool, display, migrate_pg

    url = str(target)
    try:
        pool = connect_pool(url, max_size=1)
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    import psycopg

    try:
        with pool.connection() as conn:
            applied = migrate_pg(conn, display(url), app_role=app_role)
            queue = _install_queue(conn, app_role)
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    except psycopg.Error as exc:
        raise UsageProblem(f"cannot migrate {display(url)}: {str(exc).strip()}") from None
    finally:
        pool.close()
    done = ", ".join(map(str, applied)) if applied else "none needed"
    click.echo(f"migrations applied to {display(url)}: {done}")
    if queue:
        click.echo(queue)
    from rop.store.postgres import open_pg_store

    try:
        with open_pg_store(url) as store:
            built = _bring_facts_up_to_date(store, "", 0)
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    if built:
        click.echo(f"stored facts rebuilt for: {', '.join(built)}")


def _bring_facts_up_to_date(store: Any, memory_limit: str, threads: int) -> list[str]:
    """The stored facts of every portal whose facts lag (another FACTS_VERSION),
    rebuilt under the sync's memory bound (DuckDB; PostgreSQL computes on its server)."""
    from rop.store.db import StoreError
    from rop.store.facts import ensure_facts

    if memory_limit:
        try:
            store.bound(memory_limit, threads, MIGRATE_LIMIT_HINT)
        except StoreError as exc:
            raise UsageProblem(f"ROP_SYNC_MEMORY_LIMIT is too small: {exc}") from None
    try:
        return ensure_facts(store)
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None


MIGRATE_LIMIT_HINT = "raise ROP_SYNC_MEMORY_LIMIT and run `rop migrate` again"


def _install_queue(conn: object, app_role: str | None) -> str | None:
    """The workers' job queue (procrastinate's schema), when procrastinate is installed."""
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        return None
    from rop.jobs.queue_schema import install_queue

    created, applied = install_queue(conn, app_role)
    if created:
        return "the workers' job queue was created (procrastinate)"
    if applied:
        return f"the workers' job queue upgraded (procrastinate): {', '.join(applied)}"
    return None


@click.command("portals")
@click.option("--db", help=DB_HELP)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    help="Output: a table or JSON",
)
def portals_command(db: str | None, fmt: str) -> None:
    """The store's portals: last sync, size and state."""
    from rop.cli.store import open_report_store
    from rop.store.portals import portal_summaries

    with open_report_store(db) as store:
        rows = portal_summaries(store)
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        click.echo("no portals in the store")
        return
    click.echo(f"{'portal':40} {'state':8} {'last sync (UTC)':20} {'deals':>9} {'leads':>9}")
    for r in rows:
        last = (r["last_sync"] or "")[:19].replace("T", " ")
        click.echo(f"{r['portal']:40} {r['state']:8} {last:20} {r['deals']:>9} {r['leads']:>9}")
