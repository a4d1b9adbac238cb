"""The report's "stages" object (CONTRACT.md §3): matrix, time in stage, funnel, stuck.

Each number here is one of rop.metrics.stages' figures, computed by a GROUP BY
over the figure's own source relation (rop.metrics.compile.relation: the same
records, narrowed to the same viewer) and carrying its figure key, so a click
or ``rop drill <key>`` lists exactly the records counted.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rop.metrics.compile import Context, bind, params_for, relation
from rop.metrics.stages import (
    CAME_IN,
    DEAL,
    LEAD,
    LEFT,
    NEW,
    SECTION_SOURCES,
    STAGE_SOURCES,
    Kind,
    key_of,
    open_agg_sql,
)
from rop.report.context import Prepared, _pipe_of, context, prepare
from rop.report.filter import ReportFilter
from rop.store.db import Store

MARKER_NAMES = {
    NEW: ("Новые в периоде", "New in the period"),
    CAME_IN: ("Из другой воронки", "From another pipeline"),
    LEFT: ("В другую воронку", "To another pipeline"),
}


def _stages(prep: Prepared, k: Kind) -> dict[int, list[dict[str, Any]]]:
    """Stages of each pipeline in their order (sort, then ID)."""
    out: dict[int, list[dict[str, Any]]] = {}
    where = "entity_id LIKE 'DEAL_STAGE%'" if k is DEAL else "entity_id = 'STATUS'"
    rows = prep.store.query_remembered(
        "SELECT status_id, name, sort, category_id, entity_id, semantics FROM statuses "
        f"WHERE portal = ? AND {where} ORDER BY sort, status_id",
        [prep.portal.key],
    )
    for sid, name, sort, cat, entity, sem in rows:
        pipe = (cat if cat is not None else _pipe_of(entity)) if k is DEAL else 0
        out.setdefault(pipe, []).append(
            {"id": sid, "name": name or sid, "sort": sort, "semantic": sem or "P"}
        )
    return out


def _pipelines(prep: Prepared, k: Kind, stages: dict[int, list]) -> list[tuple[int, str]]:
    if k is LEAD:
        return [(0, "")]
    names = dict(
        prep.store.query_remembered(
            "SELECT id, name FROM pipelines WHERE portal = ?", [prep.portal.key]
        )
    )
    names.setdefault(0, "Общая")
    ids = sorted(set(names) | set(stages))
    if prep.flt.pipelines:
        ids = [p for p in ids if p in prep.flt.pipelines]
    return [(p, names.get(p) or str(p)) for p in ids]


def _query(
    prep: Prepared, ctx: Context, source: str, select: str, extra: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    rel = STAGE_SOURCES.get(source) or SECTION_SOURCES[source]
    sql = f"{relation(rel, ctx)}\n{select}"
    return prep.store.query_dicts(sql, bind(sql, {**params_for(ctx, []), **(extra or {})}))


def _direction(frm: str, to: str, sem: str | None, order: dict[str, int]) -> str:
    if frm in (NEW, CAME_IN):
        return "in"
    if to == LEFT:
        return "out"
    if sem == "S":
        return "won"
    if sem == "F":
        return "lost"
    if frm == to:
        return "stay"
    return "forward" if order.get(to, 0) > order.get(frm, 0) else "backward"


def _matrix(prep, ctx, k, pipe, stages, cells) -> dict[str, Any]:
    order = {s["id"]: i for i, s in enumerate(stages)}
    semantic = {s["id"]: s["semantic"] for s in stages}
    mine = [c for c in cells if c["pipe"] == pipe]
    rows = [NEW, CAME_IN, *order]
    cols = [*order, LEFT]
    # A stage the directory no longer lists still gets its row and column.
    rows += sorted({c["from_stage"] for c in mine} - set(rows))
    cols += sorted({c["to_stage"] for c in mine} - set(cols))
    out_cells = [
        {
            "from": c["from_stage"],
            "to": c["to_stage"],
            "count": int(c["n"]),
            "figure": key_of(k.entity, "move", pipe, c["from_stage"], c["to_stage"]),
            "direction": _direction(
                c["from_stage"],
                c["to_stage"],
                semantic.get(c["to_stage"]) or c["to_semantic"],
                order,
            ),
        }
        for c in mine
    ]
    out_cells.sort(key=lambda c: (rows.index(c["from"]), cols.index(c["to"])))
    totals: dict[str, int] = {}
    for c in out_cells:
        totals[c["from"]] = totals.get(c["from"], 0) + c["count"]
    return {"rows": rows, "columns": cols, "cells": out_cells, "row_totals": totals}


def _days(v: Any) -> float | None:
    # To a millionth of a day (0.09 s), like every days figure (metrics/compile.py):
    # a mean's last binary digit depends on the order the engine adds its terms
    # in, which differs between runs, cached and inline steps, DuckDB and PostgreSQL.
    return None if v is None else round(float(v), 6)


def _times(k, pipe, stages, recs) -> list[dict[str, Any]]:
    out = []
    for s in stages:
        if s["semantic"] != "P":
            continue
        total: dict[str, Any] = next(
            (r for r in recs if r["pipe"] == pipe and r["stage"] == s["id"] and r["m"] is None),
            {},
        )
        managers = [
            {"user_id": r["m"], "count": int(r["n_done"] or 0), "mean_days": _days(r["mean_done"]),
             "median_days": _days(r["med_done"]), "open_count": int(r["n_open"] or 0),
             "open_mean_days": _days(r["mean_open"]), "open_median_days": _days(r["med_open"])}
            for r in recs
            if r["pipe"] == pipe and r["stage"] == s["id"] and r["m"] is not None
        ]  # fmt: skip
        managers.sort(key=lambda m: m["user_id"])
        out.append(
            {
                "stage": s["id"],
                "name": s["name"],
                "figure": key_of(k.entity, "time", pipe, s["id"]),
                "count": int(total.get("n_done") or 0),
                "mean_days": _days(total.get("mean_done")),
                "median_days": _days(total.get("med_done")),
                "open_figure": key_of(k.entity, "time_open", pipe, s["id"]),
                "open_count": int(total.get("n_open") or 0),
                "open_mean_days": _days(total.get("mean_open")),
                "open_median_days": _days(total.get("med_open")),
                "bottleneck": False,
                "managers": managers,
            }
        )
    timed = [t for t in out if t["mean_days"] is not None]
    if timed:
        max(timed, key=lambda t: t["mean_days"])["bottleneck"] = True
    return out


def _funnel(k, pipe, stages, reach) -> list[dict[str, Any]]:
    steps = [s for s in stages if s["semantic"] in ("P", "S") and s["sort"] is not None]
    counts = [(r["reach"], int(r["n"])) for r in reach if r["pipe"] == pipe]
    out = []
    for i, s in enumerate(steps):
        reached = sum(n for v, n in counts if v >= s["sort"])
        went_on = sum(n for v, n in counts if v > s["sort"])
        last = i == len(steps) - 1
        out.append(
            {
                "stage": s["id"],
                "name": s["name"],
                "figure": key_of(k.entity, "reach", pipe, s["id"]),
                "reached": reached,
                "went_on": None if last else went_on,
                "share": None if last or not reached else went_on / reached,
            }
        )
    return out


def _merge(done: list[dict[str, Any]], opened: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (pipeline, stage, manager or total) with both kinds' aggregates."""
    empty = {"n_done": 0, "mean_done": None, "med_done": None, "n_open": 0, "mean_open": None,
             "med_open": None, "n_stuck": 0}  # fmt: skip
    rows: dict[tuple, dict[str, Any]] = {}
    for r in (*done, *opened):
        key = (r["pipe"], r["stage"], r["m"])
        rows.setdefault(key, {**empty, "pipe": r["pipe"], "stage": r["stage"], "m": r["m"]})
        rows[key].update(r)
    return list(rows.values())


def _exact(prep: Prepared, ctx: Context, k: Kind) -> tuple[list, list, list]:
    """(matrix cells, ended visits' times, open times) from the records themselves."""
    e = k.entity
    cells = _query(
        prep, ctx, f"{e}_move_rel",
        "SELECT pipe, from_stage, to_stage, max(to_semantic) AS to_semantic, count(*) AS n "
        "FROM f GROUP BY pipe, from_stage, to_stage",
    )  # fmt: skip
    # Two queries, one per kind of row: each reads only its own rows (the
    # visits that ended in the period, a range; the open ones), not their union.
    med = prep.store.dialect.median
    sets = "GROUP BY GROUPING SETS ((pipe, stage, manager_id), (pipe, stage))"
    done = _query(
        prep, ctx, f"{e}_stay_rel",
        f"SELECT pipe, stage, manager_id AS m, count(done_days) AS n_done, "
        f"avg(done_days) AS mean_done, {med('done_days')} AS med_done FROM f WHERE is_done {sets}",
    )  # fmt: skip
    return cells, done, _exact_open(prep, ctx, k)


def _exact_open(prep: Prepared, ctx: Context, k: Kind) -> list[dict[str, Any]]:
    med = prep.store.dialect.median
    return _query(
        prep, ctx, f"{k.entity}_stay_rel",
        f"SELECT pipe, stage, manager_id AS m, count(open_days) AS n_open, "
        f"avg(open_days) AS mean_open, {med('open_days')} AS med_open, "
        "count(CASE WHEN open_days > stuck_after THEN 1 END) AS n_stuck "
        "FROM f WHERE is_open GROUP BY GROUPING SETS ((pipe, stage, manager_id), (pipe, stage))",
    )  # fmt: skip


def _aggregated(ctx: Context, k: Kind) -> bool:
    """The stored open aggregates can stand in for the open visits: the store's stage
    facts are current and the viewer's scope is a set of managers (an app-mode grant
    of single records is not)."""
    granted = ctx.grant_viewer is not None and k.entity in ctx.grant_full
    return f"{k.entity}_open_agg" in ctx.stored and not granted


def _fast(prep: Prepared, ctx: Context, k: Kind) -> tuple[list, list, list]:
    """The same numbers as :func:`_exact`, with the open visits counted from the stored
    open aggregates (per pipeline, stage and manager: the few hundred rows the section
    needs) instead of one by one. Subtracted from them, the open visits that began
    after the period's start (the matrix's diagonal holds those that began before) and
    those not yet stuck; both are a range of the open visits sorted by when they began.
    """
    e = k.entity
    extra = _recent_from(ctx)
    moved = _query(
        prep, ctx, f"{e}_moved_rel",
        "SELECT pipe, from_stage, to_stage, max(to_semantic) AS to_semantic, count(*) AS n "
        "FROM f GROUP BY pipe, from_stage, to_stage",
    )  # fmt: skip
    recent = _query(
        prep, ctx, f"{e}_recent_rel",
        "SELECT pipe, stage, manager_id AS m, "
        "count(CASE WHEN open_since >= $p_from THEN 1 END) AS n_after, "
        "count(CASE WHEN open_days <= stuck_after THEN 1 END) AS n_fresh "
        "FROM f GROUP BY pipe, stage, manager_id",
        extra,
    )  # fmt: skip
    med = prep.store.dialect.median
    done = _query(
        prep, ctx, f"{e}_done_rel",
        f"SELECT pipe, stage, manager_id AS m, count(done_days) AS n_done, "
        f"avg(done_days) AS mean_done, {med('done_days')} AS med_done FROM f "
        "GROUP BY GROUPING SETS ((pipe, stage, manager_id), (pipe, stage))",
    )  # fmt: skip
    who = ["manager_id IS NOT NULL"]
    if ctx.allowed is not None:
        who.append("manager_id IN (SELECT unnest(CAST($allowed AS BIGINT[])))")
    if ctx.excluded:
        who.append("manager_id NOT IN (SELECT unnest(CAST($excluded AS BIGINT[])))")
    everyone = ctx.allowed is None and not ctx.excluded
    cond = " AND ".join(who)
    # Every manager's total is stored; a narrower scope's total is the one
    # manager's own, else (medians do not add up) computed from the visits.
    if everyone:
        cond = f"(({cond}) OR manager_id IS NULL)"
    sql = f"WITH {e}_open_agg AS (\n{ctx.stored[f'{e}_open_agg']}\n)\n" + open_agg_sql(
        k, ctx.opts, cond
    )
    agg = prep.store.query_dicts(sql, bind(sql, params_for(ctx, [])))
    single = ctx.allowed is not None and len(ctx.allowed) == 1 and not ctx.excluded
    if single:
        agg += [{**r, "m": None} for r in agg if r["m"] is not None]
    fresh = {(r["pipe"], r["stage"], r["m"]): r for r in recent}
    if everyone or single:
        opened = []
        for r in agg:
            mine = fresh.get((r["pipe"], r["stage"], r["m"]), {})
            stuck = int(r["n_open"] or 0) - int(mine.get("n_fresh") or 0)
            opened.append({**r, "n_stuck": stuck if r["m"] is not None else 0})
    else:
        opened = _exact_open(prep, ctx, k)
    # The diagonal: records in progress in one stage since before the period.
    diagonal: dict[tuple, int] = {}
    for r in agg:
        if r["m"] is None:
            continue
        mine = fresh.get((r["pipe"], r["stage"], r["m"]), {})
        n = int(r["n_open"] or 0) - int(mine.get("n_after") or 0)
        if n:
            key = (r["pipe"], r["stage"])
            diagonal[key] = diagonal.get(key, 0) + n
    cells = {(c["pipe"], c["from_stage"], c["to_stage"]): c for c in moved}
    for (pipe, stage), n in diagonal.items():
        cell = cells.setdefault(
            (pipe, stage, stage),
            {"pipe": pipe, "from_stage": stage, "to_stage": stage, "to_semantic": "P", "n": 0},
        )
        cell["n"] = int(cell["n"]) + n
        cell["to_semantic"] = max(cell["to_semantic"] or "P", "P")
    return list(cells.values()), done, opened


def _recent_from(ctx: Context) -> dict[str, Any]:
    """``$recent_from``: open visits that began before it are all in the diagonal and all
    stuck (more days than any threshold), so only those after it are read one by one."""
    p = ctx.params
    days = max([p["stuck_days"], *p["stuck_limits"]]) + 1
    return {"recent_from": min(p["p_from"], p["now"] - timedelta(days=days))}


def _kind(prep: Prepared, ctx: Context, k: Kind) -> dict[str, Any]:
    e = k.entity
    stages = _stages(prep, k)
    cells, done, opened = _fast(prep, ctx, k) if _aggregated(ctx, k) else _exact(prep, ctx, k)
    times = _merge(done, opened)
    reach = _query(
        prep, ctx, f"{e}_reach_rel",
        "SELECT pipe, reach, count(*) AS n FROM f GROUP BY pipe, reach",
    )  # fmt: skip
    pipelines = []
    for pipe, name in _pipelines(prep, k, stages):
        own = stages.get(pipe, [])
        stuck_by: dict[int, int] = {}
        for r in times:
            if r["pipe"] == pipe and r["m"] is not None and r["n_stuck"]:
                stuck_by[r["m"]] = stuck_by.get(r["m"], 0) + int(r["n_stuck"])
        pipelines.append(
            {
                "id": pipe,
                "name": name,
                "stages": own,
                "matrix": _matrix(prep, ctx, k, pipe, own, cells),
                "time": _times(k, pipe, own, times),
                "funnel": _funnel(k, pipe, own, reach),
                "stuck": {
                    "figure": key_of(e, "stuck", pipe),
                    # Lead statuses have no pipeline: the default threshold.
                    "days": prep.flt.stuck_days if k is LEAD else prep.flt.stuck_days_for(pipe),
                    "count": sum(stuck_by.values()),
                    "managers": [{"user_id": m, "count": n} for m, n in sorted(stuck_by.items())],
                },
            }
        )
    return {"pipelines": pipelines}


def build_stages(prep: Prepared, ctx: Context) -> dict[str, Any]:
    """The "stages" object of the report for the filter's period and viewer."""
    out: dict[str, Any] = {
        "stuck_days": prep.flt.stuck_days,
        "markers": {m: {"name_ru": ru, "name_en": en} for m, (ru, en) in MARKER_NAMES.items()},
    }
    if "deals" in prep.flt.sections:
        out["deals"] = _kind(prep, ctx, DEAL)
    if "leads" in prep.flt.sections:
        out["leads"] = _kind(prep, ctx, LEAD)
    return out


def stage_section(store: Store, flt: ReportFilter, *, portal: str | None = None) -> dict[str, Any]:
    """The "stages" object alone, as ``build_report`` would include it."""
    prep = prepare(store, flt, portal)
    return build_stages(prep, context(prep, flt.date_from, flt.date_to))
