"""Compile figures into SQL: one aggregate query per section, and drill-down lists.

Both come from the same Figure fields (source, condition, measure, value), so
a number and the list behind it cannot disagree. Values are always bound
parameters; identifiers and SQL fragments only ever come from the catalogue.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rop.metrics.figure import Column, Figure
from rop.metrics.sources import (
    MOVED_BOUND,
    PAGE,
    Options,
    Source,
    granted_activity_filter,
    granted_filter,
)

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

GROUP_EXPR = {
    "manager": "f.manager_id",
    "department": "f.department_id",
    "source": "f.grp_source",
    "pipeline": "f.grp_pipeline",
}


@dataclass
class Context:
    """Everything a query binds: the portal, the period and the filter's values."""

    params: dict[str, Any]
    opts: Options
    allowed: frozenset[int] | None = None  # managers that may appear; None = any
    excluded: frozenset[int] = field(default_factory=frozenset)
    group: str = "manager"
    # (name, sql, params) -> a table holding that static step's rows; None: inline
    materialize: Callable[[str, str, dict[str, Any]], str] | None = None
    # Static steps read from the store's own fact tables (rop.store.facts) while
    # they are current: step name -> the SELECT that reads them.
    stored: Mapping[str, str] = field(default_factory=dict)
    # App mode (rop.store.grants): per restricted entity (deal, lead, ...), the
    # managers seen in full; other records only if granted to ``grant_viewer``.
    grant_viewer: int | None = None
    grant_full: Mapping[str, frozenset[int]] = field(default_factory=dict)
    # The store's rollups (rop.store.rollups) match its facts: sums may read them.
    rollups: bool = False


def bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement names (DuckDB refuses extra ones)."""
    names = set(_PARAM.findall(sql))
    missing = names - params.keys()
    if missing:
        raise KeyError(f"unbound SQL parameters: {sorted(missing)}")
    return {n: params[n] for n in names}


def relation(
    source: Source,
    ctx: Context,
    names: bool = False,
    page: str | None = None,
    department: bool = True,
) -> str:
    """``WITH ...`` ending in ``f``: the source relation narrowed to who may be seen.

    ``department=False`` (without ``names``): ``f`` has no ``department_id``, for a
    statement that reads none (the funnels): the join to the users is left out.

    A static step the store keeps (``ctx.stored``: deal, lead and call facts)
    is read from its table. With ``ctx.materialize`` set, each other static
    ``*_base`` step is read from the table that function returns (computed
    once per store state) instead of being recomputed by every query.

    ``page`` (with ``names``): a query over ``f`` that picks a drill-down's page
    (``SELECT f.*, ... FROM f WHERE ... ORDER BY ... LIMIT``); ``f`` is then those
    rows with their names, which are looked up for the page only instead of for
    every record of the list (at 1M deals most of a long list's cost), by the
    text step's paged form (``Cte.paged``): restricted to the page's ids and
    never cached, so the first page after a store is opened costs no more.
    """
    ctes: dict[str, str] = {}
    static: dict[str, str] = {}
    text = f"{source.entity}_text" if names and source.text else None
    paged: str | None = None  # the page's text step, named after the page is picked
    for cte in source.ctes(ctx.opts):
        if cte.name in ctes or cte.name in static:
            continue
        if cte.name.endswith("_text") and cte.name != text:
            continue  # names only a list shows
        if cte.name == text and page is not None and cte.paged is not None:
            paged = cte.paged(f"(SELECT id FROM {PAGE})")
            continue
        if cte.name in ctx.stored:
            ctes[cte.name] = _STORED + ctx.stored[cte.name]
            continue
        if cte.static and ctx.materialize is not None:
            if cte.name.endswith(("_base", "_text")):
                helpers = _helpers(cte.sql, static)
                sql = "WITH " + _with(helpers) + "\n" + cte.sql if helpers else cte.sql
                table = ctx.materialize(cte.name, sql, bind(sql, ctx.params))
                ctes[cte.name] = _CACHED + table
            else:
                static[cte.name] = cte.sql
            continue
        ctes[cte.name] = cte.sql
    who = []
    if ctx.allowed is not None:
        who.append("r.manager_id IN (SELECT unnest(CAST($allowed AS BIGINT[])))")
    if ctx.excluded:
        who.append("r.manager_id NOT IN (SELECT unnest(CAST($excluded AS BIGINT[])))")
    who.extend(_granted(source.entity, ctx))
    base = " AND ".join([f"r.{source.base}" if source.base != "TRUE" else "TRUE", *who])
    # The manager's name only where a list shows it: the engine does not drop
    # an unused string expression on its own, and on a big portal it costs.
    name = (
        ", coalesce(nullif(trim(coalesce(u.name, '') || ' ' || coalesce(u.last_name, '')), ''), "
        "'user #' || CAST(r.manager_id AS VARCHAR)) AS manager_name"
        if names
        else ""
    )
    texts = "".join(f", t.{c}" for c in source.text) if text else ""
    join_text = f" LEFT JOIN {text} t ON t.id = r.id" if text else ""
    users = "LEFT JOIN users u ON u.portal = $portal AND u.id = r.manager_id"
    if page is not None and names:
        # The department only where the page's pick reads it (a department's
        # row, rows by department): a join fewer to plan and run otherwise.
        dept = (
            (", u.department_id AS department_id", f" {users}")
            if re.search(r"\bdepartment_id\b", page)
            else ("", "")
        )
        ctes["f_all"] = f"SELECT r.*{dept[0]} FROM {source.name} r{dept[1]} WHERE {base}"
        ctes[PAGE] = page
        # The list is read where it is used (the page's pick, and on DuckDB the
        # figure's aggregates beside it: drill_sql), the page computed once for
        # its names and rows: left to itself DuckDB inlines a page without
        # windows (an export's) into each of its readers, the pick five times
        # for the calls. Read once, as PostgreSQL's page is, neither changes a plan.
        ctes["f_all"] = _INLINE + ctes["f_all"]
        if source.name in ctes and not ctes[source.name].startswith(_STORED):
            # Its filters reach the facts' scan: materialized once for two readers,
            # the deals were read whole (1M rows instead of 209k at 1M deals).
            ctes[source.name] = _INLINE + ctes[source.name]
        ctes[PAGE] = _ONCE + page
        if paged is not None and text is not None:
            # Its helpers (the stage directory...) come inline when the cache
            # keeps them out of the chain; a CTE reads only earlier ones.
            for n, q in _helpers(paged, static).items():
                ctes.setdefault(n, q)
            ctes[text] = paged
        ctes["f"] = f"SELECT r.*{name}{texts} FROM {PAGE} r {users}{join_text}"
        return "WITH " + _with(ctes)
    if not department and not names:
        ctes["f"] = f"SELECT r.*{texts} FROM {source.name} r{join_text} WHERE {base}"
        return "WITH " + _with(ctes)
    ctes["f"] = (
        f"SELECT r.*, u.department_id AS department_id{name}{texts} "
        f"FROM {source.name} r {users}{join_text} WHERE {base}"
    )
    return "WITH " + _with(ctes)


def _granted(entity: str, ctx: Context) -> list[str]:
    """App mode: a record counts if its manager is seen in full or it was granted itself."""
    if ctx.grant_viewer is None:
        return []
    if entity == "activity":
        # Activities follow their owner record's grant (sources.granted_activity_filter).
        return [granted_activity_filter(ctx.grant_full, "r")] if ctx.grant_full else []
    if entity not in ctx.grant_full:
        return []
    return [granted_filter(entity, "r")]


def _helpers(sql: str, static: dict[str, str]) -> dict[str, str]:
    """The helper steps ``sql`` reads, and the ones they read, in their order."""
    found: set[str] = set()
    pending = [sql]
    while pending:
        text = pending.pop()
        for n, q in static.items():
            if n not in found and re.search(rf"\b{n}\b", text):
                found.add(n)
                pending.append(q)
    return {n: q for n, q in static.items() if n in found}


# A step read from the cache is a plain table: the engine must not copy it
# into a materialized CTE when two steps read it (100 ms at 1M deals).
_CACHED = "SELECT * FROM "
# The same for a stored fact table (its SQL reads the table, one portal's rows).
_STORED = "-- stored facts\n"


# A step its readers each compute (a drill-down's list, read by its page's pick
# and by the aggregates beside the page).
_INLINE = "-- computed where read\n"
# A step computed once for all its readers (a drill-down's page).
_ONCE = "-- computed once\n"


def _with(ctes: dict[str, str]) -> str:
    plain = (_CACHED, _STORED, _INLINE)

    def how(sql: str) -> str:
        if sql.startswith(plain):
            return "NOT MATERIALIZED "
        return "MATERIALIZED " if sql.startswith(_ONCE) else ""

    return ",\n".join(f"{n} AS {how(sql)}(\n{sql}\n)" for n, sql in ctes.items())


def params_for(ctx: Context, figs: Sequence[Figure]) -> dict[str, Any]:
    params = dict(ctx.params)
    if ctx.allowed is not None:
        params["allowed"] = sorted(ctx.allowed)
    if ctx.excluded:
        params["excluded"] = sorted(ctx.excluded)
    if ctx.grant_viewer is not None:
        params["grant_viewer"] = ctx.grant_viewer
        for entity, users in ctx.grant_full.items():
            params[f"grant_full_{entity}"] = sorted(users)
    for fig in figs:
        params.update(dict(fig.params))
    return params


def _aggregates(fig: Figure, i: int) -> list[str]:
    """The SQL aggregates a figure needs; combined in Python by :func:`combine`."""
    cond = fig.condition
    if fig.measure == "count":
        return [f"count(*) FILTER (WHERE {cond}) AS a{i}_n"]
    if fig.measure == "sum":
        return [f"sum({fig.value}) FILTER (WHERE {cond}) AS a{i}_s"]
    if fig.measure == "mean":
        return [
            f"sum({fig.value}) FILTER (WHERE {cond}) AS a{i}_s",
            f"count({fig.value}) FILTER (WHERE {cond}) AS a{i}_n",
        ]
    if fig.measure == "share":
        return [
            f"count(*) FILTER (WHERE ({cond}) AND ({fig.numerator})) AS a{i}_num",
            f"count(*) FILTER (WHERE {cond}) AS a{i}_den",
        ]
    raise ValueError(f"unknown measure {fig.measure}")


def _money(fig: Figure, value: float) -> float:
    """Amounts to the kopeck: converted currencies leave float dust (1.549999999).

    Days to a millionth (0.09 s): a mean's last binary digit depends on the
    order the engine adds its terms in, which DuckDB and PostgreSQL do not
    share (METRICS_DECISIONS.md).
    """
    if fig.kind == "amount":
        return round(value, 2)
    return round(value, 6) if fig.kind == "days" else value


def combine(fig: Figure, i: int, row: dict[str, Any]) -> Any:
    """A figure's value from its aggregates: nothing to divide by gives None."""
    if fig.measure == "count":
        return int(row[f"a{i}_n"] or 0)
    if fig.measure == "sum":
        total = row[f"a{i}_s"] or 0
        return int(total) if fig.kind == "seconds" else _money(fig, float(total))
    if fig.measure == "mean":
        n = row[f"a{i}_n"] or 0
        return _money(fig, float(row[f"a{i}_s"]) / n) if n else None
    num, den = row[f"a{i}_num"] or 0, row[f"a{i}_den"] or 0
    return num / den if den else None


def aggregate_sql(source: Source, figs: Sequence[Figure], ctx: Context) -> str:
    """One query for all figures of a section: the aggregates of each row's records.

    Each record is in exactly one row (one manager, one first department), and
    every aggregate is a count or a sum, so department subtotals and the grand
    total are exact sums of these partials over distinct records (see
    :func:`add_partials`); ratios are then taken from the summed numerator and
    denominator, never from the rows' ratios.
    """
    key = GROUP_EXPR[ctx.group]
    # Figures share aggregates (a conversion's denominator is "new"): each distinct
    # aggregate is computed once and handed to every figure that needs it.
    first: dict[str, str] = {}
    outer = []
    for i, fig in enumerate(figs):
        for agg in _aggregates(fig, i):
            expr, alias = agg.rsplit(" AS ", 1)
            outer.append(alias if expr not in first else f"{first[expr]} AS {alias}")
            first.setdefault(expr, alias)
    aggs = ",\n    ".join(f"{expr} AS {alias}" for expr, alias in first.items())
    dept = "f.department_id" if ctx.group == "manager" else "NULL"
    # Only records that meet some figure's condition can change an aggregate:
    # skipping the rest up front is most of the work saved on a big portal.
    conds = {fig.condition for fig in figs}
    where = "TRUE" if "TRUE" in conds else " OR ".join(f"({c})" for c in sorted(conds))
    bounds = {fig.bound for fig in figs if fig.bound is not None}
    if figs and all(fig.bound is not None for fig in figs):
        where = f"({where}) AND ({' OR '.join(f'({b})' for b in sorted(bounds))})"
        if bounds == {MOVED_BOUND}:
            # Every row within the movement bound (the "moved" counts): the few
            # undecided records' lists read in place, not by a second scan of the
            # facts (rop.metrics.sources.moved).
            ctx = replace(ctx, opts=replace(ctx.opts, moved="direct"))
    return (
        f"{relation(source, ctx)}\nSELECT k, dept, {', '.join(outer)} FROM (\n"
        f"SELECT {key} AS k, {dept} AS dept,\n    {aggs}\n"
        # PostgreSQL refuses a constant in GROUP BY: group by the department
        # only when it is a column.
        f"FROM f WHERE {where} GROUP BY {key}{', ' + dept if dept != 'NULL' else ''}) g"
    )


_PERIOD_PARAM = re.compile(r"\$p_(from|to)\b")


def pairs_periods(source: Source, figs: Sequence[Figure]) -> bool:
    """Whether ``figs`` of ``source`` can be computed for the previous period in
    the same query: the relation gives its period columns for both, and the
    figures read the period only through ``$p_from``/``$p_to`` and those columns."""
    if not source.period_columns:
        return False
    texts = [t for f in figs for t in (f.condition, f.numerator, f.value) if t]
    return not any("$d_" in t or "$today" in t or "$now" in t for t in texts)


def previous_figure(source: Source, fig: Figure) -> Figure:
    """``fig`` about the previous period: its period bounds and the relation's
    period columns (``with_deals`` -> ``with_deals_q``) read for that period."""

    def shift(sql: str | None) -> str | None:
        if sql is None:
            return None
        sql = _PERIOD_PARAM.sub(r"$q_\1", sql)
        for col in source.period_columns:
            sql = re.sub(rf"\b{col}\b", f"{col}_q", sql)
        return sql

    return replace(
        fig,
        key=fig.key + "_q",
        condition=shift(fig.condition) or "TRUE",
        numerator=shift(fig.numerator),
        value=shift(fig.value),
        bound=shift(fig.bound),
    )


def add_partials(acc: dict[str, Any], rec: dict[str, Any]) -> None:
    """Sum one group's partial aggregates (columns ``a<i>_*``) into ``acc``."""
    for name, value in rec.items():
        if name.startswith("a"):
            acc[name] = (acc.get(name) or 0) + (value or 0)


def value_sql(source: Source, fig: Figure, ctx: Context, where: str) -> str:
    """The one figure's value over the records that also meet ``where``."""
    aggs = ", ".join(_aggregates(fig, 0))
    return f"{relation(source, ctx)}\nSELECT {aggs} FROM f WHERE {where}"


def drill_columns(source: Source, fig: Figure) -> tuple[Column, ...]:
    """The drill-down's columns: the source's, plus what the measure needs to be checked."""
    extra: list[Column] = []
    if (
        fig.measure in ("sum", "mean")
        and fig.value
        and fig.value not in {c.expr for c in source.columns}
    ):
        extra.append(Column("value", fig.value, *fig.value_label, fig.kind))
    if fig.measure == "share":
        extra.append(Column("counted", f"({fig.numerator})", "В числителе", "In numerator", "bool"))
    return (*extra, *source.columns)


def _list_aggregates(fig: Figure, over: str = "") -> str:
    """The figure's own aggregates over the whole list (named as in :func:`_aggregates`),
    and its count (``_total``); ``over``: as windows (`` OVER ()``) beside each row.

    The list's rows already meet the figure's condition, so the value of the
    figure comes with the page, from the very same records.
    """
    cols = [f"count(*){over} AS _total"]
    if fig.measure in ("sum", "mean"):
        cols.append(f"sum({fig.value}){over} AS a0_s")
    if fig.measure in ("count", "mean"):
        what = "*" if fig.measure == "count" else fig.value
        cols.append(f"count({what}){over} AS a0_n")
    if fig.measure == "share":
        cols.append(f"count(*){over} AS a0_den")
        cols.append(f"sum(CASE WHEN ({fig.numerator}) THEN 1 ELSE 0 END){over} AS a0_num")
    return ", ".join(cols)


def _aggregate_names(aggs: str) -> list[str]:
    return re.findall(r" AS (_total|a0_\w+)", aggs)


def _named(source: Source, order: str) -> bool:
    """The order reads a list's names (a ``*_text`` column or the manager's name),
    which only the whole list has: any other column is the relation's own, so a
    page can be picked before its rows are named (docs/WEB.md "Sorting a list")."""
    return any(re.search(rf"\b{c}\b", order) for c in (*source.text, "manager_name"))


def drill_sql(
    source: Source,
    fig: Figure,
    ctx: Context,
    where: str,
    order: str,
    limit: int | None,
    offset: int,
    totals: bool = True,
) -> tuple[str, tuple[Column, ...]]:
    """The records behind one figure: for a share, its denominator with the numerator flagged.

    ``totals``: each row also carries the list's count (``_total``) and the
    figure's aggregates over the whole list (``a0_*``, see :func:`combine`), as a
    page needs them; an export (``totals=False``) reads the rows alone, so the
    engine need not hold the whole list to count it before the first row.
    """
    cols = drill_columns(source, fig)
    select = ", ".join(
        ["f.id AS id", "f.manager_id AS manager_id"] + [f"{c.expr} AS {c.key}" for c in cols]
    )
    page = f" LIMIT {int(limit)}" if limit is not None else ""
    page += f" OFFSET {int(offset)}" if offset else ""
    listed = f"({fig.condition}) AND {where}"
    if not _named(source, order):
        # The order needs no names (nor does a row's condition): pick the page
        # first, then name its rows. On DuckDB the aggregates of a list that is
        # cheap to read again (``Source.reread``: a scan of stored facts) come
        # as one row beside the page, from the list read again (NOT
        # MATERIALIZED); as windows over the whole list they held every row of
        # it (the calls of a month at 1M deals: a fifth of the page's CPU).
        # Elsewhere windows: deals won ~the same either way, a client list read
        # twice is joined to its flags twice; PostgreSQL's page was not measured.
        beside = totals and source.reread and ctx.opts.dialect.name == "duckdb"
        windows = ", " + _list_aggregates(fig, " OVER ()") if totals and not beside else ""
        picked = f"SELECT f.*{windows} FROM f_all f WHERE {listed} ORDER BY {order}{page}"
        rel = relation(source, ctx, names=True, page=picked)
        if beside:
            aggs = _list_aggregates(fig)
            got = ", ".join(f"t.{a}" for a in _aggregate_names(aggs))
            return (
                f"{rel}\nSELECT {select}, {got} FROM f, "
                f"(SELECT {aggs} FROM f_all f WHERE {listed}) t ORDER BY {order}",
                cols,
            )
        got = "".join(f", f.{a}" for a in _aggregate_names(windows))
        return f"{rel}\nSELECT {select}{got} FROM f ORDER BY {order}", cols
    windows = ", " + _list_aggregates(fig, " OVER ()") if totals else ""
    sql = (
        f"{relation(source, ctx, names=True)}\nSELECT {select}{windows} "
        f"FROM f WHERE {listed} ORDER BY {order}{page}"
    )
    return sql, cols
