"""Events end to end: the emulator as the installed portal, a handler on real HTTP.

The emulator delivers online events to a small handler built from the
library (receive_event -> EventQueue -> by-ID sync over OAuth), or keeps them
in its offline queue for drain_offline; either way the store must then equal
the portal for what changed, and forged or replayed events change nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rop.bitrix.changes import Changes
from rop.bitrix.event_queue import EventQueue
from rop.bitrix.events import BOUND_EVENTS, EventRejected, ReplayGuard, receive_event
from rop.bitrix.offline import run_drain_offline
from rop.bitrix.records import CALLS, DEALS, LEADS, Entity, to_rows
from rop.bitrix.sync import SyncError, run_sync
from rop.bitrix.sync_ids import run_sync_changes
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.emulator.config import AppSettings
from rop.store.db import Store, open_store
from tests.emulator_portal import write_portal

KINDS = {"deals": "deal", "leads": "lead", "calls": "call"}


@dataclass
class Portal:
    base: str
    app: Any
    key: str
    admin: dict[str, Any]

    @property
    def host(self) -> Any:
        return self.app.state.engine.host

    @property
    def data(self) -> Any:
        return self.app.state.portal

    def rest(self, method: str, **params: Any) -> httpx.Response:
        return httpx.post(
            f"{self.base}/rest/{method}", json={**params, "auth": self.admin["access_token"]}
        )

    def test_api(self, path: str, body: dict[str, Any]) -> None:
        reply = httpx.post(f"{self.base}/_emulator/{path}", json=body)
        assert reply.status_code == 200, reply.text

    def tokens(self) -> Any:
        async def provide(refresh: bool) -> str:
            return str(self.admin["access_token"])

        return provide


class Handler:
    """The app's event route, as thin as the server's: check, queue, answer."""

    def __init__(self, portal: Portal, store: Store) -> None:
        self.portal = portal
        self.guard = ReplayGuard()
        self.answers: list[tuple[int, str]] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()
        self.queue = EventQueue(self._sync, settle_seconds=0.2, lock=self.lock)
        self.store = store
        self.runs: list[Any] = []

    def _installed(self, member: str) -> tuple[str, str] | None:
        app = self.portal.host.app
        mine = self.portal.admin["member_id"]
        return (mine, app.application_token) if member == mine else None

    def _sync(self, key: str, changes: Changes) -> Any:
        result = run_sync_changes(
            self.store.cursor(),
            self.portal.base + "/rest/",
            changes,
            portal=key,
            token_provider=self.portal.tokens(),
            rate_per_second=50,
        )
        self.runs.append(result)
        return result

    async def route(self, request: Request) -> Response:
        body = await request.body()
        self.raw.append(body)
        try:
            event = receive_event(body, self._installed, self.guard)
        except EventRejected as exc:
            self.answers.append((exc.status, str(exc)))
            return PlainTextResponse(str(exc), status_code=exc.status)
        if event.supported:
            self.queue.put(self.portal.key, event.changes())
        self.answers.append((200, event.name))
        return PlainTextResponse("ok")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "rop.duckdb") as opened:
        yield opened


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[Portal]:
    folder = write_portal(tmp_path / "portal", deals=60)
    settings = AppSettings(client_id="local.t.app", client_secret="s", handler="http://x/app")
    app = create_app(
        folder,
        EmulatorConfig(rate_limit=False, test_api=True, app=settings, simulate_processing=False),
    )
    with serve_in_thread(app) as base:
        httpx.post(f"{base}/_emulator/app/install", json={"user_id": 1})
        admin = app.state.engine.host.issue(1)
        httpx.post(f"{base}/_emulator/app/finish", json={})
        yield Portal(base, app, base.split("://", 1)[1], admin)


def full_copy(store: Store, portal: Portal) -> None:
    run_sync(store, portal.base + "/rest/", token_provider=portal.tokens(), rate_per_second=50)


def assert_same(store: Store, portal: Portal, entity: Entity) -> None:
    records = [dict(r) for r in portal.data.tables[KINDS[entity.name]].rows.values()]
    expected = sorted(to_rows(entity, portal.key, records), key=lambda r: r["id"])
    got = store.query_dicts(
        f"SELECT * FROM {entity.table} WHERE portal = ? ORDER BY id",  # noqa: S608
        [portal.key],
    )
    assert got == expected, entity.name


def change_things(portal: Portal) -> None:
    portal.test_api(
        "deal/update", {"id": 5, "fields": {"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S"}}
    )
    portal.test_api("deal/update", {"id": 6, "fields": {"CATEGORY_ID": "1", "STAGE_ID": "C1:NEW"}})
    portal.test_api("deal/delete", {"id": 9})
    portal.test_api("lead/add", {"fields": {"TITLE": "Лид", "ASSIGNED_BY_ID": "3"}})
    portal.test_api(
        "call/add",
        {"fields": {"CALL_ID": "c-77", "PORTAL_USER_ID": "3", "CALL_DURATION": "42",
                    "CALL_TYPE": "1", "CALL_FAILED_CODE": "200"}},
    )  # fmt: skip


def test_online_events_keep_the_store_equal_to_the_portal(store: Store, portal: Portal) -> None:
    full_copy(store, portal)
    handler = Handler(portal, store)
    app = Starlette(routes=[Route("/events", handler.route, methods=["POST"])])
    handler.queue.start()
    try:
        with serve_in_thread(app) as base:
            for name in BOUND_EVENTS:
                bound = portal.rest("event.bind", event=name, handler=f"{base}/events")
                assert bound.json().get("result") is True, (name, bound.text)
            change_things(portal)
            assert portal.host.events.wait_idle()
            assert handler.queue.wait_idle(30)
            # A captured event posted again, and a forged one: refused, nothing queued.
            replay = httpx.post(
                f"{base}/events",
                content=handler.raw[0],
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            forged_body = handler.raw[0].replace(
                portal.host.app.application_token.encode(), b"0" * 32
            )
            forged = httpx.post(
                f"{base}/events",
                content=forged_body,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
    finally:
        handler.queue.stop()
    assert [s for s, _ in handler.answers[:5]] == [200] * 5
    assert (replay.status_code, forged.status_code) == (403, 403)
    assert "replayed" in replay.text and "application_token" in forged.text
    for entity in (DEALS, LEADS, CALLS):
        assert_same(store, portal, entity)
    # The burst became few runs (events arrive one by one; the settle time merges them).
    assert 1 <= len(handler.runs) <= 5
    assert handler.queue.failed == 0
    assert store.scalar("SELECT count(*) FROM deals WHERE portal = ? AND id = 9", [portal.key]) == 0


def test_offline_events_are_drained_synced_and_cleared(store: Store, portal: Portal) -> None:
    full_copy(store, portal)
    for name in BOUND_EVENTS:
        bound = portal.rest("event.bind", event=name, event_type="offline")
        assert bound.json().get("result") is True, (name, bound.text)
    change_things(portal)
    for title in ("a", "b", "c"):  # three edits, one queue entry
        portal.test_api("deal/update", {"id": 7, "fields": {"TITLE": title}})
    result = run_drain_offline(
        store,
        portal.base + "/rest/",
        portal=portal.key,
        token_provider=portal.tokens(),
        rate_per_second=50,
    )
    for entity in (DEALS, LEADS, CALLS):
        assert_same(store, portal, entity)
    assert result.events == 6 and result.unknown == 0
    # get, one by-ID batch, clear.
    assert result.requests == 3
    left = portal.rest("event.offline.list").json()
    assert left["total"] == 0, left


def test_a_failed_offline_sync_marks_the_entries_as_errors(
    store: Store, portal: Portal, tmp_path: Path
) -> None:
    full_copy(store, portal)
    portal.rest("event.bind", event="ONCRMDEALUPDATE", event_type="offline")
    portal.test_api("deal/update", {"id": 5, "fields": {"TITLE": "x"}})
    # A store that cannot be written: the sync fails after the queue was read.
    store.execute("DROP TABLE deal_stage_history")
    with pytest.raises(SyncError):
        run_drain_offline(
            store,
            portal.base + "/rest/",
            portal=portal.key,
            token_provider=portal.tokens(),
            rate_per_second=50,
        )
    rows = portal.rest("event.offline.list").json()["result"]
    assert [(r["EVENT_NAME"], r["ERROR"]) for r in rows] == [("ONCRMDEALUPDATE", "1")]
