"""Subscriptions: who gets a digest, when, of which relative period, how.

A reader (any user of the portal) subscribes to a schedule (daily, weekly
on a weekday, monthly on a day) at a local time in their own time zone,
working days only by default, for a period relative to the send date and
a saved filter (pipelines, departments, managers, sections), through chat
and/or e-mail. Report administrators manage anyone's subscriptions; a
reader manages their own (``may_manage``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rop.digests.errors import DigestDenied, DigestInputError
from rop.report.filter import SECTIONS
from rop.report.periods import resolve_period
from rop.report.scope import is_report_admin
from rop.store.db import Store

FREQUENCIES = ("daily", "weekly", "monthly")
# Periods relative to the send date (the reader's local day of the slot).
PERIODS = ("yesterday", "last_week", "last_month", "month_to_date")
CHANNELS = ("chat", "email")
LANGUAGES = ("ru", "en")
# The saved filter: the report filter's choices a digest keeps (dates and
# viewer come from the schedule and the reader).
FILTER_KEYS = ("pipelines", "departments", "managers", "sections")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Subscription:
    portal: str
    id: int
    user_id: int
    frequency: str = "weekly"
    weekday: int | None = 0  # Monday = 0 (weekly)
    month_day: int | None = None  # 1..31, clamped to the month's last day (monthly)
    at_time: str = "09:00"  # local time of the reader
    workdays_only: bool = True
    period: str = "last_week"
    filter: dict[str, Any] = field(default_factory=dict)
    channels: tuple[str, ...] = ("chat",)
    xlsx: bool = False
    language: str = "ru"
    created_by: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))

    @property
    def hour_minute(self) -> tuple[int, int]:
        h, m = self.at_time.split(":")
        return int(h), int(m)

    def describe(self) -> str:
        """One line for the CLI and the settings page."""
        when = {
            "daily": "daily",
            "weekly": f"weekly on {_WEEKDAYS[self.weekday or 0]}",
            "monthly": f"monthly on day {self.month_day}",
        }[self.frequency]
        days = ", working days" if self.workdays_only else ""
        return (
            f"#{self.id} user {self.user_id}: {when} at {self.at_time}{days}; "
            f"{self.period}; {'+'.join(self.channels)}{' +xlsx' if self.xlsx else ''}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "frequency": self.frequency,
            "weekday": self.weekday,
            "month_day": self.month_day,
            "at_time": self.at_time,
            "workdays_only": self.workdays_only,
            "period": self.period,
            "filter": self.filter,
            "channels": list(self.channels),
            "xlsx": self.xlsx,
            "language": self.language,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(timespec="seconds"),
        }


def period_days(period: str, send_day: date) -> tuple[date, date]:
    """The inclusive days a digest sent on ``send_day`` covers.

    The report's own presets (rop.report.periods) for yesterday, last week
    and last month; "month to date" is the month of yesterday up to
    yesterday, so the digest of the 1st shows the whole month just ended.
    """
    if period == "month_to_date":
        last = send_day - timedelta(days=1)
        return last.replace(day=1), last
    if period not in PERIODS:
        raise DigestInputError(f"unknown period {period!r}; choose from {', '.join(PERIODS)}")
    return resolve_period(period, send_day)


def _weekday(raw: Any) -> int:
    text = str(raw).strip().lower()
    if text[:3] in _WEEKDAYS:
        return _WEEKDAYS.index(text[:3])
    if text.isdigit() and 1 <= int(text) <= 7:
        return int(text) - 1
    raise DigestInputError(f"weekday {raw!r} is not a day: mon..sun or 1..7 (Monday = 1)")


def _ints(raw: Any, name: str, lowest: int = 1) -> list[int]:
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    out = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not text.isdigit() or int(text) < lowest:
            above = "0 or above" if lowest == 0 else "above 0"
            raise DigestInputError(f"{name} {text!r} is not an ID (a whole number {above})")
        out.append(int(text))
    return out


def clean_filter(raw: dict[str, Any] | None) -> dict[str, Any]:
    """The saved filter, checked: ID lists and known sections only."""
    out: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        if key not in FILTER_KEYS:
            raise DigestInputError(
                f"unknown filter key {key!r}; choose from {', '.join(FILTER_KEYS)}"
            )
        if key == "sections":
            items = value if isinstance(value, list | tuple) else str(value).split(",")
            names = [str(s).strip() for s in items if str(s).strip()]
            bad = [s for s in names if s not in SECTIONS]
            if bad:
                raise DigestInputError(
                    f"unknown section {bad[0]!r}; choose from {', '.join(SECTIONS)}"
                )
            if names:
                out[key] = names
        else:
            # Bitrix24's default pipeline is 0; users and departments start at 1.
            ids = _ints(value, key.rstrip("s"), lowest=0 if key == "pipelines" else 1)
            if ids:
                out[key] = ids
    return out


def make(
    portal: str,
    user_id: int,
    *,
    frequency: str = "weekly",
    weekday: Any = None,
    month_day: Any = None,
    at_time: str = "09:00",
    workdays_only: bool = True,
    period: str | None = None,
    filter: dict[str, Any] | None = None,
    channels: Any = ("chat",),
    xlsx: bool = False,
    language: str = "ru",
    created_by: int | None = None,
    id: int = 0,
) -> Subscription:
    """A checked subscription (not saved); every problem is a DigestInputError."""
    if frequency not in FREQUENCIES:
        raise DigestInputError(
            f"unknown frequency {frequency!r}; choose from {', '.join(FREQUENCIES)}"
        )
    wd: int | None = None
    md: int | None = None
    if frequency == "weekly":
        wd = 0 if weekday in (None, "") else _weekday(weekday)
    if frequency == "monthly":
        text = "1" if month_day in (None, "") else str(month_day).strip()
        if not text.isdigit() or not 1 <= int(text) <= 31:
            raise DigestInputError(f"day of month {month_day!r} must be 1..31")
        md = int(text)
    match = _TIME.match(str(at_time).strip())
    if not match:
        raise DigestInputError(f"time {at_time!r} must be HH:MM (24-hour), e.g. 09:00")
    at = f"{int(match.group(1)):02d}:{match.group(2)}"
    chosen = (
        period or {"daily": "yesterday", "weekly": "last_week", "monthly": "last_month"}[frequency]
    )
    if chosen not in PERIODS:
        raise DigestInputError(f"unknown period {chosen!r}; choose from {', '.join(PERIODS)}")
    items = channels.split(",") if isinstance(channels, str) else list(channels)
    chans = tuple(dict.fromkeys(str(c).strip().lower() for c in items if str(c).strip()))
    if not chans:
        raise DigestInputError("no channel: choose chat, email or both")
    bad = [c for c in chans if c not in CHANNELS]
    if bad:
        raise DigestInputError(f"unknown channel {bad[0]!r}; choose from {', '.join(CHANNELS)}")
    if language not in LANGUAGES:
        raise DigestInputError(f"unknown language {language!r}; choose ru or en")
    return Subscription(
        portal=portal,
        id=id,
        user_id=int(user_id),
        frequency=frequency,
        weekday=wd,
        month_day=md,
        at_time=at,
        workdays_only=bool(workdays_only),
        period=chosen,
        filter=clean_filter(filter),
        channels=chans,
        xlsx=bool(xlsx),
        language=language,
        created_by=created_by,
    )


def may_manage(store: Store, portal: str, actor: int | None, reader: int) -> bool:
    """Report administrators manage anyone's subscriptions; a reader their own.

    ``actor`` None is the local administrator (the CLI without ``--as``).
    """
    return actor is None or actor == reader or is_report_admin(store, portal, actor)


def _check_reader(store: Store, portal: str, user_id: int) -> None:
    known = store.scalar(
        "SELECT count(*) FROM users WHERE portal = ? AND id = ?", [portal, user_id]
    )
    if not known:
        raise DigestInputError(f"user {user_id} is not a user of {portal}")


def add(store: Store, sub: Subscription, *, actor: int | None = None) -> Subscription:
    """Save ``sub`` under a new ID; returns it with that ID."""
    _check_reader(store, sub.portal, sub.user_id)
    if not may_manage(store, sub.portal, actor, sub.user_id):
        raise DigestDenied(f"user {actor} may manage only their own digests")
    with store.transaction():
        top = store.scalar(
            "SELECT max(id) FROM digest_subscriptions WHERE portal = ?", [sub.portal]
        )
        saved = Subscription(**{**sub.__dict__, "id": int(top or 0) + 1, "created_by": actor})
        store.upsert("digest_subscriptions", [_row(saved)])
    return saved


def remove(store: Store, portal: str, sub_id: int, *, actor: int | None = None) -> Subscription:
    """Delete subscription ``sub_id``; its delivery log stays."""
    sub = get(store, portal, sub_id)
    if not may_manage(store, portal, actor, sub.user_id):
        raise DigestDenied(f"user {actor} may manage only their own digests")
    store.execute("DELETE FROM digest_subscriptions WHERE portal = ? AND id = ?", [portal, sub_id])
    return sub


def get(store: Store, portal: str, sub_id: int) -> Subscription:
    rows = store.query_dicts(
        "SELECT * FROM digest_subscriptions WHERE portal = ? AND id = ?", [portal, sub_id]
    )
    if not rows:
        raise DigestInputError(f"no digest #{sub_id} on {portal}")
    return _from_row(rows[0])


def listed(store: Store, portal: str, user_id: int | None = None) -> list[Subscription]:
    """Every subscription of ``portal`` (or of one reader), by ID."""
    sql = "SELECT * FROM digest_subscriptions WHERE portal = ?"
    params: list[Any] = [portal]
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    return [_from_row(r) for r in store.query_dicts(sql + " ORDER BY id", params)]


def _row(sub: Subscription) -> dict[str, Any]:
    return {
        "portal": sub.portal,
        "id": sub.id,
        "user_id": sub.user_id,
        "frequency": sub.frequency,
        "weekday": sub.weekday,
        "month_day": sub.month_day,
        "at_time": sub.at_time,
        "workdays_only": sub.workdays_only,
        "period": sub.period,
        "filter": json.dumps(sub.filter, sort_keys=True),
        "channels": ",".join(sub.channels),
        "xlsx": sub.xlsx,
        "language": sub.language,
        "created_by": sub.created_by,
        "created_at": sub.created_at,
    }


def _from_row(r: dict[str, Any]) -> Subscription:
    return Subscription(
        portal=r["portal"],
        id=int(r["id"]),
        user_id=int(r["user_id"]),
        frequency=r["frequency"],
        weekday=r["weekday"],
        month_day=r["month_day"],
        at_time=r["at_time"],
        workdays_only=bool(r["workdays_only"]),
        period=r["period"],
        filter=json.loads(r["filter"] or "{}"),
        channels=tuple(c for c in str(r["channels"]).split(",") if c),
        xlsx=bool(r["xlsx"]),
        language=r["language"],
        created_by=r["created_by"],
        created_at=r["created_at"],
    )
