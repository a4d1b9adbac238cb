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


@plans_command.command("fact")
@_db
@_portal_opt
@click.option("--period", required=True, help="2026-11 or 2026-Q4")
@click.option("--viewer", type=WHOLE, help="Only what this user may see")
@click.option("--today", help="The day to measure from, YYYY-MM-DD (default: the portal's today)")
def plans_fact(db, portal, period, viewer, today) -> None:
    """Plan versus fact for PERIOD: plan, fact, % done, gap, status and both forecasts."""
    from datetime import date

    from rop.report.build import build_report
    from rop.report.filter import ReportFilter
    from rop.report.plans import parse_period

    p = report_call(parse_period, period)
    try:
        day = date.fromisoformat(today) if today else None
    except ValueError:
        raise UsageProblem(f"bad date for --today: {today!r} (expected YYYY-MM-DD)") from None
    flt = ReportFilter(p.start, p.end, today=day, viewer=viewer, compare=False)
    with _open(db, False) as store:
        section = report_call(build_report, store, flt, portal=portal)["plans"]
    click.echo(f"{section['period']['key']}: {section['working_days_elapsed']} of "
               f"{section['working_days']} working days, expected {section['expected_pct']:.1f} %")  # fmt: skip

    def num(v):
        return "—" if v is None else f"{v:,.2f}".rstrip("0").rstrip(".")

    lines = [(r["name_en"], r) for r in section["rows"]]
    lines += [(f"[{d['name_en']}]", d) for d in section["departments"]]
    lines.append(("TOTAL", section["total"]))
    for f in section["figures"]:
        click.echo(f"\n{f}\tplan\tfact\t% done\tgap\tstatus\trun rate\tpipeline")
        for name, line in lines:
            c = line["figures"][f]
            fc = line.get("forecast") or {}
            click.echo("\t".join([
                name, num(c["plan"]), num(c["fact"]),
                "—" if c["pct"] is None else f"{c['pct']:.1f} %", num(c["gap"]),
                c["status"] or "—", num((fc.get("run_rate") or {}).get(f)),
                num((fc.get("pipeline") or {}).get(f)),
            ]))  # fmt: skip
