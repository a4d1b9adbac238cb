"""The stored copies of each client's manager (the client days' ``manager_id``,
rop.store.client_days; the client counts per manager and creation day,
rop.store.manager_clients) follow the clients the way the sync changes them:
after incremental syncs that hand contacts and companies to other managers,
delete and add clients and move deals between clients, they equal a rebuild,
the refresh stays incremental, and the client sections read from them equal
the sections from the records (DuckDB and PostgreSQL).
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

from rop.report.build import build_report
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store import manager_clients
from rop.store.client_facts import KINDS
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.sync_portal import make_portal
from tests.test_client_days import (
    _days_vs_events,
    assert_days_equal_a_rebuild,
    assert_firsts_count_distinct_clients,
    sections,
)
from tests.test_client_facts import move_clients
from tests.test_facts import Spy
from tests.test_sync import Emulated, emulate, sync


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=400)


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest):
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def assert_counts_equal_a_rebuild(store: Store, portal: str) -> None:
    tz = store.scalar("SELECT timezone FROM portals WHERE portal = ?", [portal])
    params = {"portal": portal, "tz": tz or "UTC"}
    cols = ", ".join(manager_clients.COLUMNS)
    for kind in KINDS:
        stored = store.query(
            f"SELECT {cols} FROM {manager_clients.TABLE} WHERE portal = $portal "
            f"AND kind = '{kind}'",
            {"portal": portal},
        )
        rebuilt = store.query(f"SELECT {cols} FROM ({manager_clients.counts_sql(kind)}) c", params)
        assert rebuilt, kind
        assert sorted(stored, key=repr) == sorted(rebuilt, key=repr), kind


def hand_over_clients(emu: Emulated, rnd: random.Random) -> dict[str, int]:
    """Clients handed to other managers, deleted, added (some under an ID the
    deals already point at, some without a manager), a company made the portal's
    own: what users do on a portal."""
    portal = emu.portal
    done = {"moved": 0, "deleted": 0, "added": 0}
    for kind in KINDS:
        ids = sorted(portal.tables[kind].rows)
        picked = rnd.sample(ids, 12)
        for rid in picked[:8]:
            portal.update(kind, rid, {"ASSIGNED_BY_ID": str(rnd.randint(1, 60))})
            done["moved"] += 1
        for rid in picked[8:10]:
            portal.delete(kind, rid)
            done["deleted"] += 1
        # Back under a deleted ID (its deals and calls still point at it), new ones.
        fields = {"company": {"TITLE": "Новая"}, "contact": {"NAME": "Новый"}}[kind]
        portal.add(
            kind, {**fields, "ID": str(picked[8]), "ASSIGNED_BY_ID": str(rnd.randint(1, 60))}
        )
        portal.add(kind, {**fields, "ASSIGNED_BY_ID": str(rnd.randint(1, 60))})
        portal.add(kind, {**fields, "ASSIGNED_BY_ID": ""})
        done["added"] += 3
    company = sorted(portal.tables["company"].rows)[rnd.randint(0, 30)]
    portal.update("company", company, {"IS_MY_COMPANY": "Y"})
    return done


def test_client_managers_follow_incremental_syncs_and_give_the_same_sections(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = Spy(monkeypatch).runs
    rnd = random.Random(11)
    with emulate(portal_dir) as emu:
        sync(store, emu)
        assert_counts_equal_a_rebuild(store, emu.key)
        for _ in range(3):
            assert hand_over_clients(emu, rnd)["moved"]
            move_clients(emu, rnd)
            sync(store, emu)
            # Incremental: the changed clients only, nothing rebuilt whole.
            assert not runs[-1].rebuilt and runs[-1].rollups, runs[-1]
            assert_days_equal_a_rebuild(store, emu.key)
            assert_firsts_count_distinct_clients(store, emu.key, rnd)
            assert_counts_equal_a_rebuild(store, emu.key)
        key = emu.key
    today = date(2026, 11, 27)
    # A month of the deals, the month of the clients added (new ones), a long period.
    for flt in (
        ReportFilter(date(2026, 1, 1), date(2026, 1, 31), today=today),
        ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=today),
        ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=today, by="department"),
    ):
        got = _days_vs_events(store, flt, key, monkeypatch)
        assert got["total"]["contacts_total"] and got["total"]["companies_total"]
    assert _days_vs_events(
        store, ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=today), key, monkeypatch
    )["total"]["contacts_new"]
    # A long period of the default filter: the flagged clients counted from the
    # stored client firsts (else from the stored client facts), the totals from
    # the stored counts.
    long = ReportFilter(date(2025, 12, 1), date(2026, 11, 30), today=today)
    prep = prepare(store, long, key)
    opts = context(prep, long.date_from, long.date_to).opts
    assert opts.client_facts and opts.client_managers and opts.client_firsts
    fast = sections(build_report(store, long, portal=key, stages=False))
    monkeypatch.setattr("rop.report.context.USE_CLIENT_FIRSTS", False)
    assert sections(build_report(store, long, portal=key, stages=False)) == fast
    monkeypatch.setattr("rop.report.context.USE_ROLLUPS", False)
    assert sections(build_report(store, long, portal=key, stages=False)) == fast
