"""`rop serve`: the web report over the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from rop.cli.problems import UsageProblem
from rop.cli.store import locked_by_server
from rop.config import load_settings

if TYPE_CHECKING:
    from rop.store.db import Store


@click.command("serve")
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    help="Store file or postgresql:// URL (default: ROP_DB)",
)
@click.option("--webhook", help="Webhook URL for the page's sync button (default: ROP_WEBHOOK)")
@click.option("--host", help="Address to listen on (default: ROP_HOST or 127.0.0.1)")
@click.option("--port", type=int, help="Port (default: ROP_PORT or 8000; 0 = any free port)")
@click.option("--viewer", type=int, help="Show the report as this user sees it (ROP_VIEWER)")
def serve_command(
    db: str | None, webhook: str | None, host: str | None, port: int | None, viewer: int | None
) -> None:
    """Serve the web report; prints its URL."""
    from rop.store.db import StoreError, open_store
    from rop.web import create_app, serve

    settings = load_settings(db=db, webhook=webhook, host=host, port=port, viewer=viewer)
    if settings.app_problem():
        raise UsageProblem(f"bad setting: {settings.app_problem()}")
    from rop.logs import configure

    configure(settings.log_format, settings.rest_log, settings.rest_log_days)
    if settings.webhook:
        from rop.bitrix.client import parse_webhook

        try:
            parse_webhook(settings.webhook)
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
    try:
        store = open_store(settings.db)
    except StoreError as exc:
        raise UsageProblem(locked_by_server(settings.db, str(exc)) or str(exc)) from None
    try:
        _say_lagging_facts(store)
        app = create_app(settings, store)
        if settings.app_mode:
            # What the portal's application form asks for (README).
            click.echo(f"Bitrix24 application URL (handler): {settings.app_public_url}/app")
            click.echo(f"Bitrix24 install URL: {settings.app_public_url}/app/install")
        try:
            serve(app, settings.host, settings.port)
        except OSError as exc:
            raise UsageProblem(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
    finally:
        store.close()


def _say_lagging_facts(store: Store) -> None:
    """Tell the operator when the stored facts lag: the server never rebuilds them
    itself (minutes and, unbounded, gigabytes at 1M deals, rop.store.facts.ensure_facts)."""
    from rop.store.facts import lagging

    behind = lagging(store)
    if behind:
        click.echo(
            f"the stored facts of {', '.join(behind)} are from another version of rop or not "
            "built yet: reports compute them from the records meanwhile (same figures, "
            "slower); the next sync rebuilds them, or `rop migrate` with the server stopped",
            err=True,
        )
