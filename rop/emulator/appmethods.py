"""REST methods of the application context: placements, events, the offline queue.

All of them need an app's OAuth token (a webhook gets 403 ``WRONG_AUTH_TYPE``,
placement-bind.md); binding placements and offline events needs a portal
administrator (403 ``ACCESS_DENIED``). Shapes and errors follow the docs pages
api-reference/widgets/placement-{bind,get,unbind}.md and
api-reference/events/event-{bind,get,unbind,offline-get,offline-clear,offline-error,offline-list}.md.
"""

from __future__ import annotations

import json
from typing import Any

from rop.emulator.application import SINGLE_PLACEMENTS, Placement
from rop.emulator.errors import ApiError
from rop.emulator.events import KNOWN_EVENTS, OfflineEvent
from rop.emulator.listing import PAGE_SIZE, parse_start
from rop.emulator.params import as_dict, as_list, get
from rop.emulator.registry import Call, Reply, method

_WRONG_AUTH = "Current authorization type is denied for this method Application context required"


def _app_context(call: Call) -> Any:
    if not call.via_app or call.host is None or not call.host.app.present:
        raise ApiError("WRONG_AUTH_TYPE", _WRONG_AUTH, 403)
    return call.host


def _admin(call: Call, text: str = "Access denied!") -> None:
    if call.user_id not in call.portal.admins:
        raise ApiError("ACCESS_DENIED", text, 403)


def _argument(name: str, text: str | None = None) -> ApiError:
    error = ApiError("ERROR_ARGUMENT", text or f"Argument '{name}' is null or empty", 400)
    error.extra = {"argument": name}
    return error


def _text(call: Call, name: str) -> str:
    value = get(call.params, name)
    if value is None or value == "":
        return ""
    if not isinstance(value, str | int | float):
        raise _argument(name, f"The value of an argument '{name}' must be of type string")
    return str(value).strip()


# -- placements --------------------------------------------------------------------


@method("placement.bind")
def placement_bind(call: Call) -> Reply:
    host = _app_context(call)
    _admin(call)
    code = _text(call, "PLACEMENT").upper()
    if not code:
        raise _argument("PLACEMENT")
    handler = _text(call, "HANDLER")
    if not handler:
        raise _argument("HANDLER")
    if not handler.startswith(("http://", "https://")):
        raise ApiError("ERROR_WRONG_HANDLER_URL", "Wrong handler URL", 400)
    user_id = _text(call, "USER_ID")
    if user_id and user_id != "0" and code != "PAGE_BACKGROUND_WORKER":
        raise ApiError("ERROR_PLACEMENT_USER_MODE", "User mode is not available", 400)
    lang_all = get(call.params, "LANG_ALL") or {}
    with host.app.lock:
        existing = [p for p in host.app.placements if p.placement == code]
        if code in SINGLE_PLACEMENTS and existing:
            raise ApiError("ERROR_PLACEMENT_MAX_COUNT", "Placement max count exceeded", 400)
        if any(p.handler == handler for p in existing):
            raise ApiError("ERROR_PLACEMENT_HANDLER_EXISTS", "Handler already binded", 400)
        host.app.placements.append(
            Placement(
                code,
                handler,
                title=_text(call, "TITLE"),
                description=_text(call, "DESCRIPTION"),
                group_name=_text(call, "GROUP_NAME"),
                lang_all=lang_all if isinstance(lang_all, dict) else {},
                options=get(call.params, "OPTIONS") or [],
            )
        )
    return Reply(True)


@method("placement.get")
def placement_get(call: Call) -> Reply:
    host = _app_context(call)
    with host.app.lock:
        return Reply([p.as_reply() for p in host.app.placements])


@method("placement.unbind")
def placement_unbind(call: Call) -> Reply:
    host = _app_context(call)
    _admin(call)
    code = _text(call, "PLACEMENT").upper()
    if not code:
        raise _argument("PLACEMENT")
    handler = _text(call, "HANDLER")
    with host.app.lock:
        gone = [
            p
            for p in host.app.placements
            if p.placement == code and (not handler or p.handler == handler)
        ]
        host.app.placements = [p for p in host.app.placements if p not in gone]
    # placement-unbind.md: +1 per record found, +1 per record removed.
    return Reply({"count": 2 * len(gone)})


@method("placement.list")
def placement_list(call: Call) -> Reply:
    _app_context(call)
    return Reply(["DEFAULT", "LEFT_MENU", "CRM_ANALYTICS_MENU", "REST_APP_URI"])


# -- events ---------------------------------------------------------------------------


def _auth_type(call: Call) -> int:
    raw = _text(call, "auth_type")
    try:
        return int(raw) if raw else 0
    except ValueError:
        raise _argument("auth_type", "Argument 'auth_type' must be an integer") from None


@method("event.bind")
def event_bind(call: Call) -> Reply:
    host = _app_context(call)
    event = _text(call, "event").upper()
    if event not in KNOWN_EVENTS:
        raise ApiError("ERROR_EVENT_NOT_FOUND", "Event not found", 400)
    offline = _text(call, "event_type").lower() == "offline"
    handler = _text(call, "handler")
    auth_type = _auth_type(call)
    admin = call.user_id in call.portal.admins
    if offline and not admin:
        raise ApiError(
            "ACCESS_DENIED",
            "Access denied! Offline events binding requires administrator access rights",
            403,
        )
    if not admin:
        # event-bind.md: a non-admin binds for themselves only.
        if auth_type not in (0, call.user_id):
            raise ApiError(
                "ACCESS_DENIED",
                "Access denied! Event binding with AUTH_TYPE requires administrator access rights",
                403,
            )
        auth_type = call.user_id
    if not offline and not handler:
        raise _argument("handler", "Handler is empty")
    if handler and not handler.startswith(("http://", "https://")):
        raise ApiError("ERROR_WRONG_HANDLER_URL", "Wrong handler URL", 400)
    options = get(call.params, "options")
    if not host.events.bind(
        event, handler, auth_type, offline, _text(call, "auth_connector"), options
    ):
        raise ApiError("ERROR_HANDLER_ALREADY_EXISTS", "Handler already binded", 400)
    return Reply(True)


@method("event.get")
def event_get(call: Call) -> Reply:
    host = _app_context(call)
    return Reply([b.as_reply() for b in host.events.all_bindings()])


@method("event.unbind")
def event_unbind(call: Call) -> Reply:
    host = _app_context(call)
    event = _text(call, "event").upper()
    if not event:
        raise _argument("event")
    offline = _text(call, "event_type").lower() == "offline"
    admin = call.user_id in call.portal.admins
    raw_auth = _text(call, "auth_type")
    auth_type = _auth_type(call) if raw_auth else None
    if offline and not admin:
        raise ApiError(
            "ACCESS_DENIED",
            "Access denied! Offline events unbinding requires administrator access rights",
            403,
        )
    if not admin and auth_type not in (None, call.user_id):
        raise ApiError(
            "ACCESS_DENIED",
            "Access denied! Event unbinding with AUTH_TYPE requires administrator access rights",
            403,
        )
    handler = _text(call, "handler") or None
    return Reply({"count": host.events.unbind(event, handler, auth_type, offline)})


@method("events")
def events_list(call: Call) -> Reply:
    return Reply(sorted(KNOWN_EVENTS))


# -- the offline queue ------------------------------------------------------------------

_OFFLINE_FIELDS = {
    "ID": lambda e: e.id,
    "TIMESTAMP_X": lambda e: e.timestamp,
    "EVENT_NAME": lambda e: e.event,
    "MESSAGE_ID": lambda e: e.message_id,
    "PROCESS_ID": lambda e: e.process_id,
    "ERROR": lambda e: "1" if e.error else "0",
}


def _offline_filter(spec: dict[str, Any]) -> Any:
    """event-offline-get.md: fields ID, TIMESTAMP_X, EVENT_NAME, MESSAGE_ID, the
    operator before the name (=, !, >, >=, <, <=)."""
    checks = []
    for raw_key, value in spec.items():
        key = str(raw_key)
        op = ""
        for candidate in (">=", "<=", "!=", "=", ">", "<", "!"):
            if key.startswith(candidate):
                op, key = candidate, key[len(candidate) :]
                break
        field = key.upper()
        getter = _OFFLINE_FIELDS.get(field)
        if getter is None:
            raise ApiError("ERROR_ARGUMENT", f"Unknown filter field '{field}'", 400)
        checks.append((getter, op or "=", value, field))

    def matches(event: OfflineEvent) -> bool:
        for getter, op, value, field in checks:
            have = getter(event)
            if field == "ID":
                have, value = int(have), int(value)
            elif field == "EVENT_NAME":
                have, value = str(have).upper(), str(value).upper()
            else:
                have, value = str(have), str(value)
            ok = {
                "=": have == value,
                "!": have != value,
                "!=": have != value,
                ">": have > value,
                ">=": have >= value,
                "<": have < value,
                "<=": have <= value,
            }[op]
            if not ok:
                return False
        return True

    return matches


def _offline_order(spec: dict[str, Any], default: str) -> Any:
    keys = [(str(k).upper(), str(v).upper() == "DESC") for k, v in spec.items()] or [
        (default, False)
    ]
    for name, _ in keys:
        if name not in _OFFLINE_FIELDS:
            raise ApiError("ERROR_ARGUMENT", f"Unknown order field '{name}'", 400)

    def order(rows: list[OfflineEvent]) -> list[OfflineEvent]:
        for name, desc in reversed(keys):
            rows = sorted(rows, key=_OFFLINE_FIELDS[name], reverse=desc)
        return rows

    return order


def _offline_admin(call: Call) -> Any:
    host = _app_context(call)
    _admin(call, "Access denied! Administrator access rights required")
    return host


def _connector_matches(call: Call, base: Any) -> Any:
    connector = _text(call, "auth_connector")

    def matches(event: OfflineEvent) -> bool:
        # A queue per source: without auth_connector only source-less events (offline-events.md).
        return event.connector == connector and base(event)

    return matches


@method("event.offline.get")
def offline_get(call: Call) -> Reply:
    host = _offline_admin(call)
    matches = _connector_matches(
        call, _offline_filter(as_dict(get(call.params, "filter"), "filter"))
    )
    order = _offline_order(as_dict(get(call.params, "order"), "order"), "TIMESTAMP_X")
    raw_limit = _text(call, "limit")
    limit = int(raw_limit) if raw_limit.isdigit() else 50
    clear = _text(call, "clear") != "0"
    with_errors = _text(call, "error") == "1"
    process_id, rows = host.events.take_offline(
        matches, order, limit, clear, _text(call, "process_id"), with_errors
    )
    return Reply({"process_id": process_id, "events": [e.as_reply() for e in rows]})


@method("event.offline.clear")
def offline_clear(call: Call) -> Reply:
    host = _offline_admin(call)
    process_id = _text(call, "process_id")
    if not process_id:
        raise _argument("process_id")
    ids = {str(i) for i in as_list(get(call.params, "id"))}
    message_ids = {str(i) for i in as_list(get(call.params, "message_id"))}
    host.events.clear_offline(process_id, ids, message_ids)
    return Reply(True)


@method("event.offline.error")
def offline_error(call: Call) -> Reply:
    host = _offline_admin(call)
    process_id = _text(call, "process_id")
    if not process_id:
        raise _argument("process_id")
    message_ids = {str(i) for i in as_list(get(call.params, "message_id"))}
    host.events.error_offline(process_id, message_ids)
    return Reply(True)


@method("event.offline.list")
def offline_list(call: Call) -> Reply:
    host = _offline_admin(call)
    matches = _connector_matches(
        call, _offline_filter(as_dict(get(call.params, "filter"), "filter"))
    )
    order = _offline_order(as_dict(get(call.params, "order"), "order"), "ID")
    rows = order([e for e in host.events.queued() if matches(e)])
    start = max(parse_start(get(call.params, "start")), 0)
    page = rows[start : start + PAGE_SIZE]
    following = start + PAGE_SIZE
    return Reply(
        [e.as_reply(listing=True) for e in page],
        len(rows),
        following if following < len(rows) else None,
    )


def placement_options_json(options: dict[str, Any]) -> str:
    """PLACEMENT_OPTIONS travels as a JSON string (widget_data.md)."""
    return json.dumps(options, ensure_ascii=False)
