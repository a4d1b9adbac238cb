"""Plan versus fact for the report's period (the report JSON's ``plans`` key).

The report's period must be one whole month or quarter (a plan covers one);
for any other period the section says so and carries no rows. The fact of a
row is the report's own figure of that row, so plan/fact and the table never
disagree. For a period that has not ended, the expected share done "today"
is linear in working days of the Russian production calendar
(rop.report.workdays); a row is green at or above it, amber up to
``AMBER_POINTS`` percentage points below it, red further below.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from rop.report.forecast import forecast
from rop.report.plans import MAIN_FIGURES, PLANNABLE, PlanPeriod, period_of, plans_for
from rop.report.workdays import working_days

AMBER_POINTS = 10.0


def expected_share(period: PlanPeriod, today: date) -> tuple[int, int, float]:
    """(working days in the period, elapsed by ``today`` inclusive, expected % done)."""
    total = working_days(period.start, period.end)
    if today < period.start:
        elapsed = 0
    elif today > period.end:
        elapsed = total
    else:
        elapsed = working_days(period.start, today)
    pct = 100.0 * elapsed / total if total else 100.0
    return total, elapsed, pct


def cell(plan: float | None, fact: float, expected_pct: float) -> dict[str, Any]:
    """Plan, fact, % done, gap (fact - plan: below 0 is behind) and the colour."""
    pct = 100.0 * fact / plan if plan else None
    status = None
    if plan:
        assert pct is not None
        if pct >= expected_pct:
            status = "green"
        elif pct >= expected_pct - AMBER_POINTS:
            status = "amber"
        else:
            status = "red"
    return {
        "plan": plan,
        "fact": fact,
        "pct": pct,
        "gap": fact - plan if plan is not None else None,
        "status": status,
    }


def plan_fact_section(prep: Any, report: dict[str, Any]) -> dict[str, Any]:
    """The ``plans`` key of the report: plan/fact per row, department and total, and forecasts."""
    flt = prep.flt
    period = period_of(flt.date_from, flt.date_to)
    if period is None or flt.by != "manager":
        reason = "not_a_plan_period" if period is None else "not_by_manager"
        return {"period": None, "reason": reason, "figures": [], "rows": [], "departments": []}
    today = prep.today
    total_days, elapsed, expected = expected_share(period, today)
    plans = plans_for(prep.store, prep.portal.key, period)
    shown = {c["key"] for c in report["columns"]}
    planned = {f for (_, _, f) in plans}
    figures = [f for f in PLANNABLE if f in shown and (f in planned or f in MAIN_FIGURES)]

    def facts(values: dict[str, Any]) -> dict[str, float]:
        return {f: float(values.get(f) or 0) for f in figures}

    rows = []
    by_dept: dict[Any, dict[str, float]] = {}
    for r in report["rows"]:
        fact = facts(r["figures"])
        cells = {}
        for f in figures:
            plan = plans.get(("user", r["user_id"], f))
            cells[f] = cell(plan, fact[f], expected)
            if plan is not None:
                sums = by_dept.setdefault(r["department_id"], {})
                sums[f] = sums.get(f, 0.0) + plan
        rows.append({"key": r["key"], "user_id": r["user_id"], "department_id": r["department_id"],
                     "name_ru": r["name_ru"], "name_en": r["name_en"], "figures": cells})  # fmt: skip
    departments = []
    total_plan: dict[str, float | None] = dict.fromkeys(figures)
    for d in report["departments"]:
        did = d["department_id"]
        fact = facts(d["figures"])
        cells = {}
        for f in figures:
            own = plans.get(("department", did, f)) if did is not None else None
            summed = by_dept.get(did, {}).get(f)
            plan = own if own is not None else summed
            c = cell(plan, fact[f], expected)
            c["plan_source"] = (
                "department" if own is not None else "managers" if summed is not None else None
            )
            c["managers_plan"] = summed
            cells[f] = c
            if plan is not None:
                total_plan[f] = (total_plan[f] or 0.0) + plan
        departments.append({"department_id": did, "name_ru": d["name_ru"],
                            "name_en": d["name_en"], "figures": cells})  # fmt: skip
    total_fact = facts(report["total"]["figures"])
    section: dict[str, Any] = {
        "period": {
            "kind": period.kind,
            "key": period.key,
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
        },
        "today": today.isoformat(),
        "working_days": total_days,
        "working_days_elapsed": elapsed,
        "expected_pct": expected,
        "calendar": "RU production calendar (python-holidays)",
        "figures": figures,
        "rows": rows,
        "departments": departments,
        "total": {"figures": {f: cell(total_plan[f], total_fact[f], expected) for f in figures}},
    }
    section["forecast"] = forecast(prep, period, section, total_days, elapsed)
    return section
