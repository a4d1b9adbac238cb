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

import threading
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
    # Per kind, its rows summed over the days (a figure of any day, "in progress
    # now": 35k open deal rows at 1M deals, a few dozen sums).
    whole: dict[str | None, pa.Table]


def _load(store: Store, section: str, portal: str) -> Rows | None:
    table, which, _ = TABLES[section]
    schema = _schema(section)
    own = [n for n in schema.names if n not in ("day", "manager_id", "department_id")]
    count = store.query_dicts(
        f"SELECT count(*) AS n FROM {table} r WHERE r.portal = ? AND {which}", [portal]
    )[0]["n"]
    if int(count or 0) > MAX_ROWS:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    parts: dict[str | None, tuple[pa.Table, array[int]]] = {}
    whole: dict[str | None, pa.Table] = {}
    kinds = [None] if section == "calls" else sorted({r.kind for r in ROLLS.values() if r.kind})
    for kind in kinds:
        # A kind at a time (no copy of every row held twice while it is split), the
        # department as the statement joins it (rop.metrics.rollups.rollup_sql).
        sql = (
            f"SELECT r.day, r.manager_id, u.department_id, {', '.join('r.' + c for c in own)} "
            f"FROM {table} r LEFT JOIN users u ON u.portal = r.portal AND u.id = r.manager_id "
            f"WHERE r.portal = ? AND {which}{' AND r.kind = ?' if kind else ''} "
            "ORDER BY r.day NULLS LAST"
        )
        part = store.query_arrow(sql, [portal, kind] if kind else [portal], schema)
        if "semantic" in own:  # three values: one byte a row
            part = part.set_column(
                part.schema.get_field_index("semantic"),
                "semantic",
                pc.dictionary_encode(part["semantic"]),
            )
        # The days as 8-byte numbers (a list of ints would cost 36 bytes a row).
        numbers = pc.fill_null(pc.cast(part["day"], pa.int32()), _NO_DAY)
        days = array("q")
        for chunk in pc.cast(numbers, pa.int64()).chunks:
            days.frombytes(chunk.buffers()[1].to_pybytes()[chunk.offset * 8 :][: len(chunk) * 8])
        parts[kind] = (part, days)
        whole[kind] = _over_days(part)
    return Rows(parts, whole)


def _over_days(table: pa.Table) -> pa.Table:
    """``table``'s rows summed per everything but the day (SQL's sums: NULL where
    every value is NULL)."""
    sums = [c for c in ("n", "amount", "days_s", "days_n", "secs") if c in table.column_names]
    keys = [c for c in table.column_names if c not in sums and c != "day"]
    grouped = table.group_by(keys, use_threads=False).aggregate([(c, "sum") for c in sums])
    return grouped.rename_columns([c.removesuffix("_sum") for c in grouped.column_names])


def report_asked(store: Store, portal: str) -> None:
    """A report on ``portal`` is being built: counted per data version (see
    :func:`partial_rows`)."""
    store.remember(("rollup_memory reports", portal), lambda: [0])[0] += 1


def _wanted(store: Store, portal: str) -> bool:
    """Whether this data version has been asked for more than one report."""
    return store.remember(("rollup_memory reports", portal), lambda: [0])[0] > 1


def rows(store: Store, section: str, portal: str) -> Rows | None:
    """The section's rollup rows of ``portal``, read once per data version (None:
    too many to hold, see :data:`MAX_ROWS`)."""
    # One read at a time: two builds that both find them missing (a server's two
    # build slots) would each read them; the second waits and finds them remembered.
    with _LOADING:
        return store.remember(
            ("rollup_memory", section, portal), lambda: _load(store, section, portal)
        )


_LOADING = threading.Lock()


def _day(d: date) -> int:
    return (d - _EPOCH).days


def _slice(held: Rows, kind: str | None, days: str | None, ctx: Context) -> pa.Table | None:
    """The rows of ``kind`` whose day is in the period (``"period"``), before
    today (``"past"``) or any (``None``): a slice of the rows sorted by day."""
    part = held.parts.get(kind)
    if part is None:
        return None
    if days is None:
        return held.whole[kind]
    table, numbers = part
    if days == "period":
        lo = bisect_left(numbers, _day(ctx.params["d_from"]))
        hi = bisect_right(numbers, _day(ctx.params["d_to"]))
    elif days == "past":
        lo, hi = 0, bisect_left(numbers, _day(ctx.params["today"]))
    else:
        lo, hi = 0, len(numbers)
    return table.slice(lo, hi - lo) if hi > lo else None


def _scoped(table: pa.Table, ctx: Context, section: str) -> pa.Table:
    """``table``'s rows in the viewer's and the filter's scope (rollups._who)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keep: list[Any] = []
    if section == "deals" and ctx.opts.pipelines:
        keep.append(pc.is_in(table["category_id"], pa.array(ctx.params["pipes"], pa.int64())))
    if ctx.allowed is not None:
        keep.append(pc.is_in(table["manager_id"], pa.array(sorted(ctx.allowed), pa.int64())))
    if ctx.excluded:
        managed = table["manager_id"]
        out = pc.is_in(managed, pa.array(sorted(ctx.excluded), pa.int64()))
        keep.append(pc.and_(pc.is_valid(managed), pc.invert(out)))
    return table.filter(_all(keep)) if keep else table


def _all(masks: Sequence[Any]) -> Any:
    """The rows every mask keeps; SQL's NULL keeps none."""
    import pyarrow.compute as pc

    mask = masks[0]
    for more in masks[1:]:
        mask = pc.and_kleene(mask, more)
    return pc.fill_null(mask, False)


def _takes(roll: Roll, numerator: str | None, group: dict[str, Any]) -> bool:
    """Whether ``roll`` (its share's ``numerator``) takes a group's rows, SQL's
    way: a NULL compared is no match (``NOT ok`` with ``ok`` NULL neither)."""
    if roll.semantic is not None and group["semantic"] != roll.semantic:
        return False
    if numerator is not None and group["semantic"] != numerator:
        return False
    if roll.call_types is not None and group["call_type"] not in roll.call_types:
        return False
    return roll.ok is None or group["ok"] is roll.ok


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
    store: Store,
    section: str,
    figs: Sequence[Figure],
    ctx: Context,
    offset: int = 0,
    *,
    always: bool = False,
) -> list[dict[str, Any]] | None:
    """The rows :func:`rop.metrics.rollups.rollup_sql` gives for ``figs`` (row key,
    department, partials ``a<offset + i>_*``), from the rows in memory; None when
    they are not held: too many, or (unless ``always``) the data has been asked
    for one report only since it last changed (:func:`report_asked`): reading
    them costs about as much as a report's rollup statements (~110 ms of CPU at
    1M deals), so a one-off report (the CLI's, a server's first page after a
    sync) keeps the statements; the caller runs them.

    One ``group_by`` per slice of rows (a kind's rows of the period, say), by the
    row key and what a figure tests (semantic; call type, connected): a few
    hundred sums, which each figure adds up where its test holds, as SQL's
    ``sum(...) FILTER (WHERE ...)`` (NULL when nothing or only NULLs are
    summed); a row key is in the result when some figure takes some of its
    rows, as the statement's WHERE keeps them.
    """
    portal = str(ctx.params["portal"])
    if not always and not _wanted(store, portal):
        return None
    held = rows(store, section, portal)
    if held is None:
        return None
    names: list[str] = []
    # slice (kind, days) -> [(roll's rows, numerator, column, the partials it gives)]
    wanted: dict[tuple[str | None, str | None], dict[tuple[Roll, str | None, str], list[str]]]
    wanted = {}
    for i, fig in enumerate(figs, offset):
        roll = ROLLS[fig.key]
        where = Roll(roll.kind, roll.semantic, roll.days, roll.call_types, roll.ok)
        for column, numerator, name in _sums(fig, i):
            sums = wanted.setdefault((roll.kind, roll.days), {})
            sums.setdefault((where, numerator, column), []).append(name)
            names.append(name)
    keys = _keys(ctx)
    tests = ["call_type", "ok"] if section == "calls" else ["semantic"]
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    for (kind, days), sums in wanted.items():
        table = _slice(held, kind, days, ctx)
        if table is None:
            continue
        table = _scoped(table, ctx, section)
        if not table.num_rows:
            continue
        columns = sorted({column for _, _, column in sums})
        grouped = (
            table.group_by([*keys, *tests], use_threads=False)
            .aggregate([(c, "sum") for c in columns])
            .to_pylist()
        )
        for group in grouped:
            takers = [
                (column, targets)
                for (where, numerator, column), targets in sums.items()
                if _takes(where, numerator, group)
            ]
            if not takers:
                continue
            key = _row_key(ctx, group)
            row = out.get(key)
            if row is None:
                row = out[key] = {"k": key[0], "dept": key[1], **dict.fromkeys(names)}
            for column, targets in takers:
                value = group[f"{column}_sum"]
                if value is None:
                    continue
                for name in targets:
                    row[name] = value if row[name] is None else row[name] + value
    return list(out.values())
