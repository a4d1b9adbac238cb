"""`rop worker` and `rop sync --queue`: server mode's sync workers (rop.jobs)."""

from __future__ import annotations

import click

from rop.cli.problems import UsageProblem
from rop.config import Settings, load_settings

DB_HELP = "postgresql:// URL of the store (default: ROP_DB)"


def _keys(settings: Settings) -> object:
    from rop.jobs.sources import Keys
    from rop.store.vault import Vault

    secret = settings.app_secret_key or settings.app_client_secret
    if not secret:
        raise UsageProblem(
            "server mode keeps webhooks and tokens sealed in the store: "
            "set ROP_APP_SECRET_KEY (the same on every worker and web process)"
        )
    return Keys(Vault(secret.split(",")), settings.app_client_id, settings.app_client_secret)


def _server_url(settings: Settings) -> str:
    from rop.store.db import is_url

    if not is_url(settings.db):
        raise UsageProblem(
            f"workers need a postgresql:// store (ROP_DB or --db), not the file {settings.db}"
        )
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        raise UsageProblem("workers need procrastinate: pip install 'rop-report[server]'") from None
    return str(settings.db)


def _has_queue(url: str) -> None:
    """One clear line when `rop migrate` has not created the job queue (or the store is down)."""
    import psycopg

    from rop.store.postgres import display

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageProblem(f"cannot open store {display(url)}: {first}") from None
    if not (row and row[0]):
        raise UsageProblem(
            f"the store {display(url)} has no job queue: run `rop migrate --db URL "
            "--app-role ROLE` as the tables' owner"
        )


def queue_webhook_sync(settings: Settings, full: bool) -> str:
    """Register the settings' webhook portal for the workers and queue its sync."""
    from rop.jobs.defer import deferrer, queue_sync
    from rop.jobs.sources import Sources
    from rop.store.db import StoreError, open_store

    url = _server_url(settings)
    keys = _keys(settings)
    _has_queue(url)
    assert settings.webhook
    try:
        store = open_store(url)
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    try:
        portal = Sources(store, keys).add_webhook(settings.webhook)  # type: ignore[arg-type]
        app = deferrer(url)
        try:
            queued = queue_sync(app, portal, full=full)
        finally:
            app.close()
    finally:
        store.close()
    what = "full sync" if full else "sync"
    if queued:
        return f"{what} of {portal} queued for the workers"
    return f"a {what} of {portal} is already waiting in the queue"


@click.command("worker")
@click.option("--db", help=DB_HELP)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
    help="Jobs run at once by this worker (each portal still runs one at a time)",
)  # fmt: skip
@click.option(
    "--stalled-seconds", type=click.IntRange(2, 3600), default=30, show_default=True,
    help="A worker silent this long is dead: its running job is queued again",
)  # fmt: skip
@click.option(
    "--rescan-minutes", type=click.IntRange(0, 24 * 60), default=None,
    help="Queue an incremental sync of every portal this often (default: "
    "ROP_SYNC_INTERVAL_MINUTES; 0: never)",
)  # fmt: skip
@click.option(
    "--digests/--no-digests", default=True, show_default=True,
    help="Send the scheduled digests that are due, every minute (docs/DIGESTS.md)",
)  # fmt: skip
def worker_command(
    db: str | None,
    concurrency: int,
    stalled_seconds: int,
    rescan_minutes: int | None,
    digests: bool,
) -> None:
    """Run a sync worker on the PostgreSQL job queue (server mode; stop with Ctrl+C)."""
    from rop.jobs.queue import Runtime, run_worker
    from rop.logs import configure
    from rop.web.digests import digest_config

    settings = load_settings(db=db)
    url = _server_url(settings)
    keys = _keys(settings)
    _has_queue(url)
    configure(settings.log_format, settings.rest_log, settings.rest_log_days)
    runtime = Runtime(
        db=url,
        keys=keys,  # type: ignore[arg-type]
        rate_per_second=settings.rate_per_second,
        rate_burst=settings.rate_burst,
        rescan_minutes=(
            settings.sync_interval_minutes if rescan_minutes is None else rescan_minutes
        ),
        stalled_seconds=stalled_seconds,
        digests=digest_config(settings) if digests else None,
        offline_poll_seconds=(
            settings.app_offline_poll_seconds if settings.app_offline_events else 0
        ),
    )
    try:
        run_worker(runtime, concurrency)
    except Exception as exc:  # a lost database: one line, not a traceback
        raise click.ClickException(f"the worker stopped: {exc}") from None
