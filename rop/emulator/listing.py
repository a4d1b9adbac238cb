"""The list engine: filter, order, 50-row pages, ``start=-1``, and what it cost.

Records are kept sorted by ID, so the common orders (none, or by ID) walk
the ID index between bisected bounds and stop as soon as a page is full
when no count is needed. That is the keyset fast path sync relies on; any
other order materialises and sorts the matching rows, like a database would.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rop.emulator.data import Portal, Record, Table
from rop.emulator.errors import invalid_arg
from rop.emulator.filters import Compiled, Condition, Resolver, _float
from rop.emulator.params import as_dict, as_list
from rop.emulator.visibility import Scope, restricts, visible

# Bitrix24 list methods answer fixed pages of 50 rows (BITRIX24_API.md §2).
PAGE_SIZE = 50
# Multi-value fields come only when named in select (BITRIX24_API.md §3).
MULTI_FIELDS = frozenset({"PHONE", "EMAIL", "WEB", "IM", "LINK"})


@dataclass
class Cost:
    """Work done by one call; the app turns it into simulated processing time."""

    scanned: int = 0  # rows walked (filtering or skipping an offset)
    counted: int = 0  # rows a COUNT(*) for `total` had to cover
    returned: int = 0


@dataclass
class Page:
    rows: list[Record]
    total: int  # 0 when start=-1 (no count)
    next: int | None


Order = list[tuple[str, bool]]  # (field, descending)
_MAX_START = 10**12  # beyond any table; keeps absurd offsets harmless
_RANGE_OPS = frozenset({"gt", "ge", "lt", "le"})


def parse_order(value: Any, resolve: Resolver, strict: bool = True) -> Order:
    spec = as_dict(value, "order")
    order: Order = []
    for key, direction in spec.items():
        name = resolve(str(key).strip())
        if name is None and not strict:
            continue
        if name is None:
            raise invalid_arg(f"Invalid order: field '{key}' is not allowed in order")
        way = str(direction).strip().upper()
        if way not in ("ASC", "DESC"):
            raise invalid_arg(
                f"Invalid order: allowed sort directions are ASC, DESC. "
                f"But got '{direction}' for field '{key}'"
            )
        order.append((name, way == "DESC"))
    return order


def parse_start(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        start = int(str(value).strip())
    except ValueError:
        return 0
    return -1 if start < 0 else min(start, _MAX_START)


def sort_key(value: Any) -> tuple[int, float, str]:
    if value is None or value == "":
        return (0, 0.0, "")
    number = _float(value)
    if number is not None:
        return (1, number, "")
    text = str(value)
    if len(text) >= 19 and text[4] == "-" and text[10] == "T":
        # ISO 8601 moments sort as moments: offsets differ across DST changes.
        try:
            return (1, datetime.fromisoformat(text).timestamp(), "")
        except ValueError:
            pass
    return (2, 0.0, text.lower())


def run_list(
    portal: Portal,
    table: Table,
    compiled: Compiled,
    order: Order,
    start: int,
    scope: Scope,
    cost: Cost,
    id_field: str = "ID",
    page_size: int = PAGE_SIZE,
) -> Page:
    if compiled.empty:
        return Page([], 0, None)
    kind = table.kind
    checks: list[Callable[[Record], bool]] = []
    if not compiled.trivial:
        checks.append(compiled.rest.matches)
    if restricts(kind, scope):
        checks.append(lambda r: visible(portal, kind, r, scope))
    low, high = compiled.low, compiled.high
    by_id = not order or (len(order) == 1 and order[0][0] == id_field)
    descending = bool(order) and order[0][1]
    no_count = start < 0
    offset = max(start, 0)

    if by_id and not checks:
        total = 0 if no_count else table.count_range(low, high)
        cost.counted += total
        rows = table.slice_range(low, high, offset, page_size, descending)
        cost.scanned += min(offset, table.count_range(low, high)) + len(rows)
        return _page(rows, total, offset, no_count, page_size, cost)

    indexed = _indexed_ids(table, compiled, low, high)
    candidates: Iterable[Record]
    if indexed is not None:
        ordered = reversed(indexed) if (by_id and descending) else indexed
        candidates = (table.rows[i] for i in ordered)
    else:
        candidates = table.iter_range(low, high, descending if by_id else False)
    if by_id:
        rows, matched = [], 0
        for record in candidates:
            cost.scanned += 1
            if all(check(record) for check in checks):
                if matched >= offset and len(rows) < page_size:
                    rows.append(record)
                matched += 1
                if no_count and len(rows) >= page_size:
                    break
        return _page(rows, 0 if no_count else matched, offset, no_count, page_size, cost)

    matches = []
    for record in candidates:
        cost.scanned += 1
        if all(check(record) for check in checks):
            matches.append(record)
    for name, desc in reversed(order):
        matches.sort(key=lambda r, n=name: sort_key(r.get(n)), reverse=desc)  # type: ignore[misc]
    cost.scanned += len(matches)  # the sort
    rows = matches[offset : offset + page_size]
    return _page(rows, 0 if no_count else len(matches), offset, no_count, page_size, cost)


# Use a date index only when it narrows the walk to under this share of the table.
_INDEX_SHARE = 0.25


def _indexed_ids(
    table: Table, compiled: Compiled, low: int | None, high: int | None
) -> list[int] | None:
    """IDs (sorted) that a date range condition allows, via the table's moment index."""
    if compiled.rest.logic != "AND" or len(table) < 1000:
        return None
    for item in compiled.rest.items:
        if not isinstance(item, Condition) or item.op not in _RANGE_OPS or not item.operands:
            continue
        operand = item.operands[0]
        if operand.when is None or operand.num is not None:
            continue
        moments, ids = table.moment_index(item.field, operand.zone)
        if item.op in ("gt", "ge"):
            side = "right" if item.op == "gt" else "left"
            lo = (
                bisect.bisect_right(moments, operand.when)
                if side == "right"
                else bisect.bisect_left(moments, operand.when)
            )
            chosen = ids[lo:]
        else:
            hi = (
                bisect.bisect_left(moments, operand.when)
                if item.op == "lt"
                else bisect.bisect_right(moments, operand.when)
            )
            chosen = ids[:hi]
        if len(chosen) > len(table) * _INDEX_SHARE:
            continue
        return sorted(
            i for i in chosen if (low is None or i >= low) and (high is None or i <= high)
        )
    return None


def _page(
    rows: list[Record], total: int, offset: int, no_count: bool, page_size: int, cost: Cost
) -> Page:
    cost.returned += len(rows)
    if no_count:
        return Page(rows, 0, None)
    following = offset + page_size
    return Page(rows, total, following if following < total else None)


def projector(table: Table, select: Any) -> Callable[[Record], Record]:
    """Bitrix24's select: names, ``*`` (standard fields), ``UF_*`` (user fields)."""
    names = [str(n).strip() for n in as_list(select) if str(n).strip()]
    if not names:
        names = ["*", "UF_*"]
    star = "*" in names
    uf_star = "UF_*" in names
    named = [n.upper() for n in names if n not in ("*", "UF_*")]
    known = table.fields
    if not star and not uf_star:
        chosen = [n for n in dict.fromkeys(named) if n in known]
        return lambda r: {n: r.get(n) for n in chosen}
    extra = [n for n in dict.fromkeys(named) if n in known]

    def project(record: Record) -> Record:
        out = {
            k: v
            for k, v in record.items()
            if k not in MULTI_FIELDS
            and ((uf_star and k.startswith("UF_")) or (star and not k.startswith("UF_")))
        }
        for name in extra:
            if name not in out:
                out[name] = record.get(name)
        return out

    return project
