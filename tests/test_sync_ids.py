"""The by-ID sync over real HTTP to the emulator, into a real DuckDB file.

After a full sync, records change on the portal; the by-ID sync is told
which (as events would) and the store must equal the portal again, table by
table, through the same records.py mapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rop.bitrix.changes import Changes
from rop.bitrix.sync import SyncError
from rop.bitrix.sync_ids import batches, plan, run_sync_changes
from rop.metrics.cache import fingerprint
from rop.store.db import Store, open_store
from rop.web.cache import data_version
from tests.sync_portal import make_portal
from tests.test_sync import QUICK, RATE, Emulated, assert_store_equals_portal, emulate, sync


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=300)


@pytest.fixture
def emulator(portal_dir: Path) -> Iterator[Emulated]:
    with emulate(portal_dir) as emu:
        yield emu


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "rop.duckdb") as opened:
        yield opened


def by_ids(store: Store, emu: Emulated, changes: Changes, **kw: object):
    return run_sync_changes(
        store,
        emu.webhook,
        changes,
        rate_per_second=RATE["rate_per_second"],
        rate_burst=RATE["burst"],
        retry=kw.pop("retry", QUICK),  # type: ignore[arg-type]
    )


def test_named_records_are_reread_with_history_and_gone_ones_deleted(
    store: Store, emulator: Emulated, portal_dir: Path
) -> None:
    sync(store, emulator)
    version = data_version(store, emulator.key)
    stamp = fingerprint(store, emulator.key)
    portal = emulator.portal
    new_deal = portal.add("deal", {"TITLE": "Новая", "STAGE_ID": "NEW", "CATEGORY_ID": "0"})
    portal.add("deal_history", {"TYPE_ID": 1, "OWNER_ID": new_deal, "STAGE_ID": "NEW"})
    portal.update("deal", 5, {"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S", "OPPORTUNITY": "1.00"})
    portal.add("deal_history", {"TYPE_ID": 3, "OWNER_ID": 5, "STAGE_ID": "WON"})
    portal.update("lead", 3, {"STATUS_ID": "JUNK"})
    portal.update("company", 4, {"TITLE": "Renamed <b>"})
    portal.update("contact", 6, {"POST": "CEO"})
    portal.update("activity", 12, {"COMPLETED": "N"})
    portal.delete("deal", 7)  # an update event raced the deletion: still named
    portal.delete("deal", 8)  # a delete event
    portal.add("call", {"CALL_ID": "ended-now", "PORTAL_USER_ID": "3", "CALL_DURATION": "61"})

    changes = Changes()
    for entity, rid in (
        ("deals", new_deal),
        ("deals", 5),
        ("deals", 7),
        ("leads", 3),
        ("companies", 4),
        ("contacts", 6),
        ("activities", 12),
    ):
        changes.change(entity, rid)
    changes.delete("deals", 8)
    changes.call("ended-now")
    result = by_ids(store, emulator, changes)

    assert_store_equals_portal(store, emulator, portal_dir)
    assert result.kind == "events"
    assert {k: c for k, c in result.counts.items() if any(c.values())} == {
        "deals": {"added": 1, "updated": 1, "deleted": 2},
        "deal_history": {"added": 2, "updated": 0, "deleted": 0},
        "leads": {"added": 0, "updated": 1, "deleted": 0},
        "companies": {"added": 0, "updated": 1, "deleted": 0},
        "contacts": {"added": 0, "updated": 1, "deleted": 0},
        "activities": {"added": 0, "updated": 1, "deleted": 0},
        "calls": {"added": 1, "updated": 0, "deleted": 0},
    }
    # Every named record of every entity in one batch request.
    assert result.requests == 1
    run = store.query_dicts(
        "SELECT kind, outcome, requests FROM sync_runs WHERE portal = ? ORDER BY id DESC LIMIT 1",
        [emulator.key],
    )
    assert run == [{"kind": "events", "outcome": "ok", "requests": 1}]
    # The report's caches key on these: they must move so the next page shows the change.
    assert data_version(store, emulator.key) != version
    assert fingerprint(store, emulator.key) != stamp


def test_a_hundred_changed_deals_cost_one_request_and_long_history_is_chained(
    store: Store, emulator: Emulated, portal_dir: Path
) -> None:
    sync(store, emulator)
    portal = emulator.portal
    changes = Changes()
    for rid in range(1, 101):
        portal.update("deal", rid, {"TITLE": f"changed {rid}"})
        changes.change("deals", rid)
    # Deal 1 gets more history than the first batch's pages hold (24 chained
    # pages per chain here): the chain must follow it into a second request.
    for _ in range(1500):
        portal.add("deal_history", {"TYPE_ID": 2, "OWNER_ID": 1, "STAGE_ID": "PREPARATION"})
    result = by_ids(store, emulator, changes)
    assert_store_equals_portal(store, emulator, portal_dir)
    assert result.counts["deals"]["updated"] == 100
    assert result.counts["deal_history"]["added"] == 1500
    # One batch for the deals and the first history pages, then the rest of the chain.
    assert result.requests == 2
    # A hundred deals with ordinary history cost one request.
    others = Changes()
    for rid in range(101, 201):
        others.change("deals", rid)
    assert by_ids(store, emulator, others).requests == 1


def test_plan_packs_fifty_ids_per_command_and_fifty_commands_per_batch() -> None:
    changes = Changes()
    for rid in range(1, 2001):
        changes.change("companies", rid)
    for rid in range(1, 101):
        changes.change("deals", rid)
    units = plan(changes)
    assert sum(len(u.ids) for u in units) == 2100
    assert all(len(u.ids) <= 50 for u in units)
    packed = batches(units)
    assert all(sum(u.size for u in b) <= 50 for b in packed)
    # 40 company commands + 2 deal commands with 2 history commands.
    assert len(packed) == 1


def test_merging_keeps_each_id_once_and_delete_wins() -> None:
    a = Changes()
    a.change("deals", 1)
    a.change("deals", 1)
    a.change("deals", 2)
    b = Changes()
    b.delete("deals", 2)
    b.change("deals", 2)  # an update after the delete cannot revive it
    b.call("x")
    a.merge(b)
    assert a.as_dict() == {"changed": {"deals": [1]}, "deleted": {"deals": [2]}, "calls": ["x"]}
    assert len(a) == 3
    with pytest.raises(ValueError, match="users"):
        a.change("users", 1)


def test_a_failed_fetch_changes_nothing_and_is_logged(
    store: Store, portal_dir: Path, tmp_path: Path
) -> None:
    with emulate(portal_dir) as emu:
        sync(store, emu)
        emu.portal.update("deal", 5, {"TITLE": "changed"})
        before = store.query("SELECT * FROM deals ORDER BY id")
    changes = Changes()
    changes.change("deals", 5)
    changes.delete("deals", 9)
    # The emulator is gone: the batch cannot be fetched, so even the deletion
    # the same run carried stays undone.
    with pytest.raises(SyncError, match="batch"):
        by_ids(store, emu, changes)
    assert store.query("SELECT * FROM deals ORDER BY id") == before
    run = store.query_dicts(
        "SELECT kind, outcome, message FROM sync_runs ORDER BY id DESC LIMIT 1"
    )[0]
    assert run["kind"] == "events" and run["outcome"] == "failed"
    assert "batch" in run["message"]
