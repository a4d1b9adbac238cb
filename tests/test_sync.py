"""The sync end to end: the emulator over real HTTP on loopback, a real DuckDB file.

Each test compares the store with the portal field by field, through the
same records.py mapping the sync uses (every entity, every mapped field).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rop.bitrix.client import RetryPolicy
from rop.bitrix.records import ALL, BIG, DIRECTORIES, Entity, to_rows
from rop.bitrix.snapshot import read_records
from rop.bitrix.sync import SyncError, SyncResult, run_sync
from rop.emulator import EmulatorConfig, FaultConfig, create_app, serve_in_thread
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.sync_portal import make_portal

# Our entity -> the emulator's record kind (live records, changed by tests).
KINDS = {
    "deals": "deal",
    "leads": "lead",
    "companies": "company",
    "contacts": "contact",
    "deal_history": "deal_history",
    "lead_history": "lead_history",
    "calls": "call",
    "activities": "activity",
    "users": "user",
    "departments": "department",
}
# Fast enough for tests, low enough that the limiters on both sides work:
# a full sync here takes ~15 requests, more than the burst.
RATE = {"rate_per_second": 40.0, "burst": 8}
QUICK = RetryPolicy(attempts=12, base_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=300)


class Emulated:
    def __init__(self, app: Any, base: str) -> None:
        self.app = app
        self.portal = app.state.portal
        user, token = self.portal.webhook_user_id, self.portal.webhook_token
        self.webhook = f"{base}/rest/{user}/{token}/"
        self.key = base.split("://", 1)[1]


@contextlib.contextmanager
def emulate(portal_dir: Path, **config: Any) -> Iterator[Emulated]:
    settings = {
        "rate_limit": True,
        "rate_per_second": RATE["rate_per_second"],
        "burst": RATE["burst"],
    }
    app = create_app(portal_dir, EmulatorConfig(**{**settings, **config}))
    with serve_in_thread(app, host="127.0.0.1", port=0) as base:
        yield Emulated(app, base)


@pytest.fixture
def emulator(portal_dir: Path) -> Iterator[Emulated]:
    with emulate(portal_dir) as emu:
        yield emu


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def sync(store: Store, emu: Emulated, **kwargs: Any) -> SyncResult:
    kwargs.setdefault("retry", QUICK)
    return run_sync(
        store,
        emu.webhook,
        rate_per_second=RATE["rate_per_second"],
        rate_burst=RATE["burst"],
        **kwargs,
    )


def _key(entity: Entity) -> tuple[str, ...]:
    return {"statuses": ("entity_id", "status_id"), "currencies": ("currency",)}.get(
        entity.name, ("id",)
    )


def portal_records(emu: Emulated, portal_dir: Path, entity: Entity) -> list[dict[str, Any]]:
    kind = KINDS.get(entity.name)
    if kind is None:  # pipelines, statuses, currencies: tests never change them
        return read_records(portal_dir, entity)
    return [dict(r) for r in emu.portal.tables[kind].rows.values()]


def store_rows(store: Store, entity: Entity, portal: str) -> list[dict[str, Any]]:
    order = ", ".join(_key(entity))
    rows = store.query_dicts(
        f"SELECT * FROM {entity.table} WHERE portal = ? ORDER BY {order}", [portal]
    )
    for row in rows:
        row.pop("is_admin", None)
    return rows


def assert_store_equals_portal(store: Store, emu: Emulated, portal_dir: Path) -> None:
    for entity in ALL:
        expected = to_rows(entity, emu.key, portal_records(emu, portal_dir, entity))
        expected.sort(key=lambda r: tuple(r[k] for k in _key(entity)))
        got = store_rows(store, entity, emu.key)
        assert len(got) == len(expected), entity.name
        assert got == expected, entity.name


def test_full_sync_copies_the_portal_exactly(
    store: Store, emulator: Emulated, portal_dir: Path
) -> None:
    seen: dict[str, tuple[int, int | None]] = {}
    result = sync(store, emulator, progress=lambda e, d, t: seen.__setitem__(e, (d, t)))
    assert_store_equals_portal(store, emulator, portal_dir)
    assert result.kind == "full" and result.portal == emulator.key
    assert result.counts == {
        e.name: {"added": len(portal_records(emulator, portal_dir, e)), "updated": 0, "deleted": 0}
        for e in ALL
    }
    assert result.counts["deals"] == {"added": 300, "updated": 0, "deleted": 0}
    assert seen["deals"] == (300, 300)
    # 300 deals + 600 history + 598 calls ... fit in a handful of 2,500-row batches.
    assert result.requests < 25
    portal = store.query_dicts("SELECT * FROM portals WHERE portal = ?", [emulator.key])[0]
    assert portal["url"] == "http://" + emulator.key
    assert portal["base_currency"] == "RUB"
    assert portal["webhook_user_id"] == 1
    assert portal["timezone"] == "Etc/GMT-3"  # from the portal's own +03:00 dates
    admins = store.query("SELECT id FROM users WHERE portal = ? AND is_admin", [emulator.key])
    assert admins == [(1,)]
    run = store.query_dicts("SELECT * FROM sync_runs WHERE portal = ?", [emulator.key])
    assert [(r["kind"], r["outcome"], r["requests"]) for r in run] == [
        ("full", "ok", result.requests)
    ]
    assert run[0]["finished_at"] >= run[0]["started_at"]
    done = store.query(
        "SELECT count(*) FROM sync_state WHERE portal = ? AND full_done", [emulator.key]
    )
    assert done == [(len(BIG),)]


def test_incremental_sync_follows_adds_changes_and_deletes(
    store: Store, emulator: Emulated, portal_dir: Path
) -> None:
    full = sync(store, emulator)
    portal = emulator.portal
    new_deal = portal.add("deal", {"TITLE": "Новая", "STAGE_ID": "NEW", "CATEGORY_ID": "0"})
    portal.add("deal_history", {"TYPE_ID": 1, "OWNER_ID": new_deal, "STAGE_ID": "NEW"})
    portal.update("deal", 5, {"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S", "OPPORTUNITY": "1.00"})
    portal.update("lead", 3, {"STATUS_ID": "JUNK"})
    portal.update("activity", 12, {"COMPLETED": "N"})
    portal.delete("deal", 7)  # its stage history goes with it
    portal.delete("deal", 300)  # the highest ID
    portal.delete("company", 2)
    portal.delete("call", 10)
    portal.add("call", {"CALL_ID": "new", "PORTAL_USER_ID": "3", "CALL_DURATION": "61"})
    portal.update("user", 4, {"WORK_POSITION": "Head of sales"})

    result = sync(store, emulator)
    assert_store_equals_portal(store, emulator, portal_dir)
    assert result.kind == "incremental"
    # Exactly the changes: records re-read in the 5-minute overlap but not
    # changed since the last run are not "updated".
    assert {k: c for k, c in result.counts.items() if any(c.values())} == {
        "deals": {"added": 1, "updated": 1, "deleted": 2},
        "deal_history": {"added": 1, "updated": 0, "deleted": 0},
        "leads": {"added": 0, "updated": 1, "deleted": 0},
        "activities": {"added": 0, "updated": 1, "deleted": 0},
        "companies": {"added": 0, "updated": 0, "deleted": 1},
        "calls": {"added": 1, "updated": 0, "deleted": 1},
        "users": {"added": 0, "updated": 1, "deleted": 0},
    }
    # Preflight (it counts each entity's changes), one batch carrying every
    # entity's changed pages, and a few range counts to find the deletions.
    assert result.requests <= 10 < full.requests

    # Nothing changed: the preflight, the users' second page (60 users) and
    # one batch of (empty) change pages.
    quiet = sync(store, emulator)
    assert quiet.requests == 3
    # The overlap re-reads the records changed above: none counts as updated.
    assert all(c == {"added": 0, "updated": 0, "deleted": 0} for c in quiet.counts.values())


def test_recent_changes_are_not_counted_as_updated(
    store: Store, emulator: Emulated, portal_dir: Path
) -> None:
    # Records modified minutes before the first sync fall in the catch-up
    # pass after the copy (and in the next run's overlap): read twice, but
    # neither run may call them updated.
    portal = emulator.portal
    for rid in range(1, 26):
        portal.update("deal", rid, {"TITLE": f"touched {rid}"})
    portal.update("lead", 3, {"STATUS_ID": "JUNK"})
    portal.update("contact", 5, {"NAME": "Renamed"})
    portal.update("activity", 12, {"COMPLETED": "N"})
    zero = {"added": 0, "updated": 0, "deleted": 0}

    first = sync(store, emulator)
    assert first.kind == "full"
    assert first.counts["deals"] == {"added": 300, "updated": 0, "deleted": 0}
    assert all(c["updated"] == 0 for c in first.counts.values()), first.counts
    again = sync(store, emulator)
    assert again.counts == {e.name: zero for e in ALL}
    full = sync(store, emulator, full=True)
    assert full.kind == "full"
    assert full.counts == {e.name: zero for e in ALL}

    # The overlap re-reads the 25 touched deals again: only the three whose
    # DATE_MODIFY moved count. (Untouched so far, so their DATE_MODIFY moves
    # from January even if the emulator's clock is still in the same second.)
    for rid in (40, 41, 42):
        portal.update("deal", rid, {"OPPORTUNITY": "7.00"})
    changed = sync(store, emulator)
    assert changed.counts["deals"] == {"added": 0, "updated": 3, "deleted": 0}
    assert_store_equals_portal(store, emulator, portal_dir)


class Killed(Exception):
    pass


def test_a_sync_killed_midway_resumes_exactly(
    store: Store, emulator: Emulated, portal_dir: Path
) -> None:
    big = {e.name for e in BIG}
    batches = {"n": 0}

    def die_after_some_batches(entity: str, done: int, total: int | None) -> None:
        if entity in big and done > 0:
            batches["n"] += 1
            if batches["n"] == 3:
                raise Killed

    with pytest.raises(Killed):
        sync(store, emulator, progress=die_after_some_batches)
    outcome = store.query("SELECT outcome FROM sync_runs WHERE portal = ?", [emulator.key])
    assert outcome == [("failed",)]
    copied = [
        store.scalar(f"SELECT count(*) FROM {e.table} WHERE portal = ?", [emulator.key])
        for e in BIG
    ]
    assert 0 < sum(copied) < sum(len(portal_records(emulator, portal_dir, e)) for e in BIG)

    # The portal moves on while the sync is down.
    emulator.portal.update("deal", 1, {"TITLE": "changed while down"})
    emulator.portal.delete("deal", 2)
    emulator.portal.add("deal", {"TITLE": "added while down", "STAGE_ID": "NEW"})

    result = sync(store, emulator)
    assert_store_equals_portal(store, emulator, portal_dir)
    assert result.kind == "full"  # the first copy was not finished
    runs = store.query("SELECT outcome FROM sync_runs WHERE portal = ? ORDER BY id", [emulator.key])
    assert runs == [("failed",), ("ok",)]


def test_rate_limit_and_faults_still_end_exact(portal_dir: Path, store: Store) -> None:
    faults = FaultConfig(drop_rate=0.1, error_rate=0.1, malformed_rate=0.1, seed=3)
    with emulate(portal_dir, faults=faults) as emu:
        result = sync(store, emu)
        assert_store_equals_portal(store, emu, portal_dir)
        emu.portal.update("deal", 9, {"TITLE": "after faults"})
        emu.portal.delete("contact", 4)
        sync(store, emu)
        assert_store_equals_portal(store, emu, portal_dir)
        stats = emu.app.state.engine.faults.counts
        assert sum(stats.values()) > 0, "no fault was injected"
        assert result.requests > 15  # retries happened on top of the usual requests


def test_killed_under_faults_resumes_and_follows_changes_exactly(
    portal_dir: Path, store: Store
) -> None:
    # Issue 4: rate limit on *and* fault injection on, for every scenario at once.
    faults = FaultConfig(
        drop_rate=0.1, error_rate=0.1, malformed_rate=0.1, slow_rate=0.1, slow_seconds=0.05, seed=7
    )
    big = {e.name for e in BIG}
    batches = {"n": 0}

    def die_after_two_batches(entity: str, done: int, total: int | None) -> None:
        if entity in big and done > 0:
            batches["n"] += 1
            if batches["n"] == 2:
                raise Killed

    with emulate(portal_dir, faults=faults) as emu:
        with pytest.raises(Killed):
            sync(store, emu, progress=die_after_two_batches)
        emu.portal.update("deal", 11, {"TITLE": "changed while down"})
        emu.portal.delete("deal", 12)
        result = sync(store, emu)
        assert result.kind == "full"
        assert_store_equals_portal(store, emu, portal_dir)
        emu.portal.add("deal", {"TITLE": "after the copy", "STAGE_ID": "NEW"})
        emu.portal.update("contact", 3, {"NAME": "Renamed"})
        emu.portal.delete("call", 5)
        result = sync(store, emu)
        assert result.kind == "incremental"
        assert_store_equals_portal(store, emu, portal_dir)
        assert sum(emu.app.state.engine.faults.counts.values()) > 0, "no fault was injected"


def test_full_resync_rereads_everything(store: Store, emulator: Emulated, portal_dir: Path) -> None:
    sync(store, emulator)
    # A change the incremental sync cannot see (DATE_MODIFY untouched) ...
    deals = emulator.portal.tables["deal"]
    deals.put(3, {**deals.rows[3], "TITLE": "silently changed"})
    sync(store, emulator)
    assert store.scalar("SELECT title FROM deals WHERE id = 3") != "silently changed"
    # ... is picked up by --full.
    result = sync(store, emulator, full=True)
    assert result.kind == "full"
    assert store.scalar("SELECT title FROM deals WHERE id = 3") == "silently changed"
    assert_store_equals_portal(store, emulator, portal_dir)


def test_bad_webhook_shape_is_a_sync_error(store: Store) -> None:
    with pytest.raises(SyncError, match="rest/USER_ID/CODE"):
        run_sync(store, "https://example.com/nothing/")


def test_directories_are_replaced_whole(store: Store, emulator: Emulated, portal_dir: Path) -> None:
    sync(store, emulator)
    emulator.portal.delete("user", 60)
    sync(store, emulator)
    ids = [r[0] for r in store.query("SELECT id FROM users ORDER BY id")]
    assert 60 not in ids and len(ids) == 59
    assert [e.name for e in DIRECTORIES][0] == "users"


def test_generated_demo_portal_round_trip(tmp_path: Path, store: Store) -> None:
    from rop.demo.generator import generate

    demo = tmp_path / "demo"
    generate(str(demo), seed=1, deals=300, months=12)
    with emulate(demo) as emu:
        sync(store, emu)
        assert_store_equals_portal(store, emu, demo)
        deal_ids = sorted(emu.portal.tables["deal"].rows)
        for rid in deal_ids[::30]:
            emu.portal.update("deal", rid, {"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S"})
        emu.portal.delete("deal", deal_ids[1])
        emu.portal.delete("lead", sorted(emu.portal.tables["lead"].rows)[0])
        result = sync(store, emu)
        assert_store_equals_portal(store, emu, demo)
        assert result.counts["deals"]["deleted"] == 1
        assert result.counts["leads"]["deleted"] == 1


def test_oauth_token_expiring_midway_is_refreshed_once(portal_dir: Path, store: Store) -> None:
    import httpx

    with emulate(portal_dir, oauth=True) as emu:
        tokens = emu.app.state.engine.tokens
        issued = tokens.issue(1)
        current = {"access": issued["access_token"], "refresh": issued["refresh_token"]}
        refreshes: list[bool] = []
        origin = emu.webhook.split("/rest/")[0]

        async def provider(refresh: bool) -> str:
            refreshes.append(refresh)
            if refresh:
                async with httpx.AsyncClient() as http:
                    answer = await http.get(
                        f"{origin}/oauth/token/",
                        params={
                            "grant_type": "refresh_token",
                            "client_id": tokens.client_id,
                            "client_secret": tokens.client_secret,
                            "refresh_token": current["refresh"],
                        },
                    )
                data = answer.json()
                assert "access_token" in data, data
                current.update(access=data["access_token"], refresh=data["refresh_token"])
            return current["access"]

        def expire_once(entity: str, done: int, total: int | None) -> None:
            if entity == "deals" and not refreshes[1:]:
                tokens.expire(current["access"])

        result = run_sync(
            store, f"{origin}/rest/", token_provider=provider, progress=expire_once, retry=QUICK,
            rate_per_second=RATE["rate_per_second"], rate_burst=RATE["burst"],
        )  # fmt: skip
        assert refreshes == [False, True]
        assert result.portal == emu.key
        assert_store_equals_portal(store, emu, portal_dir)


def test_entities_empty_at_first_sync_are_picked_up_later(
    tmp_path: Path, portal_dir: Path, store: Store
) -> None:
    import shutil

    sparse = tmp_path / "sparse"
    shutil.copytree(portal_dir, sparse)
    (sparse / "crm.activity.list.json").unlink()
    (sparse / "voximplant.statistic.get.json").unlink()
    with emulate(sparse) as emu:
        first = sync(store, emu)
        assert first.counts["activities"]["added"] == first.counts["calls"]["added"] == 0
        emu.portal.add("activity", {"TYPE_ID": "2", "SUBJECT": "first call", "OWNER_ID": "1"})
        emu.portal.add("call", {"CALL_ID": "x1", "PORTAL_USER_ID": "2", "CALL_DURATION": "30"})
        second = sync(store, emu)
        assert second.counts["activities"]["added"] == second.counts["calls"]["added"] == 1
        assert_store_equals_portal(store, emu, sparse)


def test_deletions_in_a_big_table_are_found_by_splitting_ranges(
    tmp_path_factory: pytest.TempPathFactory, store: Store
) -> None:
    big = make_portal(tmp_path_factory.mktemp("big"), deals=6000)
    with emulate(big, rate_limit=False) as emu:
        sync(store, emu)
        emu.portal.delete("deal", 1234)
        emu.portal.delete("deal", 5678)
        emu.portal.delete("call", 11000)
        result = sync(store, emu)
        assert_store_equals_portal(store, emu, big)
        assert result.counts["deals"]["deleted"] == 2
        assert result.counts["calls"]["deleted"] == 1
        # 6,000 deals are more than one listing: counts over 10 sub-ranges
        # find the two that changed; only those are listed.
        # preflight + changes + (deals: 1 count batch + 2 listings)
        # + (calls: 1 count batch + 1 listing) + users' second page.
        assert result.requests <= 8
