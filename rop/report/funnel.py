"""The page's funnels: how far the period's new deals of each pipeline got.

Counted from the deal relation the figures read (rop.metrics.sources
``deal_rel``: the stored deal facts while current, the viewer's scope, the
chosen pipelines), whose ``funnel_top`` is each deal's furthest working stage
of its pipeline (rop.store.facts.funnel_top_sql): a year's funnels no longer
join the period's deals to their stage history on every page build. A step
counts the deals whose furthest stage is at or after it, which is the figure
``deal_funnel:<stage>`` its drill-down lists (rop.metrics.catalogue).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rop.metrics.compile import bind, params_for, relation
from rop.metrics.sources import SOURCES
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store.db import Store

# Over the relation ``f``: the period's new deals per pipeline and furthest stage.
TOPS_SQL = (
    "SELECT category_id, funnel_top, count(*) FROM f "
    "WHERE category_id IN (SELECT unnest(CAST($funnel_pipes AS BIGINT[]))) "
    "AND date_create >= $p_from AND date_create < $p_to GROUP BY category_id, funnel_top"
)


def funnel_tops(
    store: Store, flt: ReportFilter, pipelines: Sequence[int], portal: str | None = None
) -> dict[int, dict[int | None, int]]:
    """Per pipeline of ``pipelines``: furthest stage's sort (None: none known) -> deals
    created in ``flt``'s period, as the viewer and the filter see them."""
    prep = prepare(store, flt, portal)
    ctx = context(prep, flt.date_from, flt.date_to)
    # Neither the records' ``moved`` nor their department is read here: left out
    # of the relation, the statement costs a third of its CPU (docs/BENCHMARKS.md,
    # "Issue 16: CPU per crowd report").
    ctx = replace(ctx, opts=replace(ctx.opts, moved=""))
    sql = f"{relation(SOURCES['deal_rel'], ctx, department=False)}\n{TOPS_SQL}"
    params = {**params_for(ctx, ()), "funnel_pipes": list(pipelines)}
    out: dict[int, dict[int | None, int]] = {int(p): {} for p in pipelines}
    for pipe, top, n in store.query(sql, bind(sql, params)):
        out[int(pipe)][None if top is None else int(top)] = int(n)
    return out
