"""Stored client days (rop.store.client_days) follow the sync and give the client
sections' flags exactly: after incremental syncs that move deals between clients,
win, re-open and delete deals and add calls, they equal a rebuild; the companies'
and contacts' sections read from them equal the sections from the deal and call
facts, for short and long periods, pipelines, call bounds, groupings and scopes,
across a daylight-saving change (DuckDB and PostgreSQL).
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
from rop.store import client_days, facts, rollups
from rop.store.client_facts import KINDS
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load
from tests.sync_portal import make_portal
from tests.test_client_facts import move_clients
from tests.test_facts import change_portal
from tests.test_sync import emulate, sync


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=400)


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest):
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def _rows(store: Store, sql: str, params: dict[str, Any]) -> list[tuple]:
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    return sorted(store.query(sql, used), key=repr)


def assert_days_equal_a_rebuild(store: Store, portal: str) -> None:
    tz = store.scalar("SELECT timezone FROM portals WHERE portal = ?", [portal])
    params = {"portal": portal, "tz": tz or "UTC"}
    cols = ", ".join(client_days.COLUMNS)
    for kind in KINDS:
        stored = _rows(
            store,
            f"SELECT {cols} FROM client_days WHERE portal = $portal AND kind = '{kind}'",
            params,
        )
        rebuilt = _rows(store, f"SELECT {cols} FROM ({client_days.days_sql(kind)}) d", params)
        assert rebuilt, kind  # the portal has some of each
        assert stored == rebuilt, kind


def sections(report: dict[str, Any]) -> dict[str, Any]:
    """The client sections' figures of the report (and of its previous period)."""

    def keep(figs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in figs.items() if k.startswith(("companies", "contacts"))}

    prev = report.get("previous") or {"total": {"figures": {}}, "rows": []}
    return {
        "total": keep(report["total"]["figures"]),
        "rows": {r["key"]: keep(r["figures"]) for r in report["rows"]},
        "previous": keep(prev["total"]["figures"]),
        "previous_rows": {r["key"]: keep(r["figures"]) for r in prev["rows"]},
    }


def _days_vs_events(store: Store, flt: ReportFilter, key: str, monkeypatch) -> dict[str, Any]:
    """The client sections from the stored days, checked against the same sections
    from the deal and call facts (the rollups, client days with them, switched off)."""
    prep = prepare(store, flt, key)
    assert context(prep, flt.date_from, flt.date_to).opts.client_days, flt
    fast = sections(build_report(store, flt, portal=key, stages=False))
    monkeypatch.setattr("rop.report.context.USE_ROLLUPS", False)
    slow = sections(build_report(store, flt, portal=key, stages=False))
    monkeypatch.setattr("rop.report.context.USE_ROLLUPS", True)
    assert fast == slow, flt
    return fast


def test_client_days_follow_incremental_syncs_and_give_the_same_sections(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(7)
    with emulate(portal_dir) as emu:
        sync(store, emu)
        assert_days_equal_a_rebuild(store, emu.key)
        for _ in range(2):
            assert move_clients(emu, rnd) and change_portal(emu, rnd)["reopened"]
            sync(store, emu)
            assert rollups.rollups_ready(store, emu.key)
            assert_days_equal_a_rebuild(store, emu.key)
        key = emu.key
    today = date(2026, 5, 1)
    month = ReportFilter(date(2026, 1, 1), date(2026, 1, 31), today=today)
    long = ReportFilter(date(2025, 7, 1), date(2026, 3, 31), today=today)
    # An upper call bound, and a long period of the default filter (the stored
    # client facts), take the other paths.
    for other in (replace(month, max_call_seconds=99), long):
        assert not context(
            prepare(store, other, key), other.date_from, other.date_to
        ).opts.client_days
    flagged = 0
    for flt in (
        month,
        replace(month, compare=False),
        replace(month, pipelines=(1,)),
        replace(month, min_call_seconds=60),
        replace(month, by="source"),
        replace(month, by="department"),
        replace(month, managers=(7,)),
        replace(month, date_from=date(2026, 1, 10), date_to=date(2026, 1, 10)),
        replace(long, pipelines=(0,)),  # long but narrowed: from the days
        replace(long, min_call_seconds=30, by="source"),
    ):
        got = _days_vs_events(store, flt, key, monkeypatch)
        flagged += got["total"].get("companies_with_deals", 0)
        flagged += got["total"].get("contacts_called", 0) or 0
    assert flagged > 0


def test_client_days_are_the_portals_local_days_across_a_daylight_saving_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Records near local midnight fall on the local day, in winter and summer time.
    store = load("tricky", tmp_path / "s.duckdb")
    portal = "tricky.bitrix24.ru"
    store.execute("UPDATE portals SET timezone = 'America/New_York'")
    facts.refresh_facts(store, portal)
    assert_days_equal_a_rebuild(store, portal)
    today = date(2026, 11, 27)
    seen = 0
    for day in range(1, 31):
        flt = ReportFilter(date(2026, 11, day), date(2026, 11, day), today=today)
        got = _days_vs_events(store, flt, portal, monkeypatch)
        seen += sum(v or 0 for v in got["total"].values() if isinstance(v, int))
    for month in (10, 11):
        flt = ReportFilter(date(2026, month, 1), date(2026, month, 28), today=today)
        _days_vs_events(store, flt, portal, monkeypatch)
    assert seen > 0
    store.close()


def test_postgresql_sessions_compile_no_jit(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The report's statements are planned over many rows: PostgreSQL's JIT would
    compile them for longer than they run (rop.store.postgres.connect_pool)."""
    with open_store(store_target("postgres", tmp_path, request)) as store:
        assert store.scalar("SHOW jit") == "off"
        twin = store.cursor()  # another pooled connection (a report's thread)
        try:
            assert twin.scalar("SHOW jit") == "off"
        finally:
            twin.close()
