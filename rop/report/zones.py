"""A time zone as a reader names it: "Москва, UTC+3", never "Etc/GMT-3".

POSIX ``Etc/GMT-3`` means three hours *ahead* of UTC, which reads as the
opposite; a page or a table shows the zone's city (from Babel's CLDR data,
in the reader's language) and its offset with the sign people expect.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUS = "\u2212"


def utc_offset(name: str, at: datetime | None = None) -> str | None:
    """ "UTC+3", "UTC−5", "UTC+5:30", "UTC" for the zone at ``at`` (now by default)."""
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    offset = (at or datetime.now(UTC)).astimezone(zone).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else MINUS
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _city(name: str, lang: str) -> str | None:
    if name.startswith("Etc/") or "/" not in name:
        return None  # a bare offset (or UTC) has no place to name
    try:
        from babel.dates import get_timezone_location

        return str(get_timezone_location(name, locale=lang, return_city=True))
    except (LookupError, ValueError):
        return name.rsplit("/", 1)[-1].replace("_", " ")


def zone_label(name: str | None, lang: str = "ru", at: datetime | None = None) -> str:
    """The zone for a reader: "Москва, UTC+3" / "Moscow, UTC+3"; a fixed offset
    is just "UTC+3"; a name Python does not know is shown as it is."""
    if not name:
        return "UTC"
    offset = utc_offset(name, at)
    if offset is None:
        return name
    city = _city(name, lang)
    return f"{city}, {offset}" if city else offset
