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
from rop.store import client_days, client_firsts, facts, rollups
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
        # The client firsts (rop.store.client_firsts) follow the same clients:
        # they equal what the rebuilt days give, worked out here in Python.
        first_cols = ", ".join(client_firsts.COLUMNS)
        firsts = _rows(
            store,
            f"SELECT {first_cols} FROM {client_firsts.TABLE} "
            f"WHERE portal = $portal AND kind = '{kind}'",
            params,
        )
        assert firsts == expected_firsts(kind, rebuilt), kind


def assert_firsts_count_distinct_clients(store: Store, portal: str, rnd: random.Random) -> None:
    """Per manager, the clients the client firsts count in a period (and a second
    one) are the distinct clients of the period's client days with each flag,
    counted here in Python, for random periods over the portal's days."""
    tz = store.scalar("SELECT timezone FROM portals WHERE portal = ?", [portal])
    params = {"portal": portal, "tz": tz or "UTC"}
    cols = ", ".join(client_days.COLUMNS)
    names = {"created": "with_deals", "won": "with_sales", "called": "called"}
    checked = 0
    for kind in KINDS:
        days = _rows(store, f"SELECT {cols} FROM ({client_days.days_sql(kind)}) d", params)
        span = sorted({d[1] for d in days})
        for _ in range(12):
            a, b = sorted(rnd.sample(span, 2))
            qa, qb = sorted(rnd.sample(span, 2))
            got = {
                r[0]: r[1:]
                for r in store.query(
                    client_firsts.counts_sql(kind, {"": "d", "_q": "qd"}),
                    {"portal": portal, "d_from": a, "d_to": b, "qd_from": qa, "qd_to": qb},
                )
            }
            want: dict[int, list[int]] = {}
            for low, high, at in ((a, b, 0), (qa, qb, 3)):
                for i, flag in enumerate(names):
                    seen = set()
                    for _k, day, cid, _c, created, won, call_max, manager in days:
                        has = {
                            "created": created,
                            "won": won,
                            "called": call_max is not None and call_max >= 0,
                        }[flag]
                        if manager is not None and has and low <= day <= high:
                            seen.add((manager, cid))
                    for manager, _cid in seen:
                        want.setdefault(manager, [0] * 6)[at + i] += 1
            got = {m: list(v) for m, v in got.items() if any(v)}
            assert got == want, (kind, a, b, qa, qb)
            checked += sum(map(sum, want.values()))
    assert checked > 0


def expected_firsts(kind: str, days: list[tuple]) -> list[tuple]:
    """The client firsts' rows (client_firsts.COLUMNS) of the client days' rows
    (client_days.COLUMNS), by hand: per client and day its flags (any pipeline, a
    call of 0 s or more), and per flag the latest earlier day that had it."""
    per: dict[tuple[int, Any], list] = {}
    for _kind, day, cid, _category, created, won, call_max, manager in days:
        row = per.setdefault((cid, day), [manager, False, False, False])
        row[1] |= bool(created)
        row[2] |= bool(won)
        row[3] |= call_max is not None and call_max >= 0
    out = []
    last: dict[int, list] = {}
    for (cid, day), (manager, *flags) in sorted(per.items()):
        if not any(flags):
            continue
        prev = last.setdefault(cid, [None, None, None])
        out.append((kind, day, cid, manager, *flags, *prev))
        for i, flag in enumerate(flags):
            if flag:
                prev[i] = day
    return sorted(out, key=repr)


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
            assert_firsts_count_distinct_clients(store, emu.key, rnd)
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
    # The default pipelines and call bound count from the client firsts; a
    # pipeline subset or a lower call bound groups the client days per client.
    assert context(prepare(store, month, key), month.date_from, month.date_to).opts.client_firsts
    for other in (replace(month, pipelines=(1,)), replace(month, min_call_seconds=60)):
        assert not context(
            prepare(store, other, key), other.date_from, other.date_to
        ).opts.client_firsts
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


@pytest.mark.parametrize("engine", ENGINES)
def test_a_whole_rebuild_of_the_firsts_mends_wrong_missing_and_extra_rows(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # PostgreSQL's whole rebuild rewrites only the rows that differ
    # (client_firsts._rewrite_changed): every kind of difference is mended, the
    # rows that were right are kept, and the other kind and portal are untouched.
    store = load("tricky", store_target(engine, tmp_path, request))
    portal = "tricky.bitrix24.ru"
    cols = ", ".join(client_firsts.COLUMNS)
    params = {"portal": portal, "tz": "UTC"}
    select = f"SELECT {cols} FROM {client_firsts.TABLE} WHERE portal = $portal"
    right = _rows(store, select, params)
    assert len(right) > 3
    other = [r for r in right if r[0] == "contact"]
    kind, day, cid = right[0][0], right[0][1], right[0][2]
    assert kind == "company" and right[1][0] == kind and other  # sorted by repr
    store.execute(
        f"UPDATE {client_firsts.TABLE} SET manager_id = 999, created_prev = NULL "
        f"WHERE portal = $portal AND kind = '{kind}' AND id = $id AND day = $day",
        {"portal": portal, "id": cid, "day": day},
    )
    store.execute(
        f"DELETE FROM {client_firsts.TABLE} WHERE portal = $portal AND kind = '{kind}' "
        "AND id = $id AND day = $day",
        {"portal": portal, "id": right[1][2], "day": right[1][1]},
    )
    store.execute(
        f"INSERT INTO {client_firsts.TABLE} (portal, {cols}) "
        f"VALUES ($portal, '{kind}', $day, -5, 1, TRUE, FALSE, FALSE, NULL, NULL, NULL)",
        {"portal": portal, "day": day},
    )
    assert _rows(store, select, params) != right
    client_firsts.write(store, params, kind, None)
    assert _rows(store, select, params) == right
    assert [r for r in _rows(store, select, params) if r[0] == "contact"] == other
    store.close()


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
