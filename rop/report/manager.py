"""One manager whole (issue 15): their row of the report against the previous
period and their department's average, their last 12 weeks, their stuck deals.

Everything here is read from the report and the drill-down engine, never from
SQL of its own: the page's numbers are the report's row, and a week's count is
the number of records its drill-down lists, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from rop.metrics.catalogue import figure as find_figure
from rop.metrics.errors import ReportInputError
from rop.report.context import check_user, prepare
from rop.report.drill import drill
from rop.report.filter import ReportFilter
from rop.store.db import Store

WEEKS = 12

# The weekly trend: a figure of the catalogue, the section it needs, and the
# drill-down column that dates each of its records (portal-local ISO moments).
WEEKLY: tuple[tuple[str, str, str, str], ...] = (
    ("new", "deals_new", "deals", "date_create"),
    ("won", "deals_won", "deals", "close_time"),
    ("lost", "deals_lost", "deals", "close_time"),
    ("calls", "calls_total", "calls", "started"),
)


def manager_filter(flt: ReportFilter) -> ReportFilter:
    """The report a manager's page reads: the chosen filter, but all departments
    and managers (the page is about one manager and their whole department)."""
    return replace(flt, departments=(), managers=(), by="manager")


def check_manager(store: Store, flt: ReportFilter, user_id: int, portal: str | None = None) -> date:
    """Refuse a manager the viewer may not see (AccessDenied) or the store does not
    know (ReportInputError ``unknown_user``), as a drill-down of their row would;
    returns the report's today."""
    prep = prepare(store, flt, portal)
    check_user(store, prep.portal.key, prep.scope, user_id)
    return prep.today


def _averaged(key: str, kind: str) -> bool:
    """Counts and sums are averaged per manager; means and shares are the
    department's own (a department's win rate, not a mean of win rates)."""
    try:
        return find_figure(key).measure in ("count", "sum")
    except ReportInputError:
        return kind in ("count", "amount")


def manager_figures(
    report: dict[str, Any], user_id: int, department_id: int | None = None
) -> dict[str, Any]:
    """The manager's row of ``report`` (built by manager_filter), its previous-period
    figures and the department's, each column with its department average.

    A manager without a row (nothing in the period) gets every figure's empty
    value: 0 for counts and sums, None for ratios, as the report would show.
    """
    from rop.report.build import empty_value

    row = next((r for r in report.get("rows", []) if r.get("user_id") == user_id), None)
    prev = report.get("previous") or {}
    prev_row = next(
        (r["figures"] for r in prev.get("rows", []) if r.get("user_id") == user_id), None
    )
    dept_id = row.get("department_id") if row else department_id
    members = [r for r in report.get("rows", []) if r.get("department_id") == dept_id]
    dept = next(
        (d for d in report.get("departments", []) if d.get("department_id") == dept_id), None
    )
    figures = []
    for col in report.get("columns", []):
        key, kind = col["key"], col.get("kind", "count")
        try:
            fig = find_figure(key)
            empty, now = empty_value(fig), fig.now
        except ReportInputError:
            empty, now = (0 if kind == "count" else None), False
        value = row["figures"].get(key, empty) if row else empty
        dept_value = dept["figures"].get(key) if dept else None
        average = dept_value
        if dept_value is not None and _averaged(key, kind):
            average = round(dept_value / len(members), 2) if members else None
        figures.append(
            {
                **col,
                "value": value,
                "previous": None if now or not prev else (prev_row or {}).get(key, empty),
                "now": now,
                "department_value": dept_value,
                "department_average": average,
                "averaged": _averaged(key, kind),
            }
        )
    return {
        "row": row,
        "department_id": dept_id,
        "department_managers": len(members),
        "figures": figures,
    }


def last_weeks(today: date, weeks: int = WEEKS) -> list[tuple[date, date]]:
    """The last ``weeks`` weeks up to ``today``, Monday to Sunday, the current one
    cut at today."""
    monday = today - timedelta(days=today.weekday())
    out = []
    for i in range(weeks - 1, -1, -1):
        start = monday - timedelta(days=7 * i)
        out.append((start, min(start + timedelta(days=6), today)))
    return out


def weekly_trend(
    store: Store,
    flt: ReportFilter,
    user_id: int,
    today: date,
    portal: str | None = None,
) -> dict[str, Any]:
    """New, won and lost deals and calls of one manager per week, the last 12 weeks.

    One drill-down per figure over the 12 weeks (the same definition, scope and
    call bounds as the report), its records counted by the week they fall in:
    each week's number is what that week's drill-down lists.
    """
    weeks = last_weeks(today)
    span = replace(flt, date_from=weeks[0][0], date_to=weeks[-1][1], compare=False)
    out: dict[str, Any] = {"weeks": [[a.isoformat(), b.isoformat()] for a, b in weeks]}
    for name, key, section, column in WEEKLY:
        if section not in flt.sections:
            continue
        listed = drill(store, span, key, user_id=user_id, portal=portal)
        counts = [0] * len(weeks)
        for rec in listed["records"]:
            moment = rec.get(column)
            if not moment:
                continue
            day = date.fromisoformat(str(moment)[:10])
            index = (day - weeks[0][0]).days // 7
            if 0 <= index < len(weeks):
                counts[index] += 1
        out[name] = counts
    return out


def stuck_deals(
    store: Store,
    flt: ReportFilter,
    user_id: int,
    pipelines: list[int],
    portal: str | None = None,
    limit: int = 5,
) -> list[dict[str, Any]]:
    """The manager's deals stuck at a stage (stage analytics' ``deal_stuck``), per
    pipeline that has any: the count and the longest-waiting few."""
    if "deals" not in flt.sections:
        return []
    out = []
    for pipe in pipelines:
        key = f"deal_stuck:{pipe}"
        listed = drill(
            store, flt, key, user_id=user_id, portal=portal, sort="open_days", desc=True,
            limit=limit,
        )  # fmt: skip
        if listed["total_records"]:
            out.append(
                {
                    "pipeline_id": pipe,
                    "figure": key,
                    "count": listed["value"],
                    "records": listed["records"],
                }
            )
    return out
