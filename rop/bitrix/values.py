"""Bitrix24 REST values (strings, "Y"/"N", ISO dates with offset) to Python values.

Classic list methods send numbers as strings and empty values as ``null`` or
``""``; crm.item.list sends typed values. These helpers accept both.

"Nothing" has several spellings in Bitrix24: ``null``, ``""`` (an empty
SOURCE_ID, CURRENCY_ID, STAGE_SEMANTIC_ID...) and, for a link to another
record or a user, ``0`` / ``"0"`` (a deal with no company has COMPANY_ID
"0"). :func:`to_code` and :func:`to_ref` turn each into ``None`` here, where
records become rows, so the store holds ``NULL`` for "nothing" and the
report's ``IS NULL`` / ``coalesce`` mean what they say (a deal whose
SOURCE_ID is "" falls back to its lead's source, not to a nameless row).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def is_nothing(value: Any) -> bool:
    """``null`` or a blank string: Bitrix24's ways of sending no value."""
    return value is None or (isinstance(value, str) and not value.strip())


def to_int(value: Any) -> int | None:
    if is_nothing(value) or value is False:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return int(float(value))


def to_float(value: Any) -> float | None:
    if is_nothing(value):
        return None
    return float(value)


def to_bool(value: Any) -> bool | None:
    if is_nothing(value):
        return None
    if isinstance(value, bool):
        return value
    return str(value).upper() in {"Y", "1", "TRUE"}


def to_code(value: Any) -> str | None:
    """A code the report groups or filters by (SOURCE_ID, STAGE_ID, CURRENCY_ID...):
    blank is nothing."""
    return None if is_nothing(value) else str(value)


def to_ref(value: Any) -> int | None:
    """An ID that points at another record or a user: ``0`` is Bitrix24's "none"."""
    if is_nothing(value):
        return None
    number = to_int(value)
    return number if number else None


def to_text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def to_utc(value: Any) -> datetime | None:
    """An ISO 8601 moment with offset -> naive UTC datetime (the store's convention)."""
    if is_nothing(value):
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
    if is_nothing(value):
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
