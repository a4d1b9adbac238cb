"""The portal's time zone, guessed from what the REST API tells.

Bitrix24 has no method that names the portal's zone. What it does tell:

- every date comes with the portal server's UTC offset *at that moment*
  (``time.date_start`` of any reply, users' ``DATE_REGISTER`` and
  ``LAST_LOGIN``), so dates from different seasons show daylight saving;
- ``user.current`` / ``user.get`` carry a user's own ``TIME_ZONE`` (an IANA
  name, documented in every user scope, and often empty).

The guess, in order: the webhook user's ``TIME_ZONE``, then the zones other
users chose (most common first), each only if it gives the offset of every
sampled date; else, when the samples show daylight saving, an IANA zone whose
rules give all of them; else a fixed-offset zone from the portal's clock
(``+03:00`` -> ``Etc/GMT-3``); else UTC.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError, available_timezones

from rop.bitrix.values import offset_zone_name

# User fields that hold moments written with the server's offset (user.get).
USER_DATE_FIELDS = ("DATE_REGISTER", "LAST_LOGIN")
# Enough distinct moments to see both sides of a daylight-saving change.
MAX_SAMPLES = 200
# When several zones fit the same sampled offsets the choice only decides the
# name shown (each gives those offsets): try zones of Bitrix24's big markets
# first, then the rest region by region, alphabetically.
_COMMON_ZONES = (
    "Europe/Moscow", "Europe/Kaliningrad", "Europe/Samara", "Asia/Yekaterinburg",
    "Asia/Omsk", "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Vladivostok",
    "Europe/Minsk", "Europe/Kyiv", "Asia/Almaty", "Asia/Tashkent", "Europe/Berlin",
    "Europe/London", "Europe/Paris", "Europe/Warsaw", "America/Sao_Paulo",
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
)  # fmt: skip
_PREFERRED_REGIONS = ("Europe/", "Asia/", "America/", "Africa/", "Australia/", "Pacific/")


def _zone(name: Any) -> ZoneInfo | None:
    if not name or not isinstance(name, str):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _moments(texts: Iterable[Any]) -> list[datetime]:
    """Distinct ISO moments that carry an offset; anything else is skipped."""
    seen: dict[tuple[datetime, timedelta | None], datetime] = {}
    for text in texts:
        if not text or not isinstance(text, str):
            continue
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            continue  # e.g. TIMESTAMP_X "24.08.2023 13:19:39"
        if moment.utcoffset() is None:
            continue
        seen.setdefault((moment, moment.utcoffset()), moment)
        if len(seen) >= MAX_SAMPLES:
            break
    return list(seen.values())


def _fits(zone: ZoneInfo, moments: Sequence[datetime]) -> bool:
    return all(m.astimezone(zone).utcoffset() == m.utcoffset() for m in moments)


def _canonical_names() -> frozenset[str]:
    """Current zone names from the system's zone1970.tab, to rank them above
    old aliases (Asia/Kolkata before Asia/Calcutta); empty if there is none."""
    for folder in TZPATH:
        try:
            text = Path(folder, "zone1970.tab").read_text(encoding="utf-8")
        except OSError:
            continue
        rows = (line.split("\t") for line in text.splitlines() if not line.startswith("#"))
        return frozenset(row[2] for row in rows if len(row) > 2)
    return frozenset()


@functools.cache
def _region_zones() -> tuple[str, ...]:
    names = [n for n in available_timezones() if n.startswith(_PREFERRED_REGIONS)]
    canonical = _canonical_names()

    def rank(name: str) -> tuple[bool, int, str]:
        region = next(i for i, p in enumerate(_PREFERRED_REGIONS) if name.startswith(p))
        return (name not in canonical, region, name)

    rest = sorted((n for n in names if n not in _COMMON_ZONES), key=rank)
    return tuple(n for n in _COMMON_ZONES if n in names) + tuple(rest)


def guess_timezone(named: Any, sample_dates: Sequence[Any]) -> str:
    """The portal's IANA zone.

    ``named``: zone names users chose, best first (a single name or None is
    accepted too). ``sample_dates``: ISO moments the portal wrote, the
    portal's current clock first (its offset is the fallback).
    """
    names = [named] if named is None or isinstance(named, str) else list(named)
    moments = _moments(sample_dates)
    if not moments:
        for name in names:
            if _zone(name) is not None:
                return str(name)
        return "UTC"
    for name in names:
        zone = _zone(name)
        if zone is not None and _fits(zone, moments):
            return str(name)
    fixed = offset_zone_name(moments[0].isoformat())
    if fixed is None or len({m.utcoffset() for m in moments}) > 1:
        # Daylight saving seen in the portal's own dates (a fixed offset would
        # put half the year's day boundaries an hour off), or an offset that
        # is not whole hours (no Etc/ zone has it, e.g. +05:30).
        for name in _region_zones():
            if _fits(ZoneInfo(name), moments):
                return name
    return fixed or "UTC"


def portal_timezone(
    webhook_user: dict[str, Any],
    users: Sequence[dict[str, Any]],
    date_start: str | None,
    known: str | None = None,
) -> str:
    """:func:`guess_timezone` over what a sync has read: the webhook user
    (``user.current``), every user (``user.get``) and the preflight's clock.

    ``known`` is the zone the store already has for the portal (set by
    ``--timezone`` or an earlier sync): while it still fits the portal's
    clock it is kept, so a sync never swaps "Europe/Moscow" for the bare
    offset "Etc/GMT-3" that the clock alone would give."""
    me = str(webhook_user.get("ID") or "")
    mine = [webhook_user.get("TIME_ZONE")]
    mine += [u.get("TIME_ZONE") for u in users if str(u.get("ID") or "") == me]
    chosen = Counter(
        str(u.get("TIME_ZONE"))
        for u in users
        if u.get("TIME_ZONE") and u.get("ACTIVE") is not False
    )
    names = [n for n in mine if n] + [name for name, _ in chosen.most_common()]
    if known and not known.startswith("Etc/"):
        names.append(known)
    samples: list[Any] = [date_start]
    samples += [u.get(f) for u in users for f in USER_DATE_FIELDS]
    return guess_timezone(names, samples)
