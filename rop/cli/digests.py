"""`rop digests`: list, add, remove scheduled digests; send one now (docs/DIGESTS.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from rop.cli.problems import UsageProblem
from rop.cli.report import report_call
from rop.cli.store import HeldByServer, open_report_store, store_options


def _digest_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from rop.digests.errors import DigestDenied, DigestInputError

    try:
        return report_call(fn, *args, **kwargs)
    except DigestInputError as exc:
        raise UsageProblem(str(exc)) from None
    except DigestDenied as exc:
        raise UsageProblem(f"access denied: {exc}") from None


def _open(ctx: click.Context, what: str) -> Any:
    try:
        return open_report_store(ctx.obj["db"])
    except HeldByServer as held:
        raise UsageProblem(f"{held.message}: stop the server to {what}") from None


def _portal(store: Any, ctx: click.Context) -> str:
    from rop.report.portal import select_portal

    return str(report_call(select_portal, store, ctx.obj["portal"]).key)


@click.group("digests", invoke_without_command=True)
@click.option("--db", type=click.Path(dir_okay=False), help="Store file or postgresql:// URL")
@click.option("--portal", help="Portal key, when the store holds several")
@click.pass_context
def digests_command(ctx: click.Context, db: str | None, portal: str | None) -> None:
    """Scheduled digests to Bitrix24 chat and e-mail: list, add, remove, send-now."""
    ctx.obj = {"db": db, "portal": portal}
    if ctx.invoked_subcommand is None:
        ctx.invoke(digests_list)


@digests_command.command("list")
@store_options
@click.option("--user", type=click.IntRange(min=1), help="Only this reader's digests")
@click.option("--log", "show_log", is_flag=True, help="Also the delivery log (latest 20)")
@click.pass_context
def digests_list(ctx: click.Context, user: int | None, show_log: bool) -> None:
    """Every subscription, one line each."""
    from rop.digests.sends import log_lines
    from rop.digests.subscriptions import listed

    with _open(ctx, "read the digests") as store:
        key = _portal(store, ctx)
        subs = listed(store, key, user)
        for sub in subs:
            click.echo(sub.describe())
        if not subs:
            click.echo("no digests")
        if show_log:
            for line in log_lines(store, key, 20):
                reason = f" ({line['reason']})" if line["reason"] else ""
                click.echo(
                    f"{line['logged_at']:%Y-%m-%d %H:%M} #{line['subscription_id']} "
                    f"{line['slot']} {line['channel']}: {line['outcome']}{reason}"
                )


@digests_command.command("add")
@store_options
@click.argument("user", type=click.IntRange(min=1))
@click.option("--daily", "frequency", flag_value="daily", help="Every (working) day")
@click.option("--weekly", "frequency", flag_value="weekly", default=True, help="Once a week")
@click.option("--monthly", "frequency", flag_value="monthly", help="Once a month")
@click.option("--weekday", default=None, help="mon..sun (weekly; default mon)")
@click.option("--day", "month_day", default=None, help="Day of the month, 1..31 (monthly)")
@click.option("--at", "at_time", default="09:00", show_default=True, help="Reader's local time")
@click.option("--any-day", is_flag=True, help="Also on days off (default: working days only)")
@click.option(
    "--period",
    type=click.Choice(["yesterday", "last_week", "last_month", "month_to_date"]),
    help="Period before the send day (default by frequency)",
)
@click.option("--channel", "channels", default="chat", show_default=True,
              help="chat, email or chat,email")  # fmt: skip
@click.option("--xlsx", is_flag=True, help="Attach the report as XLSX to the e-mail")
@click.option("--lang", type=click.Choice(["ru", "en"]), default="ru", show_default=True)
@click.option("--pipeline", "pipelines", multiple=True, help="Saved filter: pipeline ID")
@click.option("--department", "departments", multiple=True, help="Saved filter: department ID")
@click.option("--manager", "managers", multiple=True, help="Saved filter: manager ID")
@click.option("--section", "sections", multiple=True, help="Saved filter: deals, leads, ...")
@click.option("--as", "actor", type=click.IntRange(min=1), help="Act as this user (their rights)")
@click.pass_context
def digests_add(ctx: click.Context, user: int, actor: int | None, **kw: Any) -> None:
    """Subscribe USER (a user ID) to a digest."""
    from rop.digests.subscriptions import add, make

    saved = {k: list(kw.pop(k)) for k in ("pipelines", "departments", "managers", "sections")}
    with _open(ctx, "change the digests") as store:
        key = _portal(store, ctx)
        sub = _digest_call(
            make, key, user, frequency=kw["frequency"], weekday=kw["weekday"],
            month_day=kw["month_day"], at_time=kw["at_time"], workdays_only=not kw["any_day"],
            period=kw["period"], filter=saved, channels=kw["channels"], xlsx=kw["xlsx"],
            language=kw["lang"],
        )  # fmt: skip
        click.echo("added " + _digest_call(add, store, sub, actor=actor).describe())


@digests_command.command("remove")
@store_options
@click.argument("sub_id", type=click.IntRange(min=1))
@click.option("--as", "actor", type=click.IntRange(min=1), help="Act as this user (their rights)")
@click.pass_context
def digests_remove(ctx: click.Context, sub_id: int, actor: int | None) -> None:
    """Remove digest SUB_ID (its delivery log stays)."""
    from rop.digests.subscriptions import remove

    with _open(ctx, "change the digests") as store:
        key = _portal(store, ctx)
        click.echo("removed " + _digest_call(remove, store, key, sub_id, actor=actor).describe())


@digests_command.command("send-now")
@store_options
@click.argument("sub_id", type=click.IntRange(min=1))
@click.pass_context
def digests_send_now(ctx: click.Context, sub_id: int) -> None:
    """Send digest SUB_ID now, whatever its schedule (chat by ROP_WEBHOOK, e-mail by ROP_SMTP_*)."""
    from rop.config import load_settings
    from rop.digests.content import Links
    from rop.digests.run import send_now
    from rop.digests.targets import mail_sender, options, targets
    from rop.web.digests import digest_config

    settings = load_settings()
    config = digest_config(settings)
    hooks = [settings.webhook] if settings.webhook else []
    with _open(ctx, "send a digest") as store:
        key = _portal(store, ctx)
        target = next((t for t in targets(store, config, webhooks=hooks) if t.portal == key), None)
        links = target.links if target else Links(report_url=config.report_url)
        outcomes = _digest_call(
            send_now, store, sub_id, portal=key, chat=target.chat if target else None,
            mail=mail_sender(config), options=options(config, links),
        )  # fmt: skip
    failed = False
    for o in outcomes:
        reason = f" ({o.reason})" if o.reason else ""
        click.echo(f"#{o.subscription_id} {o.channel}: {o.outcome}{reason}")
        failed |= o.outcome in ("failed", "retry")
    if failed:
        raise SystemExit(1)
