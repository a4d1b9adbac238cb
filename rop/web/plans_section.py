"""The report page's plan/fact section as a view model: texts, bars and colours."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rop.web.formatting import fmt_value


def _kind(figure: str, columns: dict[str, dict[str, Any]]) -> str:
    return str(columns.get(figure, {}).get("kind", "count"))


def plan_lines(
    report: dict[str, Any],
    lang: str,
    currency: str,
    drill: Callable[..., str] | None = None,
) -> dict[str, Any] | None:
    """One line per manager, department and the total, per planned figure; None: no plans.

    ``drill(user=, department=)`` links a pipeline forecast to the deals behind it."""
    section = report.get("plans") or {}
    if not section.get("period"):
        return None
    columns = {c["key"]: c for c in report["columns"]}
    figures = section["figures"]

    def fmt(figure: str, value: float | None) -> str:
        return (
            fmt_value(_kind(figure, columns), value, currency, lang) if value is not None else "—"
        )

    def line(name: str, cells: dict[str, Any], forecast: dict[str, Any] | None, kind: str,
             **who: Any):  # fmt: skip
        out = []
        href = drill(**who) if drill is not None and forecast else None
        for f in figures:
            c = cells[f]
            pct = c["pct"]
            rr = (forecast or {}).get("run_rate", {}).get(f)
            pipe = (forecast or {}).get("pipeline", {}).get(f)
            out.append({
                "figure": f, "plan": fmt(f, c["plan"]), "fact": fmt(f, c["fact"]),
                "pct": None if pct is None else f"{pct:.0f} %",
                "bar": None if pct is None else min(100, round(pct)),
                "gap": fmt(f, c["gap"]) if c["gap"] is not None else "—",
                "status": c["status"] or "none",
                "run_rate": fmt(f, rr) if rr is not None else "—",
                "pipeline": fmt(f, pipe) if pipe is not None else "—",
                "pipeline_href": href if pipe is not None else None,
            })  # fmt: skip
        return {"name": name, "kind": kind, "cells": out}

    name = "name_ru" if lang == "ru" else "name_en"
    lines = [line(r[name], r["figures"], r.get("forecast"), "manager", user=r["user_id"])
             for r in section["rows"]]  # fmt: skip
    lines += [line(d[name], d["figures"], d.get("forecast"), "department",
                   department=d["department_id"])
              for d in section["departments"] if d["department_id"] is not None]  # fmt: skip
    total = section["total"]
    lines.append(line("Итого" if lang == "ru" else "Total", total["figures"],
                      total.get("forecast"), "total"))  # fmt: skip
    labels = {f: columns[f]["label_ru" if lang == "ru" else "label_en"] for f in figures}
    fc = section.get("forecast") or {}
    return {
        "period": section["period"]["key"],
        "expected": f"{section['expected_pct']:.0f} %",
        "working_days": section["working_days"],
        "elapsed": section["working_days_elapsed"],
        "figures": [(f, labels[f]) for f in figures],
        "lines": lines,
        "current": bool(fc.get("current")),
        "methods": {
            k: v[lang if lang in v else "en"] for k, v in (fc.get("methods") or {}).items()
        },
        "stages": [
            {
                **s,
                "probability": "—"
                if s["probability"] is None
                else f"{100 * s['probability']:.0f} %",
                "amount": fmt_value("amount", s["amount"], currency, lang),
                "weighted": fmt_value("amount", s["weighted_amount"], currency, lang),
            }
            for s in fc.get("stages", [])
        ],  # fmt: skip
    }


def trend_plan(report: dict[str, Any], trend: dict[str, Any]) -> list[float] | None:
    """The won-deals plan per bucket of the trend chart (a day or a week), spread over
    the working days of the plan period; None when no plan covers the period."""
    from datetime import date, timedelta

    from rop.report.workdays import is_working_day, working_days

    section = report.get("plans") or {}
    period = section.get("period")
    if not period or "deals_won" not in section.get("figures", []):
        return None
    plan = section["total"]["figures"]["deals_won"]["plan"]
    if not plan:
        return None
    first, last = date.fromisoformat(period["from"]), date.fromisoformat(period["to"])
    total = working_days(first, last)
    step = 7 if trend.get("unit") == "week" else 1
    out = []
    for label in trend.get("labels", []):
        start = date.fromisoformat(label)
        days = [start + timedelta(days=i) for i in range(step)]
        n = sum(1 for d in days if first <= d <= last and is_working_day(d))
        out.append(round(plan * n / total, 2) if total else 0.0)
    return out
