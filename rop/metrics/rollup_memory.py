"""The rollups' sums without SQL: the rollup rows held in memory per data version.

A report's deal, lead and call sums come from the stored rollups
(rop.metrics.rollups). As a statement, each section's sums cost DuckDB more
to plan than to run (16 FILTER aggregates: ~9 ms of planning for ~4 ms of
work, per period and section, docs/BENCHMARKS.md), and every viewer's filter
is a new statement. The rows themselves are few (at 1M deals: 235k deal and
lead rows, 161k call rows, ~20 MB as Arrow columns), and they change only
when the data does, so they are read once per data version
(``Store.remember``: until the next write on DuckDB, per portal version on
PostgreSQL) and any period's sums are taken from them here: a period is a
slice of rows sorted by day, a figure's rows a few comparisons on the slice,
its sums one ``group_by`` per distinct set of rows (pyarrow).

The rows taken and the sums are those of :func:`rop.metrics.rollups.rollup_sql`
(the same :class:`rop.metrics.rollups.Roll` fields), and so is what comes
back: one dict per row key and department with the partials named as that
statement names them, ready for rop.metrics.compile.add_partials. A portal
with more rollup rows than :data:`MAX_ROWS` keeps the statement (its memory
stays bounded).
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from rop.metrics.compile import Context
from rop.metrics.figure import Figure
from rop.metrics.rollups import ROLLS, TABLES, Roll

if TYPE_CHECKING:
    import pyarrow as pa

    from rop.store.db import Store

# Past this many rollup rows in one portal's section the sums stay SQL: a
# row costs ~50 bytes here, so a section holds at most ~100 MB.
MAX_ROWS = 2_000_000

_EPOCH = date(1970, 1, 1)
_NO_DAY = 1 << 30  # a NULL day sorts after every day and is in no range


def _schema(section: str) -> pa.Schema:
    import pyarrow as pa

    common = [
        ("day", pa.date32()),
        ("manager_id", pa.int64()),
        ("department_id", pa.int64()),
    ]
    if section == "calls":
        own = [
            ("call_type", pa.int64()),
            ("ok", pa.bool_()),
            ("n", pa.int64()),
            ("secs", pa.int64()),
        ]
    else:
        own = [
            ("kind", pa.string()),
            ("category_id", pa.int64()),
            ("semantic", pa.string()),
            ("n", pa.int64()),
            ("amount", pa.float64()),
            ("days_s", pa.float64()),
            ("days_n", pa.int64()),
        ]
    return pa.schema(common + own)


@dataclass(frozen=True)
class Rows:
    """One section's rollup rows of a portal: per kind (calls: ``None``), sorted
    by day, with the days as numbers for a period's slice."""

    parts: dict[str | None, tuple[pa.Table, array[int]]]


def _load(store: Store, section: str, portal: str) -> Rows | None:
    table, which, _ = TABLES[section]
    schema = _schema(section)
    own = [n for n in schema.names if n not in ("day", "manager_id", "department_id")]
    count = store.query_dicts(
        f"SELECT count(*) AS n FROM {table} r WHERE r.portal = ? AND {which}", [portal]
    )[0]["n"]
    if int(count or 0) > MAX_ROWS:
        return None
    # The department as the statement joins it (rop.metrics.rollups.rollup_sql).
    sql = (
        f"SELECT r.day, r.manager_id, u.department_id, {', '.join('r.' + c for c in own)} "
        f"FROM {table} r LEFT JOIN users u ON u.portal = r.portal AND u.id = r.manager_id "
        f"WHERE r.portal = ? AND {which} ORDER BY r.day NULLS LAST"
    )
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = store.query_arrow(sql, [portal], schema)
    parts: dict[str | None, tuple[pa.Table, array[int]]] = {}
    kinds = [None] if section == "calls" else sorted(pc.unique(rows["kind"]).drop_null().to_pylist())
    for kind in kinds:
        part = rows if kind is None else rows.filter(pc.equal(rows.column("kind"), kind))
        # The days as 8-byte numbers (a list of ints would cost 36 bytes a row).
        numbers = pc.fill_null(pc.cast(part["day"], pa.int32()), _NO_DAY)
        days = array("q", pc.cast(numbers, pa.int64()).to_pylist())
        parts[kind] = (part, days)
    return Rows(parts)


def rows(store: Store, section: str, portal: str) -> Rows | None:
    """The section's rollup rows of ``portal``, read once per data version (None:
    too many to hold, see :data:`MAX_ROWS`)."""
    return store.remember(
        ("rollup_memory", section, portal), lambda: _load(store, section, portal)
    )


def _day(d: date) -> int:
    return (d - _EPOCH).days


def _taken(held: Rows, roll: Roll, ctx: Context, section: str) -> pa.Table | None:
    """The rows ``roll`` sums, in the viewer's and the filter's scope."""
    import pyarrow as pa
    import pyarrow.compute as pc

    part = held.parts.get(roll.kind)
    if part is None:
        return None
    table, days = part
    if roll.days == "period":
        lo = bisect_left(days, _day(ctx.params["d_from"]))
        hi = bisect_right(days, _day(ctx.params["d_to"]))
    elif roll.days == "past":
        lo, hi = 0, bisect_left(days, _day(ctx.params["today"]))
    else:
        lo, hi = 0, len(days)
    if hi <= lo:
        return None
    table = table.slice(lo, hi - lo)
    # SQL's NULL: a comparison with a NULL column keeps no row (fill_null False).
    keep: list[Any] = []
    if roll.semantic is not None:
        keep.append(pc.equal(table["semantic"], roll.semantic))
    if roll.call_types is not None:
        keep.append(pc.is_in(table["call_type"], pa.array(roll.call_types, pa.int64())))
    if roll.ok is not None:
        keep.append(table["ok"] if roll.ok else pc.invert(table["ok"]))
    if section == "deals" and ctx.opts.pipelines:
        keep.append(pc.is_in(table["category_id"], pa.array(ctx.params["pipes"], pa.int64())))
    if ctx.allowed is not None:
        keep.append(pc.is_in(table["manager_id"], pa.array(sorted(ctx.allowed), pa.int64())))
    if ctx.excluded:
        managed = table["manager_id"]
        out = pc.is_in(managed, pa.array(sorted(ctx.excluded), pa.int64()))
        keep.append(pc.and_(pc.is_valid(managed), pc.invert(out)))
    if keep:
        mask = keep[0]
        for more in keep[1:]:
            mask = pc.and_(mask, more)
        table = table.filter(pc.fill_null(mask, False))
    return table if table.num_rows else None


def _keys(ctx: Context) -> list[str]:
    return {
        "manager": ["manager_id", "department_id"],
        "department": ["department_id"],
        "pipeline": ["category_id"],
    }[ctx.group]


def _row_key(ctx: Context, group: dict[str, Any]) -> tuple[Any, Any]:
    """(k, dept) as the statement gives them."""
    if ctx.group == "manager":
        return group["manager_id"], group["department_id"]
    if ctx.group == "department":
        return group["department_id"], None
    pipe = group["category_id"]
    return (None if pipe is None else str(pipe)), None


def _sums(fig: Figure, i: int) -> list[tuple[str, str | None, str]]:
    """(column, numerator, partial's name) of what figure ``i`` reads
    (rop.metrics.rollups._aggregates)."""
    roll = ROLLS[fig.key]
    if fig.measure == "count":
        return [(roll.count, None, f"a{i}_n")]
    if fig.measure == "sum":
        return [(str(roll.value), None, f"a{i}_s")]
    if fig.measure == "mean":
        return [(str(roll.value), None, f"a{i}_s"), (roll.count, None, f"a{i}_n")]
    if fig.measure == "share":
        return [(roll.count, roll.numerator, f"a{i}_num"), (roll.count, None, f"a{i}_den")]
    raise ValueError(f"unknown measure {fig.measure}")


def partial_rows(
    store: Store, section: str, figs: Sequence[Figure], ctx: Context, offset: int = 0
) -> list[dict[str, Any]] | None:
    """The rows :func:`rop.metrics.rollups.rollup_sql` gives for ``figs`` (row key,
    department, partials ``a<offset + i>_*``), from the rows in memory; None when
    they are not held (too many): the caller runs the statement."""
    import pyarrow.compute as pc

    held = rows(store, section, str(ctx.params["portal"]))
    if held is None:
        return None
    names: list[str] = []
    # Per distinct set of rows (a Roll without what it sums): the sums it feeds.
    wanted: dict[Roll, dict[tuple[str, str | None], list[str]]] = {}
    for i, fig in enumerate(figs, offset):
        roll = ROLLS[fig.key]
        where = Roll(roll.kind, roll.semantic, roll.days, roll.call_types, roll.ok)
        for column, numerator, name in _sums(fig, i):
            wanted.setdefault(where, {}).setdefault((column, numerator), []).append(name)
            names.append(name)
    keys = _keys(ctx)
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    for where, sums in wanted.items():
        table = _taken(held, where, ctx, section)
        if table is None:
            continue
        aggs = []
        for n, (column, numerator) in enumerate(sums):
            values = table[column]
            if numerator is not None:
                values = pc.if_else(pc.equal(table["semantic"], numerator), values, None)
            table = table.append_column(f"_s{n}", values)
            aggs.append((f"_s{n}", "sum"))
        grouped = table.group_by(keys, use_threads=False).aggregate(aggs)
        for group in grouped.to_pylist():
            row = out.get(key := _row_key(ctx, group))
            if row is None:
                row = out[key] = {"k": key[0], "dept": key[1], **dict.fromkeys(names)}
            for n, targets in enumerate(sums.values()):
                for name in targets:
                    row[name] = group[f"_s{n}_sum"]
    return list(out.values())
