"""Figures that are counts and sums, compiled over the stored rollups.

The rollups (rop.store.rollups) hold the deal, lead and call facts counted
and summed per local day, manager, pipeline and state. A figure listed in
:data:`ROLLS` is the same count or sum over the rollup rows whose day is in
the period (``$d_from``..``$d_to``: the local days the period's UTC bounds are
made of), so its value equals the one over the records, which its drill-down
lists. A report reads them only where they answer exactly
(:func:`usable`); figures that are not sums (a record moved in the period,
key stages, client coverage) stay on the records.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rop.metrics.compile import Context
from rop.metrics.figure import Figure


@dataclass(frozen=True)
class Roll:
    """A figure over rollup rows: the rows it takes, what it sums.

    The rows: of ``kind`` (records; None: calls), ``semantic``, whose ``day``
    is in the period (``days="period"``) or before today (``"past"``), of
    ``call_types``, connected or not (``ok``). ``count`` (a column) stands for
    the records' ``count(*)`` (or, for a mean, ``count(value)``); ``value`` for
    the sum of the records' value; ``numerator`` (a semantic) picks a share's
    counted rows. :attr:`condition` says the same in SQL; rop.metrics.rollup_memory
    tests the same fields over the rows in memory.
    """

    kind: str | None = None
    semantic: str | None = None
    days: str | None = "period"
    call_types: tuple[int, ...] | None = None
    ok: bool | None = None
    value: str | None = None
    count: str = "n"
    numerator: str | None = None

    @property
    def condition(self) -> str:
        parts = []
        if self.kind is not None:
            parts.append(f"kind = '{self.kind}'")
        if self.semantic is not None:
            parts.append(f"semantic = '{self.semantic}'")
        if self.days == "period":
            parts.append("day >= $d_from AND day <= $d_to")
        elif self.days == "past":
            parts.append("day < $today")
        if self.call_types is not None:
            types = self.call_types
            parts.append(f"call_type = {types[0]}" if len(types) == 1 else f"call_type IN {types}")
        if self.ok is not None:
            parts.append("ok" if self.ok else "NOT ok")
        return " AND ".join(parts)

    @property
    def numerator_sql(self) -> str | None:
        return None if self.numerator is None else f"semantic = '{self.numerator}'"


_NEW = Roll("new")
_WON = Roll("closed", "S")
_LOST = Roll("closed", "F")
_CLOSED = Roll("closed")
_OPEN = Roll("open", days=None)
_DAYS = {"value": "days_s", "count": "days_n"}
_CALLS = Roll()
_INCOMING = (2, 3)


def _r(base: Roll, **kw: Any) -> Roll:
    return replace(base, **kw)


ROLLS: dict[str, Roll] = {
    "deals_new": _NEW,
    "deals_new_amount": _r(_NEW, value="amount"),
    "deals_in_progress": _OPEN,
    "deals_in_progress_amount": _r(_OPEN, value="amount"),
    "deals_won": _WON,
    "deals_won_amount": _r(_WON, value="amount"),
    "deals_avg_won": _r(_WON, value="amount"),  # amount is never NULL: count(amount) = n
    "deals_lost": _LOST,
    "deals_lost_amount": _r(_LOST, value="amount"),
    "deals_conversion_sale": _r(_NEW, numerator="S"),
    "deals_conversion_loss": _r(_NEW, numerator="F"),
    "deals_win_rate": _r(_CLOSED, numerator="S"),
    "deals_sale_cycle_days": _r(_WON, **_DAYS),
    "deals_loss_cycle_days": _r(_LOST, **_DAYS),
    # The open rows' day is the planned close date (CLOSEDATE, a local day).
    "deals_potential": _r(_OPEN, days="period"),
    "deals_potential_amount": _r(_OPEN, days="period", value="amount"),
    "deals_overdue": _r(_OPEN, days="past"),
    "leads_new": _NEW,
    "leads_in_progress": _OPEN,
    "leads_converted": _WON,
    "leads_junk": _LOST,
    "leads_conversion_sale": _r(_NEW, numerator="S"),
    "leads_conversion_loss": _r(_NEW, numerator="F"),
    "leads_conversion_cycle_days": _r(_WON, **_DAYS),
    "leads_junk_cycle_days": _r(_LOST, **_DAYS),
    "calls_total": _CALLS,
    "calls_outgoing": _r(_CALLS, call_types=(1,)),
    "calls_incoming": _r(_CALLS, call_types=_INCOMING),
    "calls_missed": _r(_CALLS, call_types=_INCOMING, ok=False),
    "calls_talk_seconds": _r(_CALLS, value="secs"),
    "calls_avg_seconds": _r(_CALLS, ok=True, value="secs"),  # duration never NULL there
}

# Section -> (rollup table, its rows of that section, the entity whose grants apply).
TABLES: dict[str, tuple[str, str, str]] = {
    "deals": ("record_rollups", "r.entity = 'deal'", "deal"),
    "leads": ("record_rollups", "r.entity = 'lead'", "lead"),
    "calls": ("call_rollups", "TRUE", "call"),
}

# What a row is grouped by, as over the records (rop.metrics.compile.GROUP_EXPR);
# by source the records are read (the rollups keep no source).
_GROUP = {
    "manager": "f.manager_id",
    "department": "f.department_id",
    "pipeline": "CAST(f.category_id AS VARCHAR)",
}


def usable(section: str, ctx: Context) -> bool:
    """The rollups answer this section's sums exactly for ``ctx``.

    Not when the viewer sees some records one by one (app-mode grants: a
    grant is per record), when rows are grouped by source, or for calls when
    a duration bound other than the default is chosen (the rollups hold every
    call of a duration of 0 s and up, not per duration).
    """
    if not ctx.rollups or section not in TABLES or ctx.group not in _GROUP:
        return False
    entity = TABLES[section][2]
    if ctx.grant_viewer is not None and entity in ctx.grant_full:
        return False
    if section == "calls":
        # Calls have no pipeline: by pipeline they read the records, all in one row.
        return ctx.params.get("min_s") == 0 and not ctx.opts.max_call and ctx.group != "pipeline"
    return True


def split(section: str, figs: Sequence[Figure], ctx: Context) -> tuple[list[Figure], list[Figure]]:
    """``figs`` as (over the rollups, over the records)."""
    if not usable(section, ctx):
        return [], list(figs)
    rolled = [f for f in figs if f.key in ROLLS and not f.params]
    return rolled, [f for f in figs if f not in rolled]


def _aggregates(fig: Figure, i: int) -> list[str]:
    """The aggregates :func:`rop.metrics.compile.combine` reads, over rollup rows."""
    roll = ROLLS[fig.key]
    cond = roll.condition
    if fig.measure == "count":
        return [f"sum({roll.count}) FILTER (WHERE {cond}) AS a{i}_n"]
    if fig.measure == "sum":
        return [f"sum({roll.value}) FILTER (WHERE {cond}) AS a{i}_s"]
    if fig.measure == "mean":
        return [
            f"sum({roll.value}) FILTER (WHERE {cond}) AS a{i}_s",
            f"sum({roll.count}) FILTER (WHERE {cond}) AS a{i}_n",
        ]
    if fig.measure == "share":
        return [
            f"sum({roll.count}) FILTER (WHERE ({cond}) AND ({roll.numerator_sql})) AS a{i}_num",
            f"sum({roll.count}) FILTER (WHERE {cond}) AS a{i}_den",
        ]
    raise ValueError(f"unknown measure {fig.measure}")


_HEAD = "SELECT k, dept, "


def beside_records(records: str, rolled: str) -> str:
    """The records' aggregate query and the rollups' as one statement (one round
    trip, one plan): the rows of each, the other's partials NULL; the caller adds
    the partials per row key (rop.metrics.compile.add_partials). The rollups'
    partials must be numbered after the records' (``rollup_sql``'s ``offset``)."""

    def outer(sql: str) -> list[str]:
        # The partials the query selects: its last SELECT's list, "a0_n" or
        # "a0_n AS a8_den" (both builders end so).
        head = sql[sql.rindex(_HEAD) + len(_HEAD) :].split(" FROM (", 1)[0]
        return [item.rsplit(" ", 1)[-1] for item in head.split(", ")]

    mine, theirs = outer(records), outer(rolled)
    left = ", ".join([*mine, *(f"NULL AS {a}" for a in theirs)])
    right = ", ".join([*(f"NULL AS {a}" for a in mine), *theirs])
    return (
        f"SELECT k, dept, {left} FROM (\n{records}\n) x\n"
        f"UNION ALL SELECT k, dept, {right} FROM (\n{rolled}\n) y"
    )


def _who(section: str, ctx: Context) -> str:
    """The rollup rows (``r``) of ``section`` the filter and the viewer's scope keep."""
    who = [f"r.portal = $portal AND {TABLES[section][1]}"]
    if section == "deals" and ctx.opts.pipelines:
        who.append("r.category_id IN (SELECT unnest(CAST($pipes AS BIGINT[])))")
    if ctx.allowed is not None:
        who.append("r.manager_id IN (SELECT unnest(CAST($allowed AS BIGINT[])))")
    if ctx.excluded:
        who.append("r.manager_id NOT IN (SELECT unnest(CAST($excluded AS BIGINT[])))")
    return " AND ".join(who)


def trend_usable(ctx: Context) -> bool:
    """The rollups answer the page's trend (deals new, won, lost per local day) for
    ``ctx``: as :func:`usable` for the deal section, whatever the rows are grouped
    by (the trend is the team's total per day)."""
    return usable("deals", replace(ctx, group="manager"))


def trend_sql(ctx: Context) -> str:
    """(kind, local day, count) of the period's new, won and lost deals over the
    rollup rows: the rows ``deals_new``, ``deals_won`` and ``deals_lost`` sum
    (:data:`ROLLS`), per day instead of in one sum, so each point equals the
    figure narrowed to its day. ``$d_from``..``$d_to`` are the period's local days."""
    return (
        "SELECT CASE WHEN r.kind = 'new' THEN 'new' WHEN r.semantic = 'S' THEN 'won' "
        "ELSE 'lost' END AS kind, r.day, sum(r.n) AS n FROM record_rollups r\n"
        f"WHERE {_who('deals', ctx)} AND (r.kind = 'new' OR (r.kind = 'closed' AND r.semantic IN ('S', 'F')))\n"
        "AND r.day >= $d_from AND r.day <= $d_to GROUP BY 1, 2"
    )


def rollup_sql(section: str, figs: Sequence[Figure], ctx: Context, offset: int = 0) -> str:
    """One query for ``figs`` of ``section`` over its rollup rows, in the shape of
    :func:`rop.metrics.compile.aggregate_sql` (row key, department, partials);
    the partials of figure ``i`` are named for figure ``offset + i``."""
    table = TABLES[section][0]
    key = _GROUP[ctx.group]
    dept = "f.department_id" if ctx.group == "manager" else "NULL"
    first: dict[str, str] = {}
    outer = []
    for i, fig in enumerate(figs, offset):
        for agg in _aggregates(fig, i):
            expr, alias = agg.rsplit(" AS ", 1)
            outer.append(alias if expr not in first else f"{first[expr]} AS {alias}")
            first.setdefault(expr, alias)
    aggs = ",\n    ".join(f"{expr} AS {alias}" for expr, alias in first.items())
    conds = sorted({ROLLS[f.key].condition for f in figs})
    where = " OR ".join(f"({c})" for c in conds)
    return (
        f"WITH f AS (\nSELECT r.*, u.department_id AS department_id FROM {table} r "
        "LEFT JOIN users u ON u.portal = $portal AND u.id = r.manager_id\n"
        f"WHERE {_who(section, ctx)}\n)\n"
        f"SELECT k, dept, {', '.join(outer)} FROM (\n"
        f"SELECT {key} AS k, {dept} AS dept,\n    {aggs}\n"
        f"FROM f WHERE {where} GROUP BY {key}{', ' + dept if dept != 'NULL' else ''}) g"
    )
