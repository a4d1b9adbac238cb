"""Stored client texts (rop.store.client_texts): a page of a companies' or contacts'
list reads its rows' last call, number and last sale from them, and shows exactly
what the texts computed from the tables showed; they follow incremental syncs
(equal to a rebuild) on DuckDB and PostgreSQL, a deal with no responsible included.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from rop.report.build import drill
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store import client_texts
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.sync_portal import make_portal
from tests.test_client_facts import move_clients
from tests.test_facts import Spy, assert_facts_equal_a_rebuild, change_portal
from tests.test_sync import Emulated, emulate, sync

FLT = ReportFilter(date(2026, 6, 1), date(2026, 11, 27), today=date(2026, 11, 27))
# Every client in the first two, the flagged and unflagged ones in the others.
LISTS = (
    "companies_total",
    "contacts_total",
    "companies_not_called",
    "contacts_with_sales",
    "companies_with_deals",
    "contacts_not_sold",
)


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=400)


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest):
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def texts_of(store: Store, key: str | None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Each list's pages as a viewer sees them: the first pages in the default order
    (paged texts), one manager's, the whole list (an export), and sorted by a text."""
    flt = FLT
    out: dict[str, Any] = {}
    for figure in LISTS:
        sort = "last_call" if figure.startswith("companies") else "phone"
        out[figure] = [
            drill(store, flt, figure, portal=key, limit=7)["records"],
            drill(store, flt, figure, portal=key, offset=7, limit=7)["records"],
            drill(store, flt, figure, portal=key, user_id=1, limit=50)["records"],
            drill(store, flt, figure, portal=key)["records"],
            drill(store, flt, figure, portal=key, sort=sort, desc=True, limit=20)["records"],
        ]
    return out


def assert_stored_texts_equal_computed(
    store: Store, key: str | None, monkeypatch: pytest.MonkeyPatch
) -> int:
    """The lists read from the stored texts equal the lists computed from the tables
    (the stored facts switched off); returns how many rows showed a text."""
    prep = prepare(store, FLT, key)
    assert context(prep, FLT.date_from, FLT.date_to).opts.client_texts
    monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", True)
    stored = texts_of(store, key, monkeypatch)
    monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", False)
    computed = texts_of(store, key, monkeypatch)
    monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", True)
    for figure in LISTS:
        for n, (got, want) in enumerate(zip(stored[figure], computed[figure], strict=True)):
            assert got == want, (figure, n)
    return sum(
        1
        for pages in stored.values()
        for page in pages
        for r in page
        if r["last_call"] or r["last_won"] or r["phone"]
    )


def change_texts(emu: Emulated, rnd: random.Random, lonely: int | None, round_: int) -> int:
    """What only the texts show: numbers called (new calls, a number changed), a
    card's phone, and a won deal with no responsible moved between companies and
    contacts, then deleted (no deal facts say where it pointed before)."""
    portal = emu.portal
    calls = sorted(portal.tables["call"].rows)
    for rid in rnd.sample(calls, 5):
        portal.update("call", rid, {"PHONE_NUMBER": f"+7495{rnd.randint(1000000, 9999999)}"})
    for kind in ("COMPANY", "CONTACT"):
        portal.add(
            "call",
            {"CALL_ID": f"t-{rnd.random()}", "PORTAL_USER_ID": "3", "CALL_TYPE": "2",
             "CALL_DURATION": "0", "CALL_START_DATE": "2026-11-20T10:00:00+03:00",
             "PHONE_NUMBER": f"+7812{rnd.randint(1000000, 9999999)}",
             "CRM_ENTITY_TYPE": kind, "CRM_ENTITY_ID": str(rnd.randint(1, 40))},
        )  # fmt: skip
    portal.update("company", rnd.randint(1, 40), {"PHONE": [{"VALUE": "+74951112233"}]})
    if lonely is None:
        return portal.add(
            "deal",
            {"TITLE": "Без ответственного", "STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S",
             "CATEGORY_ID": "0", "COMPANY_ID": "3", "CONTACT_ID": "5",
             "MOVED_TIME": "2026-11-25T12:00:00+03:00"},
        )  # fmt: skip
    if round_ == 1:
        portal.update("deal", lonely, {"COMPANY_ID": "4", "CONTACT_ID": "6"})
    else:
        portal.delete("deal", lonely)
    return lonely


def test_client_texts_follow_incremental_syncs_and_show_what_the_tables_do(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = Spy(monkeypatch).runs
    rnd = random.Random(18)
    with emulate(portal_dir) as emu:
        sync(store, emu)
        key = emu.key
        assert_facts_equal_a_rebuild(store, key)
        assert assert_stored_texts_equal_computed(store, key, monkeypatch) > 0
        lonely = None
        for n in range(3):
            move_clients(emu, rnd)
            change_portal(emu, rnd)
            lonely = change_texts(emu, rnd, lonely, n)
            sync(store, emu)
            # Only the clients the changes touched were recomputed.
            assert 0 < runs[-1].records[client_texts.TABLE] < 150, runs[-1]
            assert_facts_equal_a_rebuild(store, key)
            assert assert_stored_texts_equal_computed(store, key, monkeypatch) > 0
            # The deal with no responsible set the last sale of its client, and
            # leaving it (moved, then deleted) took it back.
            won = {
                (kind, cid): (at, deal)
                for kind, cid, at, deal in store.query(
                    "SELECT kind, id, last_won, won_deal FROM client_texts "
                    "WHERE portal = ? AND won_deal = ?",
                    [key, lonely],
                )
            }
            want = {0: {("company", 3), ("contact", 5)}, 1: {("company", 4), ("contact", 6)}}
            assert set(won) == want.get(n, set()), (n, won)
            assert all(at == datetime(2026, 11, 25, 9, 0) for at, _ in won.values())


@pytest.mark.parametrize("engine", ENGINES)
def test_a_client_page_reads_the_stored_texts_and_no_cached_ones(engine, tmp_path, request):
    """The stored texts are what a page shows: changed in the table (as a refresh
    would), the next page shows the change; nothing of the clients is cached."""
    from tests.fixtures.portals import load
    from tests.test_drill_texts import FLT as TRICKY
    from tests.test_drill_texts import cached_steps

    store = load("tricky", store_target(engine, tmp_path, request))
    page = drill(store, TRICKY, "companies_total")["records"]
    assert page and not {"company_text", "contact_text"} & cached_steps(store)
    first = page[0]
    store.execute(
        "UPDATE client_texts SET last_call = ?, phone = '+70000000000' "
        "WHERE kind = 'company' AND id = ?",
        [datetime(2026, 11, 1, 8, 0), first["id"]],
    )
    again = drill(store, TRICKY, "companies_total", limit=1)["records"][0]
    assert again["id"] == first["id"]
    assert again["last_call"] == "2026-11-01T11:00:00+03:00"  # the portal's zone, Moscow
    # The card's own phone comes first, from the company's row.
    card = store.scalar("SELECT phone FROM companies WHERE id = ?", [first["id"]])
    assert again["phone"] == (card or "+70000000000")
    # Rows edited in place and stamped: the stored facts lag, so the texts are
    # computed from the tables (and cached whole) until the next refresh.
    store.execute("UPDATE portals SET updated_at = ?", [datetime(2030, 1, 1)])
    stale = drill(store, TRICKY, "companies_total")["records"]
    assert stale == page and "company_text" in cached_steps(store)
    store.close()
