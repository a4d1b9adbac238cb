"""Events: bindings (``event.bind``), online delivery, the offline queue.

Bitrix24's rules (BITRIX24_APP.md §4, docs api-reference/events/*.md):
- nothing is delivered until the app's install finished (``installFinish``);
- an online event is one form-encoded POST (PHP bracket keys: ``data[FIELDS][ID]``,
  ``auth[application_token]``) from a queue, **never retried**: a failed or slow
  delivery is logged and dropped;
- an offline event waits in a queue keeping the latest state per object until
  ``event.offline.get`` takes it (``clear=1``) or reserves it under a
  ``process_id`` (``clear=0``) for ``event.offline.clear``/``event.offline.error``.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

log = logging.getLogger("rop.emulator.events")

CRM_KINDS = {"deal": "DEAL", "lead": "LEAD", "company": "COMPANY", "contact": "CONTACT"}
KNOWN_EVENTS = frozenset(
    [
        f"ONCRM{name}{action}"
        for name in CRM_KINDS.values()
        for action in ("ADD", "UPDATE", "DELETE")
    ]
    + [f"ONCRMACTIVITY{action}" for action in ("ADD", "UPDATE", "DELETE")]
    + ["ONCRMDEALMOVETOCATEGORY"]
    + ["ONVOXIMPLANTCALLINIT", "ONVOXIMPLANTCALLSTART", "ONVOXIMPLANTCALLEND"]
    + ["ONAPPINSTALL", "ONAPPUNINSTALL", "ONAPPUPDATE", "ONOFFLINEEVENT", "ONUSERADD"]
)
DELIVERIES_KEPT = 10_000
# How long the emulator waits for a handler before dropping the delivery.
DELIVERY_TIMEOUT_SECONDS = 10.0
# ONVOXIMPLANTCALLEND's data fields (on-voximplant-call-end.md), taken from the call record.
CALL_END_FIELDS = (
    "CALL_ID",
    "CALL_TYPE",
    "PHONE_NUMBER",
    "PORTAL_NUMBER",
    "PORTAL_USER_ID",
    "CALL_DURATION",
    "CALL_START_DATE",
    "COST",
    "COST_CURRENCY",
    "CALL_FAILED_CODE",
    "CALL_FAILED_REASON",
    "CRM_ACTIVITY_ID",
)


def php_form(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Nested data -> PHP bracket pairs, as Bitrix24 (PHP's http_build_query) posts them."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), item)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                walk(f"{prefix}[{i}]", item)
        elif value is None:
            pairs.append((prefix, ""))
        elif isinstance(value, bool):
            pairs.append((prefix, "1" if value else ""))
        else:
            pairs.append((prefix, str(value)))

    walk("", data)
    return pairs


@dataclass
class Binding:
    id: int
    event: str
    handler: str
    auth_type: int = 0  # 0: the user who acted
    offline: bool = False
    auth_connector: str = ""
    options: Any = None

    def as_reply(self) -> dict[str, Any]:
        """event-get.md's row shape."""
        row: dict[str, Any] = {
            "event": self.event,
            "handler": self.handler,
            "auth_type": str(self.auth_type),
            "offline": 1 if self.offline else 0,
        }
        if self.auth_connector:
            row["connector_id"] = self.auth_connector
        return row


@dataclass
class OfflineEvent:
    id: int
    timestamp: str
    event: str
    data: Any
    additional: Any
    message_id: str
    connector: str = ""
    process_id: str = ""
    error: bool = False
    key: tuple[str, str] = ("", "")

    def as_reply(self, listing: bool = False) -> dict[str, Any]:
        row: dict[str, Any] = {
            "ID": str(self.id),
            "TIMESTAMP_X": self.timestamp,
            "EVENT_NAME": self.event,
            "EVENT_DATA": self.data,
            "EVENT_ADDITIONAL": self.additional,
            "MESSAGE_ID": self.message_id,
        }
        if listing:
            row.update(
                {
                    "PROCESS_ID": self.process_id or None,
                    "CONNECTOR_ID": self.connector,
                    "ERROR": "1" if self.error else "0",
                }
            )
        return row


@dataclass
class Delivery:
    """One online delivery attempt (what the emulator's stats show tests)."""

    event: str
    handler: str
    event_handler_id: int
    body: dict[str, Any]
    status: int | None = None  # the handler's HTTP status; None: no answer
    error: str = ""
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "handler": self.handler,
            "event_handler_id": self.event_handler_id,
            "status": self.status,
            "error": self.error,
            "at": self.at,
            "data": self.body.get("data"),
        }


Poster = Callable[[str, list[tuple[str, str]]], int]


def _post_form(url: str, pairs: list[tuple[str, str]]) -> int:
    reply = httpx.post(
        url,
        content=urlencode(pairs).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=DELIVERY_TIMEOUT_SECONDS,
    )
    return reply.status_code


class EventHub:
    """Bindings, the delivery worker and the offline queue of one portal's app."""

    def __init__(self, clock_iso: Callable[[], str], poster: Poster = _post_form) -> None:
        self.clock_iso = clock_iso
        self.poster = poster
        self.bindings: list[Binding] = []
        self.offline: list[OfflineEvent] = []
        # The latest tries, for tests and /_emulator/stats (bounded: a long demo run).
        self.deliveries: deque[Delivery] = deque(maxlen=DELIVERIES_KEPT)
        self._next_binding = 1
        self._next_offline = 1
        self._lock = threading.RLock()
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    # -- bindings -----------------------------------------------------------------

    def bind(
        self, event: str, handler: str, auth_type: int, offline: bool, connector: str, options: Any
    ) -> bool:
        with self._lock:
            for b in self.bindings:
                same = (b.event, b.handler, b.auth_type, b.offline, b.auth_connector)
                if same == (event, handler, auth_type, offline, connector):
                    return False
            self.bindings.append(
                Binding(self._next_binding, event, handler, auth_type, offline, connector, options)
            )
            self._next_binding += 1
            return True

    def unbind(self, event: str, handler: str | None, auth_type: int | None, offline: bool) -> int:
        with self._lock:
            keep, gone = [], 0
            for b in self.bindings:
                hit = (
                    b.event == event
                    and b.offline == offline
                    and (handler is None or b.handler == handler)
                    and (auth_type is None or b.auth_type == auth_type)
                )
                if hit:
                    gone += 1
                else:
                    keep.append(b)
            self.bindings = keep
            return gone

    def clear(self) -> None:
        """Uninstall: the app's handlers and its queue go."""
        with self._lock:
            self.bindings.clear()
            self.offline.clear()

    def drop_bindings(self) -> None:
        """Update: Bitrix24 deletes the app's handlers (event-bind.md); the queue stays."""
        with self._lock:
            self.bindings.clear()

    def all_bindings(self) -> list[Binding]:
        with self._lock:
            return list(self.bindings)

    def queued(self) -> list[OfflineEvent]:
        with self._lock:
            return list(self.offline)

    def online_for(self, event: str) -> list[Binding]:
        with self._lock:
            return [b for b in self.bindings if b.event == event and not b.offline]

    def offline_for(self, event: str) -> list[Binding]:
        with self._lock:
            return [b for b in self.bindings if b.event == event and b.offline]

    # -- online delivery -------------------------------------------------------------

    def deliver(self, binding: Binding, body: dict[str, Any]) -> None:
        """Queue one POST to the binding's handler (answered by the worker thread)."""
        payload = {
            "event": body["event"],
            "event_handler_id": str(binding.id),
            "data": body.get("data", {}),
            "ts": str(int(time.time())),
            "auth": body.get("auth", {}),
        }
        item = Delivery(binding.event, binding.handler, binding.id, payload)
        self.deliver_to(binding.handler, item)

    def deliver_to(self, url: str, item: Delivery) -> None:
        item.handler = url
        with self._lock:
            self.deliveries.append(item)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._work, name="bitrix24-emulator-events", daemon=True
                )
                self._worker.start()
        self._queue.put(item)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                try:
                    item.status = self.poster(item.handler, php_form(item.body))
                    if item.status >= 400:
                        item.error = f"HTTP {item.status}"
                except Exception as exc:  # a dead handler: logged and dropped, never retried
                    item.error = f"{type(exc).__name__}: {exc}"
                if item.error:
                    log.info(
                        "event %s to %s not delivered: %s", item.event, item.handler, item.error
                    )
            finally:
                self._queue.task_done()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Tests: wait until every queued delivery was attempted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    # -- the offline queue ------------------------------------------------------------

    def enqueue_offline(self, event: str, data: Any, connector: str, key: str) -> bool:
        """Add (or refresh: latest state per object) an offline event. True if new."""
        with self._lock:
            for item in self.offline:
                if item.key == (event, key) and not item.process_id and item.connector == connector:
                    item.data = data
                    item.timestamp = self.clock_iso()
                    return False
            self.offline.append(
                OfflineEvent(
                    self._next_offline,
                    self.clock_iso(),
                    event,
                    data,
                    False,
                    secrets.token_hex(16),
                    connector,
                    key=(event, key),
                )
            )
            self._next_offline += 1
            return True

    def take_offline(
        self,
        matches: Callable[[OfflineEvent], bool],
        order: Callable[[list[OfflineEvent]], list[OfflineEvent]],
        limit: int,
        clear: bool,
        process_id: str,
        with_errors: bool,
    ) -> tuple[str | None, list[OfflineEvent]]:
        """event.offline.get: parallel callers get disjoint sets (reserved rows are skipped)."""
        with self._lock:
            free = [
                e
                for e in self.offline
                if (not e.process_id or (process_id and e.process_id == process_id))
                and (with_errors or not e.error)
                and matches(e)
            ]
            chosen = order(free)[:limit]
            if clear:
                ids = {e.id for e in chosen}
                self.offline = [e for e in self.offline if e.id not in ids]
                return None, chosen
            pid = process_id or secrets.token_hex(16)
            for e in chosen:
                e.process_id = pid
            return pid, chosen

    def clear_offline(self, process_id: str, ids: set[str], message_ids: set[str]) -> None:
        with self._lock:
            everything = not ids and not message_ids

            def gone(e: OfflineEvent) -> bool:
                if e.process_id != process_id:
                    return False
                return everything or str(e.id) in ids or e.message_id in message_ids

            self.offline = [e for e in self.offline if not gone(e)]

    def error_offline(self, process_id: str, message_ids: set[str]) -> None:
        with self._lock:
            for e in self.offline:
                if e.process_id == process_id and e.message_id in message_ids:
                    # Kept, marked, and free again: `event.offline.get` with error=1
                    # hands it out anew.
                    e.error = True
                    e.process_id = ""
