"""Bitrix24's event calls: the form body parsed into a typed event, checked.

An online event is a form-encoded POST with PHP-bracket keys
(BITRIX24_APP.md §4): ``event=ONCRMDEALUPDATE``, ``data[FIELDS][ID]=5``,
``ts=1732800000``, ``event_handler_id=7``, ``auth[member_id]=...``,
``auth[application_token]=...``, ``auth[domain]=...``. Events only say which
record changed; the by-ID sync reads it. Bitrix24 never retries an event, so
the handler answers at once and queues the change (rop.bitrix.event_queue).

Checks: the portal must be installed and the ``application_token`` must be
the one saved at install (the only proof an event comes from the portal,
docs: events/safe-event-handlers.md); a replayed or older event for the same
record is refused (:class:`ReplayGuard`).
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from rop.bitrix.changes import Changes

# ONCRM<KIND><ACTION> -> our entity name; ACTION ADD/UPDATE/MOVETOCATEGORY re-read, DELETE drops.
_CRM_EVENT = re.compile(
    r"^ONCRM(DEAL|LEAD|COMPANY|CONTACT|ACTIVITY)(ADD|UPDATE|DELETE|MOVETOCATEGORY)$"
)
_ENTITY = {
    "DEAL": "deals",
    "LEAD": "leads",
    "COMPANY": "companies",
    "CONTACT": "contacts",
    "ACTIVITY": "activities",
}
CALL_END = "ONVOXIMPLANTCALLEND"
# What the app binds (issue 10 item 4); activities come along for the calls' activities.
BOUND_EVENTS: tuple[str, ...] = (
    *(f"ONCRM{k}{a}" for k in ("DEAL", "LEAD", "COMPANY", "CONTACT") for a in ("ADD", "UPDATE", "DELETE")),
    "ONCRMDEALMOVETOCATEGORY",
    CALL_END,
)  # fmt: skip
_KEY = re.compile(r"\[([^\[\]]*)\]")
# Nested keys deeper than this are not Bitrix24's and not worth the memory.
_MAX_DEPTH = 6
MAX_FIELDS = 200


class EventRejected(ValueError):
    """An event that changes nothing; ``status`` is the HTTP answer (400, 401 or 403)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def php_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][c]=v`` pairs -> nested dicts (``a[]=v`` appends to a list)."""
    out: dict[str, Any] = {}
    for n, (raw_key, value) in enumerate(pairs):
        if n >= MAX_FIELDS:
            raise EventRejected(f"the event has more than {MAX_FIELDS} fields")
        head, _, rest = raw_key.partition("[")
        parts = [head] + (_KEY.findall("[" + rest) if rest else [])
        if not head or len(parts) > _MAX_DEPTH:
            raise EventRejected(f"malformed field name {raw_key[:60]!r}")
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                node.append({})
                node = node[-1]
                continue
            if last:
                node[part] = value
                break
            nxt = parts[i + 1]
            if part not in node or not isinstance(node[part], dict | list):
                node[part] = [] if nxt == "" else {}
            node = node[part]
    return out


def parse_form(body: bytes | str) -> dict[str, Any]:
    """A form-encoded body (``application/x-www-form-urlencoded``) -> nested dicts."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS
        )
    except ValueError as exc:
        raise EventRejected(f"the event body is not a form: {exc}") from None
    return php_form(pairs)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Event:
    """One event, reduced to what the sync needs and what the checks need."""

    name: str  # UPPERCASE, e.g. ONCRMDEALUPDATE
    member_id: str
    application_token: str
    domain: str
    ts: int | None
    handler_id: str | None
    entity: str | None = None  # deals|leads|companies|contacts|activities
    record_id: int | None = None
    deleted: bool = False
    call_id: str | None = None  # ONVOXIMPLANTCALLEND
    activity_id: int | None = None  # the call's CRM activity

    @property
    def supported(self) -> bool:
        return self.record_id is not None or self.call_id is not None

    @property
    def subject(self) -> tuple[str, str]:
        """What the event is about, for replay checks: (entity, id)."""
        if self.call_id is not None:
            return ("calls", self.call_id)
        return (self.entity or "", str(self.record_id))

    def changes(self) -> Changes:
        out = Changes()
        if self.entity is not None and self.record_id is not None:
            if self.deleted:
                out.delete(self.entity, self.record_id)
            else:
                out.change(self.entity, self.record_id)
        if self.call_id is not None:
            out.call(self.call_id)
        if self.activity_id is not None:
            out.change("activities", self.activity_id)
        return out


def data_changes(
    name: str, data: Any
) -> tuple[str | None, int | None, bool, str | None, int | None]:
    """(entity, record ID, deleted, call ID, activity ID) from an event's name and ``data``.

    Shared by online events (``data``) and offline ones (``EVENT_DATA``).
    """
    data = data if isinstance(data, Mapping) else {}
    match = _CRM_EVENT.match(name)
    if match:
        fields = data.get("FIELDS")
        rid = _int(fields.get("ID")) if isinstance(fields, Mapping) else None
        if rid is not None and rid <= 0:
            rid = None
        return _ENTITY[match.group(1)], rid, match.group(2) == "DELETE", None, None
    if name == CALL_END:
        call = str(data.get("CALL_ID") or "").strip() or None
        activity = _int(data.get("CRM_ACTIVITY_ID"))
        return None, None, False, call, activity if activity and activity > 0 else None
    return None, None, False, None, None


def parse_event(form: Mapping[str, Any]) -> Event:
    """A parsed form (:func:`parse_form`) -> :class:`Event`; EventRejected if it is not one."""
    name = str(form.get("event") or "").strip().upper()
    if not name:
        raise EventRejected("not a Bitrix24 event: 'event' is missing")
    auth = form.get("auth")
    auth = auth if isinstance(auth, Mapping) else {}
    member = str(auth.get("member_id") or "").strip()
    token = str(auth.get("application_token") or "").strip()
    if not member:
        raise EventRejected("the event names no portal: 'auth[member_id]' is missing", 401)
    if not token:
        raise EventRejected("the event carries no 'auth[application_token]'", 401)
    entity, rid, deleted, call, activity = data_changes(name, form.get("data"))
    handler = form.get("event_handler_id")
    return Event(
        name=name,
        member_id=member,
        application_token=token,
        domain=str(auth.get("domain") or ""),
        ts=_int(form.get("ts")),
        handler_id=str(handler) if handler not in (None, "") else None,
        entity=entity,
        record_id=rid,
        deleted=deleted,
        call_id=call,
        activity_id=activity,
    )


def check_event(event: Event, *, member_id: str | None, application_token: str | None) -> None:
    """Raise EventRejected unless ``event`` comes from the installed portal it names.

    ``member_id``/``application_token`` are what the install saved for that
    portal (None: no such portal is installed).
    """
    if member_id is None or application_token is None:
        raise EventRejected(f"no application is installed for portal {event.member_id!r}", 403)
    if not hmac.compare_digest(event.member_id, member_id):
        raise EventRejected("the event's member_id is not this portal's", 403)
    if not hmac.compare_digest(event.application_token.encode(), application_token.encode()):
        raise EventRejected("the event's application_token does not match the installed app's", 403)


class ReplayGuard:
    """Refuses an event seen before, or older than the last one for the same record.

    Remembers the newest ``ts`` per (portal, entity, ID) and the exact events
    seen, bounded (least recently used go first). Events older than
    ``max_age`` seconds are refused too, so a captured event cannot be
    replayed after it was forgotten. Re-reading a record is harmless, so a
    wrongly refused event costs nothing: the next event or the periodic
    re-scan reads the record anyway.
    """

    def __init__(self, size: int = 100_000, max_age: float = 24 * 3600.0) -> None:
        self.size = size
        self.max_age = max_age
        self._newest: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._seen: OrderedDict[tuple[str, str, str, str, int], None] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, event: Event, now: float | None = None) -> None:
        """Remember ``event`` or raise EventRejected (403) if it is a replay."""
        if event.ts is None:
            raise EventRejected("the event has no 'ts'")
        now = time.time() if now is None else now
        if event.ts < now - self.max_age:
            raise EventRejected(f"the event is too old (ts {event.ts})", 403)
        subject = (event.member_id, *event.subject)
        exact = (*subject, event.name, event.ts)
        with self._lock:
            if exact in self._seen:
                raise EventRejected("the event was already received (replayed)", 403)
            newest = self._newest.get(subject)
            if newest is not None and event.ts < newest:
                raise EventRejected(
                    f"the event is older than one already processed for {subject[1]} {subject[2]}",
                    403,
                )
            self._seen[exact] = None
            self._newest[subject] = max(event.ts, newest or event.ts)
            self._newest.move_to_end(subject)
            for table in (self._seen, self._newest):
                while len(table) > self.size:
                    table.popitem(last=False)


Installed = Callable[[str], tuple[str, str] | None]


def receive_event(
    body: bytes | str, installed: Installed, guard: ReplayGuard, now: float | None = None
) -> Event:
    """The whole check of one online event, for a thin route; EventRejected says why not.

    ``installed(member_id)`` gives that portal's saved (member_id,
    application_token), or None if no app is installed there. The route
    answers 200 and queues ``event.changes()`` for a supported event (an
    unsupported one is answered 200 and ignored: Bitrix24 would not retry
    anyway), or ``exc.status`` with the message.
    """
    event = parse_event(parse_form(body))
    saved = installed(event.member_id)
    member, token = saved if saved is not None else (None, None)
    check_event(event, member_id=member, application_token=token)
    guard.admit(event, now)
    return event
