"""Forecasts for a plan period that has not ended, two ways, each with its method.

- Run rate: the fact so far divided by the working days elapsed (today
  included), times the working days of the period.
- Weighted pipeline: the fact so far plus every open deal whose planned close
  date (CLOSEDATE) falls in the period, weighted by the probability that a
  deal in its current stage of its pipeline ends won. The probability comes
  from the stage history of the last 12 months: of the deals that entered the
  stage in that window and have since closed (their latest history row is
  won or lost), the share that won. A stage no closed deal passed through has
  no probability and weighs 0.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from rop.metrics.compile import bind, params_for, relation
from rop.metrics.sources import SOURCES
from rop.report.context import context
from rop.report.periods import _add_months, local_midnight_utc
from rop.report.plans import PlanPeriod
from rop.store import stage_entries
from rop.store.db import Store
from rop.store.facts import facts_ready
from rop.store.rollups import rollups_ready

WINDOW_MONTHS = 12
PIPELINE_FIGURES = {"deals_won_amount": "amount", "deals_won": "count"}


def history_window(today: date) -> tuple[date, date]:
    """The local days the probabilities are learnt from: 12 months up to today."""
    first = _add_months(today.replace(day=1), -WINDOW_MONTHS)
    last_day = (_add_months(first, 1) - timedelta(days=1)).day
    return first.replace(day=min(today.day, last_day)), today


# The history rows of the window, each deal's stage and outcome read from them.
_WINDOW = stage_entries.WINDOW

# DuckDB: pruned before the costly part. Each deal's outcome is its latest row
# (latest moment, then highest ID: IDs are unique per portal), found by hash
# aggregates instead of a window sorting a year of history; only the deals that
# ended won or lost then have their entered stages made distinct; the stages
# only open deals entered still get their row (won and closed 0), as every
# entered stage always had. The window's rows are read again where each step
# uses them (NOT MATERIALIZED) rather than copied once. At 1M deals (2.3M rows
# in the window) about half the CPU of the window below (docs/BENCHMARKS.md,
# "Issue 16: the start's default page"); DuckDB's arg_max would be cheaper
# still but is DuckDB's alone, and on PostgreSQL this form is slower than the
# window (its copy of the rows, read four times), so each engine has its own;
# tests/test_forecast_probabilities.py holds both to one derivation.
_DUCK_SQL = f"""
WITH h AS NOT MATERIALIZED ({_WINDOW}),
last_at AS (SELECT owner_id, max(created_time) AS t FROM h GROUP BY owner_id),
at_last AS (
    SELECT h.id, h.owner_id, h.semantic
    FROM h JOIN last_at l ON l.owner_id = h.owner_id AND l.t = h.created_time
),
last_id AS (SELECT max(id) AS id FROM at_last GROUP BY owner_id),
outcome AS (
    SELECT a.owner_id, a.semantic AS outcome
    FROM at_last a JOIN last_id l ON l.id = a.id
    WHERE a.semantic IN ('S', 'F')
),
entered AS (
    SELECT DISTINCT h.owner_id, h.category_id, h.stage_id, o.outcome
    FROM h JOIN outcome o ON o.owner_id = h.owner_id
    WHERE h.semantic NOT IN ('S', 'F')
)
SELECT category_id, stage_id, sum(won) AS won, sum(closed) AS closed
FROM (
    SELECT category_id, stage_id, CASE WHEN outcome = 'S' THEN 1 ELSE 0 END AS won,
        1 AS closed
    FROM entered
    UNION ALL
    SELECT DISTINCT category_id, stage_id, 0, 0
    FROM h WHERE semantic NOT IN ('S', 'F') AND owner_id IS NOT NULL
) counted
GROUP BY category_id, stage_id
"""  # noqa: S608 (constants only)

# PostgreSQL: each deal's latest row ranked by a window (a sort PostgreSQL does
# well), every entered stage joined to it (rop.store.stage_entries.history_sql).
_PG_SQL = f"""
SELECT category_id, stage_id, sum(won) AS won, sum(closed) AS closed
FROM ({stage_entries.history_sql()}) r
GROUP BY category_id, stage_id
"""  # noqa: S608 (constants only)


def stage_probabilities(
    store: Store,
    portal: str,
    today: date,
    tz: Any,
    materialize: Callable[[str, str, dict[str, Any]], str] | None = None,
    stored: bool | None = None,
) -> dict[tuple[int, str], dict[str, Any]]:
    """(pipeline, stage) -> {won, closed, probability} from the stage history.

    ``stored``: read the stored stage entries (rop.store.stage_entries: one scan
    and grouping, no sort; the same figures), which the caller knows to be
    current; None: asked of the store. Else, with ``materialize``
    (rop.metrics.cache), the shares are computed once per day and data version:
    a pass over a year of history costs about a second at 100k deals, and every
    report of the current month needs them.
    """
    first, last = history_window(today)
    params = {
        "portal": portal,
        "since": local_midnight_utc(first, tz),
        "until": local_midnight_utc(last + timedelta(days=1), tz),
    }
    if stored is None:
        stored = facts_ready(store, portal) and rollups_ready(store, portal)
    if stored:
        sql = stage_entries.probabilities_sql(stage_entries.any_later(store, params))
    else:
        sql = _PG_SQL if store.dialect.name == "postgres" else _DUCK_SQL
    out = {}
    if materialize is not None:
        # The table name comes from rop.metrics.cache, never from input.
        sql = "SELECT * FROM " + materialize("deal_stage_win", sql, bind(sql, params))  # noqa: S608
    for cat, stage, won, closed in store.query(sql, bind(sql, params)):
        won, closed = int(won or 0), int(closed or 0)
        out[(int(cat), stage)] = {
            "won": won,
            "closed": closed,
            "probability": won / closed if closed else None,
        }
    return out


def open_deals(prep: Any, period: PlanPeriod) -> list[dict[str, Any]]:
    """Open deals the viewer sees, planned to close in ``period``, with their weight."""
    ctx = context(prep, period.start, period.end)
    # The deals are picked first and only theirs are named (the drill-downs'
    # paged names, rop.metrics.compile.relation): naming every deal of the
    # portal for a month's 12.8k open ones cost the start's first page ~0.45 s
    # of CPU at 1M deals on DuckDB, 1.6 s on PostgreSQL (issue 16). The pick reads the department (the
    # relation then joins it) and orders as the list always was (IDs are unique).
    picked = """SELECT f.* FROM f_all f
WHERE f.semantic = 'P' AND f.closedate >= $d_from AND f.closedate <= $d_to
ORDER BY f.closedate, f.id, f.department_id"""
    sql = (
        relation(SOURCES["deal_rel"], ctx, names=True, page=picked)
        + """
SELECT f.id, f.title, f.manager_id, f.manager_name, f.department_id,
    coalesce(f.category_id, 0) AS category_id, f.pipeline_name, f.stage_id, f.stage_name,
    f.amount, f.closedate
FROM f ORDER BY f.closedate, f.id"""
    )
    params = params_for(ctx, [])
    probs = stage_probabilities(
        prep.store, prep.portal.key, prep.today, prep.tz, prep.materialize, prep.rollups
    )
    deals = []
    for r in prep.store.query_dicts(sql, bind(sql, params)):
        p = probs.get((r["category_id"], r["stage_id"]))
        weight = p["probability"] if p and p["probability"] is not None else 0.0
        amount = float(r["amount"] or 0)
        deals.append({
            **r,
            "closedate": r["closedate"].isoformat() if r["closedate"] else None,
            "amount": amount,
            "probability": p["probability"] if p else None,
            "weight": weight,
            "weighted_amount": weight * amount,
            "card_url": prep.portal.link(f"/crm/deal/details/{r['id']}/"),
        })  # fmt: skip
    return deals


def _add(into: dict[str, float], deal: dict[str, Any]) -> None:
    into["deals_won_amount"] = into.get("deals_won_amount", 0.0) + deal["weighted_amount"]
    into["deals_won"] = into.get("deals_won", 0.0) + deal["weight"]


def forecast(
    prep: Any, period: PlanPeriod, section: dict[str, Any], total_days: int, elapsed: int
) -> dict[str, Any]:
    """The two forecasts of the current period, per row, department and total."""
    today = prep.today
    if not (period.start <= today <= period.end):
        return {"current": False}
    figures = section["figures"]

    def run_rate(cells: dict[str, Any]) -> dict[str, float | None]:
        return {f: cells[f]["fact"] / elapsed * total_days if elapsed else None for f in figures}

    deals = open_deals(prep, period)
    by_user: dict[Any, dict[str, float]] = {}
    by_dept: dict[Any, dict[str, float]] = {}
    total: dict[str, float] = {}
    stages: dict[tuple[int, str], dict[str, Any]] = {}
    for d in deals:
        _add(by_user.setdefault(d["manager_id"], {}), d)
        _add(by_dept.setdefault(d["department_id"], {}), d)
        _add(total, d)
        s = stages.setdefault((d["category_id"], d["stage_id"]), {
            "pipeline": d["category_id"], "pipeline_name": d["pipeline_name"],
            "stage_id": d["stage_id"], "stage_name": d["stage_name"],
            "probability": d["probability"], "deals": 0, "amount": 0.0,
            "weighted_amount": 0.0, "weighted_count": 0.0,
        })  # fmt: skip
        s["deals"] += 1
        s["amount"] += d["amount"]
        s["weighted_amount"] += d["weighted_amount"]
        s["weighted_count"] += d["weight"]

    def pipeline(cells: dict[str, Any], weighted: dict[str, float]) -> dict[str, float | None]:
        return {
            f: cells[f]["fact"] + weighted.get(f, 0.0) if f in PIPELINE_FIGURES else None
            for f in figures
        }

    for row in section["rows"]:
        row["forecast"] = {
            "run_rate": run_rate(row["figures"]),
            "pipeline": pipeline(row["figures"], by_user.get(row["user_id"], {})),
        }
    for dept in section["departments"]:
        dept["forecast"] = {
            "run_rate": run_rate(dept["figures"]),
            "pipeline": pipeline(dept["figures"], by_dept.get(dept["department_id"], {})),
        }
    tot = section["total"]
    tot["forecast"] = {
        "run_rate": run_rate(tot["figures"]),
        "pipeline": pipeline(tot["figures"], total),
    }
    first, last = history_window(today)
    return {
        "current": True,
        "methods": {
            "run_rate": {
                "ru": "факт ÷ прошедшие рабочие дни × рабочие дни периода",
                "en": "fact ÷ working days elapsed × working days in the period",
            },
            "pipeline": {
                "ru": "факт + открытые сделки с плановой датой закрытия в периоде, "
                "каждая × долю выигранных из её стадии за 12 месяцев",
                "en": "fact + open deals planned to close in the period, each × the share "
                "won from its stage over 12 months",
            },
        },
        "history_from": first.isoformat(),
        "history_to": last.isoformat(),
        "open_deals": len(deals),
        "stages": sorted(stages.values(), key=lambda s: (s["pipeline"], str(s["stage_id"]))),
    }


FORECAST_FIGURE = "forecast_pipeline"
_COLUMNS = [
    ("id", "ID", "ID", "count"),
    ("title", "Сделка", "Deal", "text"),
    ("manager", "Менеджер", "Manager", "text"),
    ("pipeline", "Воронка", "Pipeline", "text"),
    ("stage", "Стадия", "Stage", "text"),
    ("closedate", "Плановая дата", "Planned close", "date"),
    ("amount", "Сумма", "Amount", "amount"),
    ("probability", "Вероятность", "Probability", "share"),
    ("weighted_amount", "Взвешенная сумма", "Weighted amount", "amount"),
]


def forecast_drill(
    prep: Any,
    period: PlanPeriod,
    *,
    user_id: int | None = None,
    department_id: int | None = None,
) -> dict[str, Any]:
    """The deals behind the weighted-pipeline forecast, with their weight, in the
    drill-down's shape (rop.report.drill), for a manager, a department or all."""
    from rop.report.context import check_department, check_user

    key = prep.portal.key
    deals = open_deals(prep, period)
    if user_id is not None:
        check_user(prep.store, key, prep.scope, user_id)
        deals = [d for d in deals if d["manager_id"] == user_id]
    elif department_id is not None:
        check_department(prep.store, key, prep.flt.viewer, prep.scope, department_id)
        deals = [d for d in deals if d["department_id"] == department_id]
    records = [
        {"id": d["id"], "title": d["title"], "manager": d["manager_name"],
         "manager_id": d["manager_id"], "manager_unknown": False,
         "pipeline": d["pipeline_name"], "stage": d["stage_name"], "closedate": d["closedate"],
         "amount": d["amount"], "probability": d["probability"],
         "weighted_amount": d["weighted_amount"], "url": d["card_url"]}
        for d in deals
    ]  # fmt: skip
    return {
        "figure": FORECAST_FIGURE,
        "label_ru": "Прогноз по воронке",
        "label_en": "Pipeline forecast",
        "about_ru": "Открытые сделки с плановой датой закрытия в периоде, каждая с долей "
        "выигранных из её стадии за 12 месяцев (вероятность) и взвешенной суммой.",
        "about_en": "Open deals planned to close in the period, each with the share won from "
        "its stage over 12 months (probability) and its weighted amount.",
        "kind": "amount",
        "measure": "sum",
        "value": sum(d["weighted_amount"] for d in deals),
        "value_column": "weighted_amount",
        "entity": "deal",
        "records": records,
        "columns": [
            {"key": k, "label_ru": ru, "label_en": en, "kind": kind} for k, ru, en, kind in _COLUMNS
        ],  # fmt: skip
        "total_records": len(records),
        "period": {
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "timezone": prep.portal.timezone,
        },  # fmt: skip
        "user_id": user_id,
        "department_id": department_id,
    }
