"""Bitrix24 REST values (strings, "Y"/"N", ISO dates with offset) to Python values.

Classic list methods send numbers as strings and empty values as ``null`` or
``""``; crm.item.list sends typed values. These helpers accept both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def to_int(value: Any) -> int | None:
    if value is None or value == "" or value is False:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return int(float(value))


def to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def to_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).upper() in {"Y", "1", "TRUE"}


def to_text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def to_utc(value: Any) -> datetime | None:
    """An ISO 8601 moment with offset -> naive UTC datetime (the store's convention)."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def to_local_date(value: Any) -> date | None:
    """The calendar date as the portal wrote it (date-only fields like CLOSEDATE).

    Bitrix24 sends such dates as local midnight with the portal's offset, so
    the date part of the string is the date the user picked.
    """
    if value is None or value == "":
        return None
    return date.fromisoformat(str(value)[:10])


def offset_zone_name(value: str) -> str | None:
    """An IANA zone for the fixed offset an ISO moment carries ("+03:00" -> "Etc/GMT-3").

    Used to guess the portal's time zone when nothing names it. Offsets that
    are not whole hours have no Etc/ zone; the caller then falls back to UTC.
    """
    moment = datetime.fromisoformat(value)
    offset = moment.utcoffset()
    if offset is None:
        return None
    minutes = int(offset.total_seconds() // 60)
    if minutes % 60:
        return None
    hours = minutes // 60
    if hours == 0:
        return "UTC"
    # POSIX-style Etc zones have the sign inverted.
    return f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"
