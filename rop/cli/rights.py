"""`rop rights`: who sees whom, and the overrides and report admins that change it."""

from __future__ import annotations

import click

from rop.cli.problems import WHOLE, UsageProblem
from rop.cli.report import report_call
from rop.cli.store import HeldByServer, open_report_store, store_options


@click.group("rights", invoke_without_command=True)
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    help="Store file or postgresql:// URL (default: ROP_DB)",
)
@click.option("--portal", help="Portal key, when the store holds several")
@click.pass_context
def rights_command(ctx: click.Context, db: str | None, portal: str | None) -> None:
    """Who sees whom: show rights, or allow/deny/clear overrides and mark report admins."""
    ctx.obj = {"db": db, "portal": portal}
    if ctx.invoked_subcommand is None:
        ctx.invoke(rights_show)


def _rights_run(ctx: click.Context, action) -> None:
    from rop.report.portal import select_portal

    try:
        store = open_report_store(ctx.obj["db"])
    except HeldByServer as held:
        raise UsageProblem(f"{held.message}: stop the server to change the rights") from None
    with store:
        key = report_call(select_portal, store, ctx.obj["portal"]).key
        report_call(action, store, key)


@rights_command.command("show")
@store_options
@click.pass_context
def rights_show(ctx: click.Context) -> None:
    """Portal admins, report admins and every override."""
    from rop.report.portal import select_portal
    from rop.report.scope import list_rights

    try:
        store = open_report_store(ctx.obj["db"])
    except HeldByServer as held:
        from rop.cli import remote

        r = remote.rights(held.holder, ctx.obj["portal"])
    else:
        with store:
            key = report_call(select_portal, store, ctx.obj["portal"]).key
            r = list_rights(store, key)
    click.echo(f"portal admins: {', '.join(map(str, r['portal_admins'])) or '—'}")
    click.echo(f"report admins: {', '.join(map(str, r['report_admins'])) or '—'}")
    for o in r["overrides"]:
        verb = "sees" if o["allow"] else "does not see"
        click.echo(f"user {o['viewer_id']} {verb} user {o['user_id']}")


@rights_command.command("allow")
@store_options
@click.argument("viewer", type=WHOLE)
@click.argument("user", type=WHOLE)
@click.pass_context
def rights_allow(ctx: click.Context, viewer: int, user: int) -> None:
    """Let VIEWER see USER's rows and records."""
    from rop.report.scope import set_override

    _rights_run(ctx, lambda store, key: set_override(store, key, viewer, user, True))
    click.echo(f"user {viewer} now sees user {user}")


@rights_command.command("deny")
@store_options
@click.argument("viewer", type=WHOLE)
@click.argument("user", type=WHOLE)
@click.pass_context
def rights_deny(ctx: click.Context, viewer: int, user: int) -> None:
    """Hide USER's rows and records from VIEWER."""
    from rop.report.scope import set_override

    _rights_run(ctx, lambda store, key: set_override(store, key, viewer, user, False))
    click.echo(f"user {viewer} no longer sees user {user}")


@rights_command.command("clear")
@store_options
@click.argument("viewer", type=WHOLE)
@click.argument("user", type=WHOLE, required=False)
@click.pass_context
def rights_clear(ctx: click.Context, viewer: int, user: int | None) -> None:
    """Remove VIEWER's override for USER (or all of VIEWER's overrides)."""
    from rop.report.scope import clear_override

    _rights_run(
        ctx, lambda store, key: click.echo(f"removed {clear_override(store, key, viewer, user)}")
    )


@rights_command.command("admin")
@store_options
@click.argument("user", type=WHOLE)
@click.option("--off", is_flag=True, help="Take the report admin mark away")
@click.pass_context
def rights_admin(ctx: click.Context, user: int, off: bool) -> None:
    """Mark USER as a report administrator (sees everyone)."""
    from rop.report.scope import set_report_admin

    _rights_run(ctx, lambda store, key: set_report_admin(store, key, user, not off))
    click.echo(f"user {user} is {'no longer ' if off else ''}a report admin")
