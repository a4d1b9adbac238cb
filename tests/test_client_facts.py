"""Stored client facts (rop.store.client_facts) follow the sync: after incremental
syncs that move deals between companies and contacts, win, re-open and delete deals
and add calls, they equal a rebuild, and only the touched clients were recomputed;
the companies' and contacts' sections read from them equal the sections computed
from the deal and call facts (DuckDB and PostgreSQL).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rop.report.build import build_report
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store import facts
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.sync_portal import make_portal
from tests.test_facts import Spy, assert_facts_equal_a_rebuild, change_portal
from tests.test_sync import Emulated, emulate, sync


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=400)


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest):
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def move_clients(emu: Emulated, rnd: random.Random) -> int:
    """Deals moved to another company, given a contact or losing theirs; calls to
    companies and contacts added."""
    portal = emu.portal
    deals = sorted(portal.tables["deal"].rows)
    contacts = sorted(portal.tables["contact"].rows)
    moved = 0
    for rid in rnd.sample(deals, 10):
        portal.update(
            "deal",
            rid,
            {"COMPANY_ID": str(rnd.randint(1, 45)), "CONTACT_ID": str(rnd.choice(contacts))},
        )
        moved += 1
    for rid in rnd.sample(deals, 4):
        portal.update("deal", rid, {"COMPANY_ID": None})
        moved += 1
    for _ in range(3):
        portal.add(
            "call",
            {"CALL_ID": f"c-{rnd.random()}", "PORTAL_USER_ID": str(rnd.randint(1, 60)),
             "CALL_TYPE": "1", "CALL_DURATION": str(rnd.randint(0, 300)),
             "CRM_ENTITY_TYPE": "COMPANY", "CRM_ENTITY_ID": str(rnd.randint(1, 40))},
        )  # fmt: skip
    return moved


def sections(report: dict[str, Any]) -> dict[str, Any]:
    keep = lambda figs: {k: v for k, v in figs.items() if k.startswith(("companies", "contacts"))}  # noqa: E731
    return {
        "total": keep(report["total"]["figures"]),
        "rows": {r["key"]: keep(r["figures"]) for r in report["rows"]},
        "previous": keep(report["previous"]["total"]["figures"]),
        "previous_rows": {r["key"]: keep(r["figures"]) for r in report["previous"]["rows"]},
    }


def test_client_facts_follow_incremental_syncs_and_give_the_same_sections(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = Spy(monkeypatch).runs
    rnd = random.Random(3)
    with emulate(portal_dir) as emu:
        sync(store, emu)
        assert_facts_equal_a_rebuild(store, emu.key)
        for _ in range(2):
            assert move_clients(emu, rnd) and change_portal(emu, rnd)["reopened"]
            sync(store, emu)
            # Only the clients the changed deals and calls pointed at, before or after.
            assert 0 < runs[-1].records["client_facts"] < 100, runs[-1]
            assert_facts_equal_a_rebuild(store, emu.key)
        key = emu.key
    # The report reads the stored client facts for the default filter only.
    flt = ReportFilter(date(2025, 10, 1), date(2026, 1, 31), today=date(2026, 5, 1))
    prep = prepare(store, flt, key)
    assert context(prep, flt.date_from, flt.date_to).opts.client_facts
    month = replace(flt, date_from=date(2026, 1, 1))  # short: from the period's deals and calls
    assert not context(prepare(store, month, key), month.date_from, month.date_to).opts.client_facts
    for other in ({"pipelines": (1,)}, {"min_call_seconds": 10}, {"max_call_seconds": 99}):
        narrowed = replace(flt, **other)
        ctx = context(prepare(store, narrowed, key), flt.date_from, flt.date_to)
        assert not ctx.opts.client_facts, other
    checked = 0
    for first, last in (
        (date(2026, 1, 1), date(2026, 1, 31)),  # short: both periods in one query
        (date(2025, 10, 3), date(2026, 1, 9)),  # long: ends in the middle of the data
        (date(2025, 7, 1), date(2026, 3, 31)),  # long, its previous period too
        (date(2026, 1, 1), date(2026, 4, 30)),  # long, "to date"
    ):
        for narrowed in ({}, {"managers": (7,)}, {"by": "department"}, {"pipelines": (1,)}):
            flt = replace(ReportFilter(first, last, today=date(2026, 5, 1)), **narrowed)
            monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", True)
            stored = sections(build_report(store, flt, portal=key, stages=False))
            monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", False)
            inline = sections(build_report(store, flt, portal=key, stages=False))
            assert stored == inline, (first, last, narrowed)
            checked += stored["total"].get("companies_with_deals", 0)
            checked += stored["total"].get("contacts_with_sales", 0)
    assert checked > 0


def test_a_long_period_in_the_middle_reads_the_lists_of_the_clients_it_cannot_decide(tmp_path):
    """Clients with events before, inside and after a long period are decided by
    their lists; the sections equal the ones computed from the deals and calls."""
    from datetime import datetime

    from tests.fixtures.portals import load

    store = load("tricky", tmp_path / "s.duckdb")
    portal = "tricky.bitrix24.ru"
    rows, calls = [], []
    # Company 1: deals created in January, June and December 2025, the June one won
    # in July; company 2: the same without the middle ones; contact 1 called in
    # January, May and December; contact 2 in January and December only.
    for n, (company, contact, created, won) in enumerate(
        [
            (1, None, datetime(2025, 1, 10), None),
            (1, None, datetime(2025, 6, 10), datetime(2025, 7, 1)),
            (1, None, datetime(2025, 12, 10), datetime(2025, 12, 20)),
            (2, 2, datetime(2025, 1, 12), datetime(2025, 1, 20)),
            (2, 2, datetime(2025, 12, 12), datetime(2025, 12, 22)),
        ]
    ):
        rows.append(
            {"portal": portal, "id": 500 + n, "assigned_by_id": 4, "company_id": company,
             "contact_id": contact, "date_create": created, "category_id": 0,
             "stage_semantic": "S" if won else "P", "moved_time": won or created}
        )  # fmt: skip
    for n, (contact, when) in enumerate(
        [(1, datetime(2025, 1, 5)), (1, datetime(2025, 5, 5)), (1, datetime(2025, 12, 5)),
         (2, datetime(2025, 1, 6)), (2, datetime(2025, 12, 6))]
    ):  # fmt: skip
        calls.append(
            {"portal": portal, "id": 500 + n, "portal_user_id": 4, "call_type": 1,
             "call_duration": 30, "call_start_date": when, "crm_entity_type": "CONTACT",
             "crm_entity_id": contact}
        )  # fmt: skip
    store.upsert("deals", rows)
    store.upsert("calls", calls)
    facts.refresh_facts(store, portal)
    assert_facts_equal_a_rebuild(store, portal)
    flt = ReportFilter(date(2025, 3, 1), date(2025, 9, 30), today=date(2026, 11, 27))
    assert context(prepare(store, flt, portal), flt.date_from, flt.date_to).opts.client_facts
    report = build_report(store, flt, portal=portal, stages=False)
    stored = sections(report)
    import rop.report.context as report_context

    report_context.CACHE_STATIC_STEPS = False
    try:
        inline = sections(build_report(store, flt, portal=portal, stages=False))
    finally:
        report_context.CACHE_STATIC_STEPS = True
    assert stored == inline
    total = stored["total"]
    # Company 1 had a deal created and one won inside; contact 1 a call inside.
    assert total["companies_with_deals"] == 1 and total["companies_with_sales"] == 1
    assert total["contacts_total"] - total["contacts_not_called"] == 1
    store.close()
