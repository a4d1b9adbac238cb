"""Bitrix24 list filters: ``{">=DATE_MODIFY": "2024-01-01", "@STAGE_ID": [...], ...}``.

A filter compiles once into a tree of conditions; ``ID`` bounds are lifted
out so the list engine can bisect the ID-sorted table (keyset paging) instead
of scanning it. Values compare the way the portal's SQL would: as numbers
when both sides are numeric, as moments when the filter value is a date,
otherwise as case-insensitive text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rop.emulator.errors import invalid_arg

# Longest prefixes first, so ">=" wins over ">" (BITRIX24_API.md §3, §5, §6).
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("!><", "notbetween"),
    ("><", "between"),
    ("!=%", "notlike"),
    ("!%=", "notlike"),
    (">=", "ge"),
    ("<=", "le"),
    ("!=", "ne"),
    ("!@", "notin"),
    ("!%", "notsubstr"),
    ("=%", "like"),
    ("%=", "like"),
    (">", "gt"),
    ("<", "lt"),
    ("@", "in"),
    ("%", "substr"),
    # voximplant-statistic-get.md: "?" is a string search; approximated as a substring.
    ("?", "substr"),
    ("!", "ne"),
    ("=", "eq"),
)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_RU_DATE_RE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})(?:\s+(\d{2}):(\d{2})(?::(\d{2}))?)?$")

Resolver = Callable[[str], str | None]


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text or text[0] not in "-+.0123456789":
            return None
        try:
            result = float(text)
        except ValueError:
            return None
        return result if math.isfinite(result) else None
    return None


def moment(value: Any, zone: ZoneInfo) -> float | None:
    """A date or datetime string -> unix seconds (date-only and naive: portal time)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    ru = _RU_DATE_RE.match(text)
    if ru:
        day, month, year, hh, mm, ss = ru.groups()
        text = f"{year}-{month}-{day}T{hh or '00'}:{mm or '00'}:{ss or '00'}"
    elif not _DATE_RE.match(text):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.timestamp()


# Parsed record moments, per zone, keyed by the string: a filter on a date field
# over a big table would otherwise re-parse every row's date on every call.
_MOMENTS: dict[str, dict[str, float | None]] = {}
_MOMENTS_CAP = 4_000_000


def cached_moment(value: Any, zone: ZoneInfo) -> float | None:
    if not isinstance(value, str):
        return None
    cache = _MOMENTS.get(zone.key)
    if cache is None or len(cache) > _MOMENTS_CAP:
        cache = _MOMENTS[zone.key] = {}
    try:
        return cache[value]
    except KeyError:
        parsed = cache[value] = moment(value, zone)
        return parsed


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().upper() in {"Y", "1", "TRUE"}


class Operand:
    """A filter value, prepared once for many comparisons."""

    __slots__ = ("raw", "empty", "num", "when", "text", "zone")

    def __init__(self, raw: Any, zone: ZoneInfo) -> None:
        self.raw = raw
        self.zone = zone
        self.empty = raw is None or raw == "" or raw is False
        self.num = _float(raw)
        self.when = moment(raw, zone) if self.num is None else None
        self.text = "" if raw is None else str(raw).lower()

    def equals(self, value: Any) -> bool:
        if isinstance(value, list):
            return any(self.equals(v) for v in value)
        if self.empty:
            return value is None or value == "" or value is False
        if value is None or value == "":
            return False
        if isinstance(value, bool) or isinstance(self.raw, bool):
            return _truthy(value) == _truthy(self.raw)
        if self.num is not None:
            other = _float(value)
            if other is not None:
                return other == self.num
        if self.when is not None:
            other_when = cached_moment(value, self.zone)
            if other_when is not None:
                return other_when == self.when
        return str(value).lower() == self.text

    def compare(self, value: Any) -> int | None:
        """Sign of (value - operand); None when SQL would say NULL (no match)."""
        if self.empty or value is None or value == "" or isinstance(value, list | dict):
            return None
        if self.num is not None:
            other = _float(value)
            if other is not None:
                return (other > self.num) - (other < self.num)
        if self.when is not None:
            other_when = cached_moment(value, self.zone)
            if other_when is not None:
                return (other_when > self.when) - (other_when < self.when)
        text = str(value).lower()
        return (text > self.text) - (text < self.text)


def _like_regex(pattern: str, substring: bool) -> re.Pattern[str]:
    if substring and "%" not in pattern:
        pattern = f"%{pattern}%"
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)


@dataclass
class Condition:
    field: str
    op: str
    operands: list[Operand]
    regex: re.Pattern[str] | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        value = record.get(self.field)
        op = self.op
        if op == "eq":
            return self.operands[0].equals(value)
        if op == "ne":
            return not self.operands[0].equals(value)
        if op == "in":
            return any(o.equals(value) for o in self.operands)
        if op == "notin":
            return not any(o.equals(value) for o in self.operands)
        if op in ("like", "substr", "notlike", "notsubstr"):
            assert self.regex is not None
            hit = value is not None and bool(self.regex.match(str(value)))
            return hit if op in ("like", "substr") else not hit
        if op in ("between", "notbetween"):
            low, high = self.operands[0].compare(value), self.operands[1].compare(value)
            inside = low is not None and high is not None and low >= 0 and high <= 0
            return inside if op == "between" else not inside
        sign = self.operands[0].compare(value)
        if sign is None:
            return False
        return {"gt": sign > 0, "ge": sign >= 0, "lt": sign < 0, "le": sign <= 0}[op]


@dataclass
class Group:
    logic: str = "AND"
    items: list[Condition | Group] = field(default_factory=list)

    def matches(self, record: dict[str, Any]) -> bool:
        if self.logic == "OR":
            return any(item.matches(record) for item in self.items) if self.items else True
        return all(item.matches(record) for item in self.items)


@dataclass
class Compiled:
    """A filter: ID bounds for bisect, plus the remaining conditions."""

    low: int | None = None
    high: int | None = None
    empty: bool = False  # the ID bounds exclude everything
    rest: Group = field(default_factory=Group)

    @property
    def trivial(self) -> bool:
        return not self.rest.items


def split_key(key: str) -> tuple[str, str]:
    for prefix, op in _PREFIXES:
        if key.startswith(prefix):
            return op, key[len(prefix) :]
    return "eq", key


def _condition(op: str, name: str, value: Any, zone: ZoneInfo) -> Condition:
    values = list(value.values()) if isinstance(value, dict) else value
    if isinstance(values, list):
        if op == "eq":
            op = "in"
        elif op == "ne":
            op = "notin"
        if op in ("between", "notbetween"):
            if len(values) != 2:
                raise invalid_arg(f"Filter '{name}' needs two values for a range")
            return Condition(name, op, [Operand(v, zone) for v in values])
        if op in ("in", "notin"):
            return Condition(name, op, [Operand(v, zone) for v in values])
        values = values[0] if values else ""
    if op in ("in", "notin"):
        return Condition(name, op, [Operand(values, zone)])
    if op in ("between", "notbetween"):
        raise invalid_arg(f"Filter '{name}' needs two values for a range")
    if op in ("like", "notlike", "substr", "notsubstr"):
        regex = _like_regex(str(values), substring=op in ("substr", "notsubstr"))
        return Condition(name, op, [], regex)
    return Condition(name, op, [Operand(values, zone)])


def compile_group(
    spec: dict[str, Any],
    resolve: Resolver,
    zone: ZoneInfo,
    ignore: frozenset[str],
    strict: bool = True,
) -> Group:
    """``strict``: an unknown field is INVALID_ARG_VALUE (crm.item.list,
    crm.stagehistory.list document it); otherwise it is dropped, as the legacy
    crm.*.list methods do (their docs list no such error)."""
    group = Group()
    for key, value in spec.items():
        key = str(key)
        if key.upper() == "LOGIC":
            group.logic = "OR" if str(value).upper() == "OR" else "AND"
            continue
        if key.upper() in ignore:
            continue
        if isinstance(value, dict) and (key.isdigit() or key.startswith("__")):
            group.items.append(compile_group(value, resolve, zone, ignore, strict))
            continue
        op, name = split_key(key.strip())
        field_name = resolve(name.strip())
        if field_name is None and not strict:
            continue
        if field_name is None:
            raise invalid_arg(f"Invalid filter: field '{name}' is not allowed in filter")
        group.items.append(_condition(op, field_name, value, zone))
    return group


def compile_filter(
    spec: dict[str, Any],
    resolve: Resolver,
    zone: ZoneInfo,
    id_field: str = "ID",
    ignore: frozenset[str] = frozenset(),
    strict: bool = True,
) -> Compiled:
    """Compile a filter; raises ApiError INVALID_ARG_VALUE for unknown fields if ``strict``."""
    root = compile_group(spec, resolve, zone, ignore, strict)
    compiled = Compiled()
    if root.logic == "OR":
        compiled.rest = root
        return compiled
    rest = Group()
    for item in root.items:
        if isinstance(item, Condition) and item.field == id_field and _lift(compiled, item):
            continue
        rest.items.append(item)
    compiled.rest = rest
    return compiled


def _lift(compiled: Compiled, cond: Condition) -> bool:
    """Turn an ID comparison into bisect bounds; False if it has to stay a condition."""
    if cond.op not in ("gt", "ge", "lt", "le", "eq") or len(cond.operands) != 1:
        return False
    operand = cond.operands[0]
    if operand.empty or operand.num is None:
        # ID against an empty or non-numeric value (e.g. an unresolved batch
        # reference ">ID": ""): no ID satisfies it, so nothing matches.
        compiled.empty = True
        return True
    number = operand.num
    low = high = None
    if cond.op == "gt":
        low = math.floor(number) + 1
    elif cond.op == "ge":
        low = math.ceil(number)
    elif cond.op == "lt":
        high = math.ceil(number) - 1
    elif cond.op == "le":
        high = math.floor(number)
    else:
        if number != int(number):
            compiled.empty = True
            return True
        low = high = int(number)
    if low is not None:
        compiled.low = low if compiled.low is None else max(compiled.low, low)
    if high is not None:
        compiled.high = high if compiled.high is None else min(compiled.high, high)
    if compiled.low is not None and compiled.high is not None and compiled.low > compiled.high:
        compiled.empty = True
    return True
