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


@cli.command("demo")
@click.option("--deals", default=20000, show_default=True, help="Deals in the generated portal")
@click.option("--port", type=int, help="Web report port (default: ROP_PORT or 8000)")
@click.option("--host", help="Address to listen on (default: ROP_HOST or 127.0.0.1)")
def demo_command(deals: int, port: int | None, host: str | None) -> None:
    """The whole product on a generated demo portal: generate, emulate, sync, serve."""
    from rop.rundemo import run_demo

    run_demo(load_settings(port=port, host=host), deals=deals, say=click.echo)


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


# -- the report (rop report / drill / rights) ---------------------------------


def _report_filter_options(fn):
    """The filter options shared by `rop report` and `rop drill` (CONTRACT.md §2)."""
    options = [
        click.option("--db", type=click.Path(dir_okay=False), help="Store file (default: ROP_DB)"),
        click.option("--portal", help="Portal key, when the store holds several"),
        click.option("--from", "date_from", help="First day, YYYY-MM-DD (portal's time zone)"),
        click.option("--to", "date_to", help="Last day, YYYY-MM-DD (inclusive)"),
        click.option("--period", help="Preset instead of dates: this_month, last_week, ..."),
        click.option("--pipeline", "pipelines", type=int, multiple=True, help="Pipeline ID"),
        click.option("--key-stage", "key_stages", multiple=True, help="Key deal stage ID"),
        click.option("--key-status", "key_statuses", multiple=True, help="Key lead status ID"),
        click.option("--section", "sections", multiple=True, help="Section to show (default: all)"),
        click.option("--department", "departments", type=int, multiple=True, help="Department ID"),
        click.option("--manager", "managers", type=int, multiple=True, help="Manager user ID"),
        click.option("--viewer", type=int, help="Show what this user may see"),
        click.option("--min-call-seconds", type=int, default=0, show_default=True),
        click.option("--max-call-seconds", type=int),
        click.option(
            "--by", type=click.Choice(["manager", "department", "source", "pipeline"]),
            default="manager", show_default=True, help="What a row is",
        ),
        click.option("--no-compare", is_flag=True, help="Leave out the previous period"),
        click.option("--lang", type=click.Choice(["ru", "en"]), default="ru", show_default=True),
        click.option("--out", type=click.Path(dir_okay=False), help="Write to FILE"),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _open_report_store(db: str | None):
    from pathlib import Path

    from rop.store.db import StoreError, open_store

    path = load_settings(db=db).db
    if not Path(path).exists():
        raise UsageProblem(f"no store at {path}: run `rop sync` first or pass --db")
    try:
        return open_store(path)
    except StoreError as exc:
        raise UsageProblem(str(exc)) from None


def _report_call(fn, *args, **kwargs):
    """Run a report function; bad input and refused access become one line, exit 2."""
    from rop.report.filter import AccessDenied, ReportInputError

    try:
        return fn(*args, **kwargs)
    except ReportInputError as exc:
        raise UsageProblem(str(exc)) from None
    except AccessDenied as exc:
        raise UsageProblem(f"access denied: {exc}") from None


def _make_report_filter(store, o: dict):
    from rop.report.options import make_filter

    return _report_call(
        make_filter, store, portal=o["portal"], date_from=o["date_from"], date_to=o["date_to"],
        period=o["period"], pipelines=o["pipelines"], key_stages=o["key_stages"],
        key_statuses=o["key_statuses"], sections=o["sections"], departments=o["departments"],
        managers=o["managers"], min_call_seconds=o["min_call_seconds"],
        max_call_seconds=o["max_call_seconds"], by=o["by"], compare=not o["no_compare"],
        viewer=o["viewer"],
    )  # fmt: skip


def _emit(text: str, out: str | None) -> None:
    if out:
        with open(out, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=not text.endswith("\n"))


@cli.command("report")
@_report_filter_options
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv", "xlsx", "table"]), default="table",
    show_default=True,
)  # fmt: skip
def report_command(fmt: str, **o) -> None:
    """The report: rows per manager, department subtotals, total and the previous period."""
    from rop.report.build import build_report
    from rop.report.export import report_to_csv, report_to_xlsx
    from rop.report.table import report_to_table

    if fmt == "xlsx" and not o["out"]:
        raise UsageProblem("--format xlsx needs --out FILE")
    with _open_report_store(o["db"]) as store:
        flt = _make_report_filter(store, o)
        report = _report_call(build_report, store, flt, portal=o["portal"])
    if fmt == "json":
        _emit(json.dumps(report, ensure_ascii=False, indent=2), o["out"])
    elif fmt == "csv":
        _emit(report_to_csv(report, o["lang"]), o["out"])
    elif fmt == "xlsx":
        report_to_xlsx(report, o["out"], o["lang"])
    else:
        _emit(report_to_table(report, o["lang"]), o["out"])


@cli.command("drill")
@click.option("--figure", required=True, help="Figure key, e.g. deals_won or deal_stage:C1:NEW")
@click.option("--user", "user_id", type=int, help="Manager's row (default: the total)")
@click.option("--department-row", "department_id", type=int, help="Department subtotal's row")
@click.option("--key", "row_key", help="Row key when rows are by department/source/pipeline")
@click.option("--sort", help="Column to sort by")
@click.option("--desc", is_flag=True, help="Sort descending")
@click.option("--limit", type=int)
@click.option("--offset", type=int, default=0)
@_report_filter_options
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv", "xlsx", "table"]), default="json",
    show_default=True,
)  # fmt: skip
def drill_command(
    figure: str, user_id: int | None, department_id: int | None, row_key: str | None,
    sort: str | None, desc: bool, limit: int | None, offset: int, fmt: str, **o,
) -> None:  # fmt: skip
    """The records behind one figure of the report."""
    from rop.report.build import drill
    from rop.report.export import drill_to_csv, drill_to_xlsx
    from rop.report.table import drill_to_table

    if fmt == "xlsx" and not o["out"]:
        raise UsageProblem("--format xlsx needs --out FILE")
    with _open_report_store(o["db"]) as store:
        flt = _make_report_filter(store, o)
        result = _report_call(
            drill, store, flt, figure, user_id=user_id, department_id=department_id,
            portal=o["portal"], sort=sort, desc=desc, offset=offset, limit=limit, key=row_key,
        )  # fmt: skip
    if fmt == "json":
        _emit(json.dumps(result, ensure_ascii=False, indent=2), o["out"])
    elif fmt == "csv":
        _emit(drill_to_csv(result, o["lang"]), o["out"])
    elif fmt == "xlsx":
        drill_to_xlsx(result, o["out"], o["lang"])
    else:
        _emit(drill_to_table(result, o["lang"]), o["out"])


@cli.group("rights", invoke_without_command=True)
@click.option("--db", type=click.Path(dir_okay=False), help="Store file (default: ROP_DB)")
@click.option("--portal", help="Portal key, when the store holds several")
@click.pass_context
def rights_command(ctx: click.Context, db: str | None, portal: str | None) -> None:
    """Who sees whom: show rights, or allow/deny/clear overrides and mark report admins."""
    ctx.obj = {"db": db, "portal": portal}
    if ctx.invoked_subcommand is None:
        ctx.invoke(rights_show)


def _rights_run(ctx: click.Context, action) -> None:
    from rop.report.portal import select_portal

    with _open_report_store(ctx.obj["db"]) as store:
        key = _report_call(select_portal, store, ctx.obj["portal"]).key
        _report_call(action, store, key)


@rights_command.command("show")
@click.pass_context
def rights_show(ctx: click.Context) -> None:
    """Portal admins, report admins and every override."""
    from rop.report.scope import list_rights

    def show(store, key):
        r = list_rights(store, key)
        click.echo(f"portal admins: {', '.join(map(str, r['portal_admins'])) or '—'}")
        click.echo(f"report admins: {', '.join(map(str, r['report_admins'])) or '—'}")
        for o in r["overrides"]:
            verb = "sees" if o["allow"] else "does not see"
            click.echo(f"user {o['viewer_id']} {verb} user {o['user_id']}")

    _rights_run(ctx, show)


@rights_command.command("allow")
@click.argument("viewer", type=int)
@click.argument("user", type=int)
@click.pass_context
def rights_allow(ctx: click.Context, viewer: int, user: int) -> None:
    """Let VIEWER see USER's rows and records."""
    from rop.report.scope import set_override

    _rights_run(ctx, lambda store, key: set_override(store, key, viewer, user, True))
    click.echo(f"user {viewer} now sees user {user}")


@rights_command.command("deny")
@click.argument("viewer", type=int)
@click.argument("user", type=int)
@click.pass_context
def rights_deny(ctx: click.Context, viewer: int, user: int) -> None:
    """Hide USER's rows and records from VIEWER."""
    from rop.report.scope import set_override

    _rights_run(ctx, lambda store, key: set_override(store, key, viewer, user, False))
    click.echo(f"user {viewer} no longer sees user {user}")


@rights_command.command("clear")
@click.argument("viewer", type=int)
@click.argument("user", type=int, required=False)
@click.pass_context
def rights_clear(ctx: click.Context, viewer: int, user: int | None) -> None:
    """Remove VIEWER's override for USER (or all of VIEWER's overrides)."""
    from rop.report.scope import clear_override

    _rights_run(
        ctx, lambda store, key: click.echo(f"removed {clear_override(store, key, viewer, user)}")
    )


@rights_command.command("admin")
@click.argument("user", type=int)
@click.option("--off", is_flag=True, help="Take the report admin mark away")
@click.pass_context
def rights_admin(ctx: click.Context, user: int, off: bool) -> None:
    """Mark USER as a report administrator (sees everyone)."""
    from rop.report.scope import set_report_admin

    _rights_run(ctx, lambda store, key: set_report_admin(store, key, user, not off))
    click.echo(f"user {user} is {'no longer ' if off else ''}a report admin")


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


__all__ = ["cli", "main", "load_settings", "UsageProblem"]


if __name__ == "__main__":
    main()
