"""Events: the form body Bitrix24 posts, the checks, the replay guard, and the
queue that turns a burst of events into one by-ID sync over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from rop.bitrix.changes import Changes
from rop.bitrix.event_queue import EventQueue
from rop.bitrix.events import (
    EventRejected,
    ReplayGuard,
    check_event,
    parse_event,
    parse_form,
)
from rop.bitrix.records import DEALS, to_rows
from rop.bitrix.sync_ids import run_sync_changes
from rop.store.db import Store, open_store
from rop.web.cache import data_version
from tests.sync_portal import make_portal
from tests.test_sync import QUICK, RATE, Emulated, emulate, portal_records, store_rows, sync

MEMBER = "a223c6b3710f85df22e9377d6c4f7553"
APP_TOKEN = "51856fefc120afa4b628cc82d3935cce"
NOW = 1_764_300_000


def body(event: str, data: dict[str, Any], ts: int = NOW, **auth: str) -> bytes:
    """A form body shaped like Bitrix24's (docs: events/index.md, on-crm-deal-update.md)."""
    pairs: list[tuple[str, str]] = [("event", event), ("event_handler_id", "12")]

    def flat(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flat(f"{prefix}[{k}]", v)
        else:
            pairs.append((prefix, str(value)))

    flat("data", data)
    pairs.append(("ts", str(ts)))
    fields = {
        "access_token": "s6p6eclrvim6da22ft9ch94ekreb52lf",
        "expires_in": "3600",
        "scope": "crm",
        "domain": "some-domain.bitrix24.com",
        "server_endpoint": "https://oauth.bitrix.info/rest/",
        "status": "L",
        "client_endpoint": "https://some-domain.bitrix24.com/rest/",
        "member_id": MEMBER,
        "application_token": APP_TOKEN,
        **auth,
    }
    pairs += [(f"auth[{k}]", v) for k, v in fields.items()]
    return urlencode(pairs).encode()


def event(name: str, data: dict[str, Any], **kw: Any):
    return parse_event(parse_form(body(name, data, **kw)))


def test_a_deal_update_is_parsed_from_php_bracket_keys() -> None:
    ev = event("ONCRMDEALUPDATE", {"FIELDS": {"ID": "53"}})
    assert (ev.name, ev.entity, ev.record_id, ev.deleted) == ("ONCRMDEALUPDATE", "deals", 53, False)
    assert (ev.member_id, ev.application_token, ev.ts, ev.handler_id) == (
        MEMBER,
        APP_TOKEN,
        NOW,
        "12",
    )
    assert ev.domain == "some-domain.bitrix24.com"
    assert ev.changes().as_dict() == {"changed": {"deals": [53]}, "deleted": {}, "calls": []}


@pytest.mark.parametrize(
    ("name", "entity", "deleted"),
    [
        ("ONCRMDEALADD", "deals", False),
        ("ONCRMDEALDELETE", "deals", True),
        ("ONCRMDEALMOVETOCATEGORY", "deals", False),
        ("onCrmLeadUpdate", "leads", False),
        ("ONCRMCOMPANYDELETE", "companies", True),
        ("ONCRMCONTACTADD", "contacts", False),
    ],
)
def test_every_crm_event_names_its_entity(name: str, entity: str, deleted: bool) -> None:
    ev = event(name, {"FIELDS": {"ID": "7"}})
    assert (ev.entity, ev.record_id, ev.deleted) == (entity, 7, deleted)


def test_a_call_end_names_the_call_and_its_activity() -> None:
    ev = event(
        "ONVOXIMPLANTCALLEND",
        {"CALL_ID": "externalCall.5d8c.1", "CALL_TYPE": "1", "CRM_ACTIVITY_ID": "901",
         "CALL_DURATION": "45", "PORTAL_USER_ID": "3"},
    )  # fmt: skip
    assert ev.changes().as_dict() == {
        "changed": {"activities": [901]},
        "deleted": {},
        "calls": ["externalCall.5d8c.1"],
    }


def test_events_that_name_nothing_are_unsupported_and_bad_ones_refused() -> None:
    assert not event("ONCRMDEALUPDATE", {"FIELDS": {"ID": "abc"}}).supported
    assert not event("ONUSERADD", {"ID": "5"}).supported
    with pytest.raises(EventRejected, match="'event' is missing") as info:
        parse_event(parse_form(b"data[FIELDS][ID]=5"))
    assert info.value.status == 400
    with pytest.raises(EventRejected, match="member_id") as info:
        parse_event(parse_form(body("ONCRMDEALUPDATE", {"FIELDS": {"ID": "5"}}, member_id="")))
    assert info.value.status == 401
    with pytest.raises(EventRejected, match="[Mm]ax number of fields|more than"):
        parse_form("&".join(f"f{i}=1" for i in range(500)))


def test_check_refuses_other_portals_and_forged_tokens() -> None:
    ev = event("ONCRMDEALUPDATE", {"FIELDS": {"ID": "5"}})
    check_event(ev, member_id=MEMBER, application_token=APP_TOKEN)
    for member, token, words in (
        (None, None, "no application is installed"),
        ("other", APP_TOKEN, "member_id"),
        (MEMBER, "forged", "application_token"),
    ):
        with pytest.raises(EventRejected, match=words) as info:
            check_event(ev, member_id=member, application_token=token)
        assert info.value.status == 403


def test_replays_and_older_events_for_a_record_are_refused() -> None:
    guard = ReplayGuard()
    guard.admit(event("ONCRMDEALUPDATE", {"FIELDS": {"ID": "5"}}, ts=NOW), now=NOW)
    with pytest.raises(EventRejected, match="replayed") as info:
        guard.admit(event("ONCRMDEALUPDATE", {"FIELDS": {"ID": "5"}}, ts=NOW), now=NOW)
    assert info.value.status == 403
    with pytest.raises(EventRejected, match="older"):
        guard.admit(event("ONCRMDEALUPDATE", {"FIELDS": {"ID": "5"}}, ts=NOW - 10), now=NOW)
    # Same second, another event of the same record; and another record: fine.
    guard.admit(event("ONCRMDEALDELETE", {"FIELDS": {"ID": "5"}}, ts=NOW), now=NOW)
    guard.admit(event("ONCRMDEALUPDATE", {"FIELDS": {"ID": "6"}}, ts=NOW - 10), now=NOW)
    with pytest.raises(EventRejected, match="too old"):
        guard.admit(event("ONCRMDEALUPDATE", {"FIELDS": {"ID": "9"}}, ts=NOW - 90_000), now=NOW)
    small = ReplayGuard(size=2)
    for rid in range(5):
        small.admit(event("ONCRMDEALUPDATE", {"FIELDS": {"ID": str(rid)}}), now=NOW)
    assert len(small._seen) == 2 and len(small._newest) == 2


# -- the queue, end to end ---------------------------------------------------


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=120)


@pytest.fixture
def emulator(portal_dir: Path) -> Iterator[Emulated]:
    with emulate(portal_dir) as emu:
        yield emu


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "rop.duckdb") as opened:
        yield opened


def test_a_burst_of_events_becomes_one_sync_and_moves_the_data_version(
    store: Store, emulator: Emulated
) -> None:
    sync(store, emulator)
    portal = emulator.portal
    calls: list[Changes] = []
    refreshed: list[tuple[str, Any]] = []
    writer = threading.Lock()

    def by_ids(key: str, changes: Changes) -> Any:
        calls.append(changes)
        cursor = store.cursor()  # the worker's own cursor, as in the server
        return run_sync_changes(
            cursor,
            emulator.webhook,
            changes,
            portal=key,
            rate_per_second=RATE["rate_per_second"],
            rate_burst=RATE["burst"],
            retry=QUICK,
        )

    queue = EventQueue(by_ids, on_synced=lambda p, r: refreshed.append((p, r)), lock=writer)
    queue.start()
    try:
        version = data_version(store, emulator.key)
        for rid in range(1, 21):
            portal.update("deal", rid, {"TITLE": f"edited {rid}"})
        portal.delete("deal", 21)
        for rid in range(1, 21):
            for name in ("ONCRMDEALUPDATE", "ONCRMDEALUPDATE"):
                queue.put(emulator.key, event(name, {"FIELDS": {"ID": str(rid)}}).changes())
        queue.put(emulator.key, event("ONCRMDEALUPDATE", {"FIELDS": {"ID": "21"}}).changes())
        queue.put(emulator.key, event("ONCRMDEALDELETE", {"FIELDS": {"ID": "21"}}).changes())
        assert queue.wait_idle(30)
    finally:
        queue.stop()
    # 41 events, one run: each ID once, the deletion won over the update.
    assert len(calls) == 1
    assert calls[0].as_dict() == {
        "changed": {"deals": list(range(1, 21))},
        "deleted": {"deals": [21]},
        "calls": [],
    }
    assert [p for p, _ in refreshed] == [emulator.key]
    assert refreshed[0][1].counts["deals"] == {"added": 0, "updated": 20, "deleted": 1}
    expected = to_rows(DEALS, emulator.key, portal_records(emulator, Path(), DEALS))
    assert store_rows(store, DEALS, emulator.key) == sorted(expected, key=lambda r: r["id"])
    assert data_version(store, emulator.key) != version


def test_a_failed_sync_is_reported_and_the_worker_goes_on() -> None:
    failures: list[str] = []
    done: list[str] = []

    def flaky(portal: str, changes: Changes) -> str:
        if portal == "bad":
            raise RuntimeError("portal unreachable")
        return portal

    queue = EventQueue(
        flaky,
        on_synced=lambda p, r: done.append(r),
        on_failed=lambda p, c, e: failures.append(f"{p}: {e}"),
        settle_seconds=0.01,
    )
    queue.start()
    try:
        one = Changes()
        one.change("deals", 1)
        queue.put("bad", one)
        queue.put("good", one)
        assert queue.wait_idle(10)
    finally:
        queue.stop()
    assert failures == ["bad: portal unreachable"] and done == ["good"]
    assert (queue.synced, queue.failed) == (1, 1)


def test_changes_of_one_portal_wait_for_the_settle_time() -> None:
    seen: list[float] = []
    queue = EventQueue(lambda p, c: seen.append(time.monotonic()), settle_seconds=0.3)
    queue.start()
    try:
        one = Changes()
        one.change("leads", 1)
        put_at = time.monotonic()
        queue.put("p", one)
        assert queue.wait_idle(5)
    finally:
        queue.stop()
    assert seen and seen[0] - put_at >= 0.29
