"""`rop emulate` (serve a snapshot as a Bitrix24 portal) and `rop sync` (copy a portal)."""

from __future__ import annotations

import json
import sys

import click

from rop.cli.problems import UsageProblem
from rop.config import load_settings


@click.command("emulate")
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
@click.option("--app-handler", help="Register an application: its handler (application) URL")
@click.option("--app-install-url", default="", help="The application's initial installation URL")
@click.option("--app-install-handler", default="", help="Installation event handler URL")
@click.option("--app-client-id", default="local.emulator.app", show_default=True)
@click.option("--app-client-secret", default="emulator-secret", show_default=True)
@click.option(
    "--app-scopes",
    default="crm,user,department,telephony,placement,im",
    show_default=True,
    help="Comma-separated scopes",
)
@click.option("--app-version", type=int, default=1, show_default=True)
@click.option("--app-title", default="ROP Report", show_default=True)
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
    app_handler: str | None,
    app_install_url: str,
    app_install_handler: str,
    app_client_id: str,
    app_client_secret: str,
    app_scopes: str,
    app_version: int,
    app_title: str,
) -> None:
    """Serve a portal snapshot folder as a Bitrix24 portal (prints the webhook URL first)."""
    from rop.emulator import EmulatorConfig, FaultConfig, PortalError, create_app
    from rop.emulator.config import AppSettings
    from rop.emulator.server import bind, serve_forever

    rates = (drop_rate, error_rate, slow_rate, malformed_rate)
    if any(r < 0 or r > 1 for r in rates) or sum(rates) > 1:
        raise UsageProblem("fault rates must be between 0 and 1 and add up to at most 1")
    if rate <= 0 or burst <= 0:
        raise UsageProblem("--rate and --burst must be positive")
    faults = FaultConfig(drop_rate, error_rate, slow_rate, 2.0, malformed_rate, seed)
    app_settings = None
    if app_handler is not None:
        for name, url in (
            ("--app-handler", app_handler),
            ("--app-install-url", app_install_url),
            ("--app-install-handler", app_install_handler),
        ):
            if url and not url.startswith(("http://", "https://")):
                raise UsageProblem(f"{name} must be an http(s) URL, not {url!r}")
        scopes = tuple(s.strip() for s in app_scopes.split(",") if s.strip())
        if not scopes or app_version < 1:
            raise UsageProblem("--app-scopes needs at least one scope; --app-version is 1 or more")
        app_settings = AppSettings(
            client_id=app_client_id,
            client_secret=app_client_secret,
            handler=app_handler,
            install_url=app_install_url,
            install_handler=app_install_handler,
            scopes=scopes,
            version=app_version,
            title=app_title,
        )
    config = EmulatorConfig(
        rate_limit=not no_rate_limit,
        rate_per_second=rate,
        burst=burst,
        operating_limit_seconds=operating_limit,
        simulate_processing=not no_processing,
        faults=faults if any(rates) else None,
        oauth=oauth,
        test_api=test_api,
        app=app_settings,
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
    click.echo(f"portal page: http://{shown}:{bound}/", err=True)
    if host not in ("0.0.0.0", "::"):
        # The address printed is the portal's one address (DOMAIN in app frames).
        app.state.engine.host.seen(f"http://{shown}:{bound}")
    sys.stdout.flush()
    serve_forever(app, sock)


@click.command("sync")
@click.option("--webhook", help="Bitrix24 incoming webhook URL (default: ROP_WEBHOOK)")
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    help="Store file or postgresql:// URL (default: ROP_DB)",
)
@click.option("--full", is_flag=True, help="Copy everything again instead of only the changes")
@click.option(
    "--queue",
    is_flag=True,
    help="Server mode: register the portal for `rop worker` and queue its sync",
)
def sync_command(webhook: str | None, db: str | None, full: bool, queue: bool) -> None:
    """Copy the portal's CRM into the store: in full the first time, then only changes."""
    from rop.bitrix.client import parse_webhook
    from rop.bitrix.progress import ConsoleProgress
    from rop.bitrix.sync import SyncError, run_sync
    from rop.bitrix.sync_remote import ForwardError, forward_sync, is_lock_error
    from rop.store.db import StoreError, open_store
    from rop.store.facts import ensure_facts

    settings = load_settings(webhook=webhook, db=db)
    from rop.logs import configure

    configure(settings.log_format, settings.rest_log, settings.rest_log_days)
    if not settings.webhook:
        raise UsageProblem("no webhook: pass --webhook URL or set ROP_WEBHOOK")
    try:
        hook = parse_webhook(settings.webhook)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    if queue:
        from rop.cli.jobs import queue_webhook_sync

        click.echo(queue_webhook_sync(settings, full))
        return
    try:
        store = open_store(settings.db)
    except StoreError as exc:
        if not is_lock_error(str(exc)):
            raise UsageProblem(str(exc)) from None
        try:
            answer = forward_sync(settings.db, full=full, portal=hook.portal)
        except ForwardError as problem:
            raise UsageProblem(str(problem)) from None
        click.echo("the store is open in `rop serve`; the server ran the sync:")
        click.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    if settings.sync_memory_limit:
        try:
            store.bound(
                settings.sync_memory_limit,
                settings.db_threads,
                "raise ROP_SYNC_MEMORY_LIMIT and run the sync again (it resumes where it stopped)",
            )
        except StoreError as exc:  # a limit below what the open store already holds
            store.close()
            raise UsageProblem(f"ROP_SYNC_MEMORY_LIMIT is too small: {exc}") from None
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
                # The process and the store are the sync's (run_sync: ``alone``).
                alone=True,
            )
            # The sync refreshed its portal's facts (rebuilt whole if they lagged);
            # the store's other portals whose facts lag, under the same bound.
            rebuilt = ensure_facts(store)
        except (SyncError, StoreError) as exc:
            # A bad token, a broken reply, a full disk or a damaged file: one
            # line naming the portal or the store, exit 2 like every other
            # problem the user must fix (rop.cli.problems).
            raise UsageProblem(str(exc)) from None
    for line in result.summary_lines():
        click.echo(line)
    if rebuilt:
        click.echo(f"stored facts rebuilt for: {', '.join(rebuilt)}")
