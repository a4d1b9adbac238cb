"""Command line: thin. Each command parses its options and calls the library."""

from __future__ import annotations

import json
import sys

import click

from rop.config import SettingsError, load_settings


class UsageProblem(click.ClickException):
    """One clear line naming the problem; exit code 2 (bad input)."""

    exit_code = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rop-report")
def cli() -> None:
    """ROP Report (Отчёт РОПа): the head of sales' report over a Bitrix24 CRM."""


@cli.command("demo-portal")
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write"
)
@click.option("--seed", default=1, show_default=True, help="Random seed (same seed, same files)")
@click.option("--deals", default=20000, show_default=True, help="Number of deals")
@click.option("--months", default=12, show_default=True, help="Months of history")
def demo_portal(out: str, seed: int, deals: int, months: int) -> None:
    """Write a generated demo portal snapshot folder."""
    from rop.demo.generator import generate

    try:
        generate(out, seed=seed, deals=deals, months=months)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    except OSError as exc:
        raise UsageProblem(
            f"cannot write the demo portal to {out}: {exc.strerror or exc}"
        ) from None
    click.echo(f"demo portal generated at {out}")


@cli.command("sync")
@click.option("--webhook", help="Bitrix24 incoming webhook URL (default: ROP_WEBHOOK)")
@click.option("--db", type=click.Path(dir_okay=False), help="Store file (default: ROP_DB)")
@click.option("--full", is_flag=True, help="Copy everything again instead of only the changes")
def sync_command(webhook: str | None, db: str | None, full: bool) -> None:
    """Copy the portal's CRM into the store: in full the first time, then only changes."""
    from rop.bitrix.client import parse_webhook
    from rop.bitrix.progress import ConsoleProgress
    from rop.bitrix.sync import SyncError, run_sync
    from rop.bitrix.sync_remote import ForwardError, forward_sync, is_lock_error
    from rop.store.db import StoreError, open_store

    settings = load_settings(webhook=webhook, db=db)
    if not settings.webhook:
        raise UsageProblem("no webhook: pass --webhook URL or set ROP_WEBHOOK")
    try:
        parse_webhook(settings.webhook)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    try:
        store = open_store(settings.db)
    except StoreError as exc:
        if not is_lock_error(str(exc)):
            raise click.ClickException(str(exc)) from None
        try:
            answer = forward_sync(settings.db, full=full)
        except ForwardError as problem:
            raise click.ClickException(str(problem)) from None
        click.echo("the store is open in `rop serve`; the server ran the sync:")
        click.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    with store, ConsoleProgress() as progress:
        try:
            result = run_sync(
                store,
                settings.webhook,
                full=full,
                rate_per_second=settings.rate_per_second,
                rate_burst=settings.rate_burst,
                timezone=settings.timezone,
                progress=progress,
            )
        except SyncError as exc:
            raise click.ClickException(str(exc)) from None
    for line in result.summary_lines():
        click.echo(line)


@cli.command("emulate")
@click.option(
    "--portal",
    "portal_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Portal snapshot folder to serve",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8765, show_default=True, help="Port (0: any free port)")
@click.option("--no-rate-limit", is_flag=True, help="Switch off the 2 req/s leaky bucket")
@click.option("--rate", type=float, default=2.0, show_default=True, help="Requests per second")
@click.option("--burst", type=int, default=50, show_default=True, help="Leaky bucket size")
@click.option(
    "--operating-limit",
    type=float,
    default=480.0,
    show_default=True,
    help="Seconds of work per method per 10 minutes (0: off)",
)
@click.option("--no-processing", is_flag=True, help="Do not simulate processing time")
@click.option("--oauth", is_flag=True, help="Also accept OAuth tokens (/rest/METHOD?auth=...)")
@click.option("--test-api", is_flag=True, help="Enable POST /_emulator/... record changes")
@click.option("--drop-rate", type=float, default=0.0, help="Share of dropped connections")
@click.option("--error-rate", type=float, default=0.0, help="Share of HTTP 500 replies")
@click.option("--slow-rate", type=float, default=0.0, help="Share of slow replies")
@click.option("--malformed-rate", type=float, default=0.0, help="Share of broken JSON replies")
@click.option("--seed", type=int, default=0, help="Fault injection seed")
def emulate_command(
    portal_dir: str,
    host: str,
    port: int,
    no_rate_limit: bool,
    rate: float,
    burst: int,
    operating_limit: float,
    no_processing: bool,
    oauth: bool,
    test_api: bool,
    drop_rate: float,
    error_rate: float,
    slow_rate: float,
    malformed_rate: float,
    seed: int,
) -> None:
    """Serve a portal snapshot folder as a Bitrix24 portal (prints the webhook URL first)."""
    from rop.bitrix.emulator import EmulatorConfig, FaultConfig, PortalError, create_app
    from rop.bitrix.emulator.server import bind, serve_forever

    rates = (drop_rate, error_rate, slow_rate, malformed_rate)
    if any(r < 0 or r > 1 for r in rates) or sum(rates) > 1:
        raise UsageProblem("fault rates must be between 0 and 1 and add up to at most 1")
    if rate <= 0 or burst <= 0:
        raise UsageProblem("--rate and --burst must be positive")
    faults = FaultConfig(drop_rate, error_rate, slow_rate, 2.0, malformed_rate, seed)
    config = EmulatorConfig(
        rate_limit=not no_rate_limit,
        rate_per_second=rate,
        burst=burst,
        operating_limit_seconds=operating_limit,
        simulate_processing=not no_processing,
        faults=faults if any(rates) else None,
        oauth=oauth,
        test_api=test_api,
    )
    try:
        app = create_app(portal_dir, config)
    except PortalError as exc:
        raise UsageProblem(str(exc)) from None
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise UsageProblem(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    portal = app.state.portal
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"http://{shown}:{bound}/rest/{portal.webhook_user_id}/{portal.webhook_token}/")
    click.echo(f"serving {portal_dir} as {portal.domain}; Ctrl+C stops", err=True)
    sys.stdout.flush()
    serve_forever(app, sock)


@cli.command("serve")
@click.option("--db", type=click.Path(dir_okay=False), help="Store file (default: ROP_DB)")
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
    if settings.webhook:
        from rop.bitrix.client import parse_webhook

        try:
            parse_webhook(settings.webhook)
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
    try:
        store = open_store(settings.db)
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None
    try:
        app = create_app(settings, store)
        try:
            serve(app, settings.host, settings.port)
        except OSError as exc:
            raise UsageProblem(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
    finally:
        store.close()


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


__all__ = ["cli", "main", "load_settings", "UsageProblem"]
