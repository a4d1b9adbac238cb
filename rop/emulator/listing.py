"""The list engine: filter, order, 50-row pages, ``start=-1``, and what it cost.

Records live in SQLite keyed by ID (tables.py), so the common orders (none,
or by ID) walk the ID B-tree between the filter's bounds and stop as soon as
a page is full when no count is needed: the keyset fast path sync relies on.
Conditions on indexed columns (responsible user, ``@ID`` lists of them, date
ranges, the caller's visibility) become SQL, so a scoped count is an index
lookup; any other condition is checked on decoded records, and any other
order sorts the matching rows' sort values, like a database would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rop.emulator.data import Portal, Record, Table
from rop.emulator.errors import invalid_arg
from rop.emulator.filters import Compiled, Condition, Resolver, _float
from rop.emulator.params import as_dict, as_list
from rop.emulator.visibility import Scope, restricts, scope_sql, visible

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
    portal: Portal | None,
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
    # What the table's indexes answer exactly goes to SQL; the rest is checked
    # on decoded records, with the same code as ever (filters.py).
    where: list[str] = []
    params: list[Any] = []
    if compiled.low is not None:
        where.append("id >= ?")
        params.append(compiled.low)
    if compiled.high is not None:
        where.append("id <= ?")
        params.append(compiled.high)
    id_only = True  # no condition besides the ID range
    checks: list[Callable[[Record], bool]] = []
    if compiled.rest.logic == "AND":
        for item in compiled.rest.items:
            sql = table.condition_sql(item) if isinstance(item, Condition) else None
            if sql is None:
                checks.append(item.matches)
            else:
                where.append(sql[0])
                params.extend(sql[1])
            id_only = False
    elif not compiled.trivial:
        checks.append(compiled.rest.matches)
        id_only = False
    if restricts(kind, scope):
        clause = scope_sql(portal, table, scope)
        if clause is None:
            checks.append(lambda r: visible(portal, kind, r, scope))  # type: ignore[arg-type]
        else:
            where.append(clause)
        id_only = False
    condition = " AND ".join(where) or "1"
    by_id = not order or (len(order) == 1 and order[0][0] == id_field)
    descending = bool(order) and order[0][1]
    no_count = start < 0
    offset = max(start, 0)

    with table.db.lock:
        if by_id and not checks:
            total = 0 if no_count else table.count_where(condition, params)
            cost.counted += total
            found = table.select(condition, params, descending, page_size, offset)
            rows = [json.loads(body) for _, body in found]
            # An ID range is a B-tree walk to the page; an index on another
            # column walks what it matched.
            if no_count:
                cost.scanned += offset + len(rows)
            elif id_only:
                cost.scanned += min(offset, total) + len(rows)
            else:
                cost.scanned += max(total, offset + len(rows))
            return _page(rows, 0 if no_count else total, offset, no_count, page_size, cost)

        candidates = table.select(condition, params, descending if by_id else False)
        if by_id:
            rows, matched = [], 0
            for _, body in candidates:
                cost.scanned += 1
                record = json.loads(body)
                if all(check(record) for check in checks):
                    if matched >= offset and len(rows) < page_size:
                        rows.append(record)
                    matched += 1
                    if no_count and len(rows) >= page_size:
                        break
            return _page(rows, 0 if no_count else matched, offset, no_count, page_size, cost)

        # Another order: keep only the sort values and IDs of the matches, sort,
        # then fetch the page (a million decoded records would not fit).
        names = [name for name, _ in order]
        matches: list[tuple[tuple[Any, ...], int]] = []
        for rid, body in candidates:
            cost.scanned += 1
            record = json.loads(body)
            if all(check(record) for check in checks):
                matches.append((tuple(record.get(n) for n in names), rid))
    for position in reversed(range(len(order))):
        desc = order[position][1]
        matches.sort(key=lambda m, p=position: sort_key(m[0][p]), reverse=desc)  # type: ignore[misc]
    cost.scanned += len(matches)  # the sort
    chosen = [rid for _, rid in matches[offset : offset + page_size]]
    rows = table.fetch(chosen)
    return _page(rows, 0 if no_count else len(matches), offset, no_count, page_size, cost)


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
