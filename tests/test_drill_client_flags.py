"""A companies' or contacts' drill-down takes its flags from the stored client firsts
(the default pipelines and call bound) or client days (a pipeline subset, a lower
call bound), the rows the report's counts read, joined on the client and its
stored manager; not from the period's deals and calls grouped per client. The
lists must stay exactly what that derivation gives: on a random portal after
incremental syncs that hand clients to other managers, move deals between
clients and re-open them, every list (each client figure, the whole list, each
manager's, each department's, paged) equals the list from the deal and call facts
(the client days switched off), on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from rop.report.build import drill
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.sync_portal import make_portal
from tests.test_client_facts import move_clients
from tests.test_client_managers import hand_over_clients
from tests.test_facts import change_portal
from tests.test_sync import emulate, sync

TODAY = date(2026, 11, 27)
MONTH = ReportFilter(date(2026, 1, 1), date(2026, 1, 31), today=TODAY)
FIGURES = (
    "companies_total",
    "companies_not_called",
    "companies_with_deals",
    "companies_not_sold",
    "contacts_coverage",
    "contacts_not_called",
    "contacts_with_sales",
    "contacts_sell_through",
)


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=400)


@pytest.fixture(scope="module", params=ENGINES)
def synced(
    request: pytest.FixtureRequest, portal_dir: Path, tmp_path_factory: pytest.TempPathFactory
):
    """A store after a first sync and two incremental ones of random changes."""
    rnd = random.Random(16)
    target = store_target(request.param, tmp_path_factory.mktemp("s"), request)
    with open_store(target) as store, emulate(portal_dir) as emu:
        sync(store, emu)
        for _ in range(2):
            assert hand_over_clients(emu, rnd)["moved"]
            assert move_clients(emu, rnd) and change_portal(emu, rnd)["reopened"]
            sync(store, emu)
        yield store, emu.key


def _statements(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    fetch = type(store)._fetch

    def spy(self, sql, params):
        seen.append(sql)
        return fetch(self, sql, params)

    monkeypatch.setattr(type(store), "_fetch", spy)
    return seen


def _lists(store: Store, key: str, flt: ReportFilter, fig: str, row: dict) -> list[dict]:
    """The whole list and two pages of it, as a drill-down gives them."""
    whole = drill(store, flt, fig, portal=key, **row)
    pages = [drill(store, flt, fig, portal=key, offset=o, limit=3, **row) for o in (0, 3)]
    return [whole, *pages]


def _rows(store: Store, key: str, flt: ReportFilter) -> list[dict]:
    """The grand total, each manager with clients, each department."""
    managers = [
        m
        for (m,) in store.query(
            "SELECT DISTINCT assigned_by_id FROM companies WHERE portal = ? "
            "AND assigned_by_id IS NOT NULL ORDER BY 1",
            [key],
        )
    ]
    departments = [
        d
        for (d,) in store.query(
            "SELECT DISTINCT department_id FROM users WHERE portal = ? "
            "AND department_id IS NOT NULL ORDER BY 1",
            [key],
        )
    ]
    return [
        {},
        *({"user_id": m} for m in managers[:4]),
        *({"department_id": d} for d in departments),
    ]


@pytest.mark.parametrize(
    ("change", "stored"),
    [
        ({}, "client_firsts"),
        ({"compare": False}, "client_firsts"),
        ({"date_from": date(2026, 1, 12), "date_to": date(2026, 1, 12)}, "client_firsts"),
        ({"pipelines": (1,)}, "client_days"),
        ({"min_call_seconds": 60}, "client_days"),
    ],
)
def test_client_lists_from_the_stored_rows_equal_the_lists_from_the_deals_and_calls(
    synced, change, stored, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, key = synced
    flt = replace(MONTH, **change)
    opts = context(prepare(store, flt, key), flt.date_from, flt.date_to).opts
    assert opts.client_days or opts.client_firsts
    seen = _statements(store, monkeypatch)
    checked = flagged = 0
    for fig in FIGURES:
        for row in _rows(store, key, flt):
            seen.clear()
            fast = _lists(store, key, flt, fig, row)
            # The flags come from the stored rows, with no step of the deals.
            lists = [s for s in seen if s.startswith("WITH")]
            assert lists and all(f" {stored} d " in s for s in lists), (fig, row)
            assert not any("deal_base" in s or "deal_rel" in s for s in lists), (fig, row)
            with monkeypatch.context() as m:
                m.setattr("rop.report.context.USE_CLIENT_DAYS", False)
                slow = _lists(store, key, flt, fig, row)
            assert fast == slow, (fig, row, change)
            checked += len(fast[0]["records"])
            flagged += sum(
                1 for r in fast[0]["records"] if r["called"] or r["with_deals"] or r["with_sales"]
            )
    # The lists are not empty, and some of their clients are flagged.
    assert checked > 100 and flagged > 0, (checked, flagged)
