"""`rop plans`: show, set, import and export plans, and their history.

The CLI on the store's machine is the report's administrator; ``--as USER``
acts as that user instead, with their rights (a department head sets the
plans of their departments only).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from rop.cli.problems import WHOLE, UsageProblem
from rop.cli.report import report_call
from rop.cli.store import HeldByServer, open_report_store


def _open(db: str | None, writing: bool):
    try:
        return open_report_store(db)
    except HeldByServer as held:
        verb = "change" if writing else "read"
        raise UsageProblem(
            f"{held.message}: stop the server to {verb} plans here, or use its plans page"
        ) from None


def _portal(store, portal: str | None) -> str:
    from rop.report.portal import select_portal

    return report_call(select_portal, store, portal).key


_db = click.option("--db", type=click.Path(dir_okay=False), help="Store file (default: ROP_DB)")
_portal_opt = click.option("--portal", help="Portal key, when the store holds several")
_as = click.option("--as", "actor", type=WHOLE, help="Act as this user, with their rights")


@click.group("plans")
def plans_command() -> None:
    """Plans per manager and department: show, set, import, export, history."""


@plans_command.command("show")
@_db
@_portal_opt
@click.option("--period", help="2026-11 or 2026-Q4 (default: every period)")
@click.option("--viewer", type=WHOLE, help="Only what this user may see")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of lines")
def plans_show(db, portal, period, viewer, as_json) -> None:
    """The plans in force."""
    from rop.report.plans import list_plans, parse_period

    p = report_call(parse_period, period) if period else None
    with _open(db, False) as store:
        key = _portal(store, portal)
        rows = report_call(list_plans, store, key, viewer=viewer, period=p)
    if as_json:
        click.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['period']}\t{r['subject']} {r['subject_id']}\t{r['figure']}\t{r['value']:g}"
        )


@plans_command.command("set")
@_db
@_portal_opt
@_as
@click.argument("subject", type=click.Choice(["user", "department"]))
@click.argument("subject_id", type=WHOLE)
@click.argument("figure")
@click.argument("period")
@click.argument("value")
def plans_set(db, portal, actor, subject, subject_id, figure, period, value) -> None:
    """Set the plan of SUBJECT (user|department) SUBJECT_ID for FIGURE in PERIOD.

    VALUE may be written the Russian way (1 500 000,50); "-" removes the plan.
    """
    from rop.report.plans import PlanEntry, parse_period, parse_value, set_plans

    p = report_call(parse_period, period)
    v = None if value.strip() == "-" else report_call(parse_value, value)
    with _open(db, True) as store:
        key = _portal(store, portal)
        n = report_call(set_plans, store, key, [PlanEntry(subject, subject_id, figure, p, v)],
                        actor=actor)  # fmt: skip
    click.echo(f"{n} plan(s) changed")


@plans_command.command("import")
@_db
@_portal_opt
@_as
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
def plans_import(db, portal, actor, file) -> None:
    """Set the plans of FILE, CSV or XLSX (the template of `rop plans export`)."""
    from rop.report.plans import set_plans
    from rop.report.plans_file import read_entries

    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise UsageProblem(f"cannot read {file}: {exc.strerror}") from None
    entries = report_call(read_entries, data, file)
    with _open(db, True) as store:
        key = _portal(store, portal)
        n = report_call(set_plans, store, key, entries, actor=actor)
    click.echo(f"{len(entries)} line(s) read, {n} plan(s) changed")


@plans_command.command("export")
@_db
@_portal_opt
@click.option("--period", required=True, help="2026-11 or 2026-Q4")
@click.option("--viewer", type=WHOLE, help="Only what this user may see")
@click.option(
    "--out", type=click.Path(dir_okay=False), help="FILE (.csv or .xlsx; default: CSV to stdout)"
)
def plans_export(db, portal, period, viewer, out) -> None:
    """The template for PERIOD: every department and manager, with the plans in force."""
    from rop.report.plans import parse_period
    from rop.report.plans_file import template_rows, to_csv, to_xlsx

    p = report_call(parse_period, period)
    with _open(db, False) as store:
        key = _portal(store, portal)
        rows = report_call(template_rows, store, key, p, viewer=viewer)
    data = to_xlsx(rows) if out and out.lower().endswith(".xlsx") else to_csv(rows)
    if out:
        try:
            Path(out).write_bytes(data)
        except OSError as exc:
            raise UsageProblem(f"cannot write {out}: {exc.strerror}") from None
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(data.decode("utf-8-sig"), nl=False)


@plans_command.command("history")
@_db
@_portal_opt
@click.option("--viewer", type=WHOLE, help="Only what this user may see")
def plans_history(db, portal, viewer) -> None:
    """Every change of a plan: when, who, old and new value."""
    from rop.report.plans import plan_history

    with _open(db, False) as store:
        key = _portal(store, portal)
        rows = report_call(plan_history, store, key, viewer=viewer)
    for r in rows:
        who = "CLI" if r["changed_by"] is None else f"user {r['changed_by']}"
        old = "—" if r["old_value"] is None else f"{r['old_value']:g}"
        new = "—" if r["new_value"] is None else f"{r['new_value']:g}"
        click.echo(f"{r['changed_at']}\t{who}\t{r['period']}\t{r['subject']} {r['subject_id']}"
                   f"\t{r['figure']}\t{old} -> {new}")  # fmt: skip
