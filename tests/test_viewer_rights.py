"""A viewer's own CRM rights, from Bitrix24 (the emulator) with the viewer's token.

The main store is copied with the administrator's token; each viewer's grant
is worked out with their own token (counts compared with the store). The
check is independent of that computation: a second store is copied with the
viewer's own token, so it holds exactly what that token can read through the
REST API, and the report over it (no scope at all) must equal the viewer's
granted report over the main store: every total, every row, every drill-down.

The emulator's rule today (docs/EMULATOR.md "Visibility"): admins see all,
heads their departments and sub-departments, others their own records.
Portal (tests/emulator_portal.py): dept 1 (head 1, admin) > 2 Sales (head 2)
> 3 Team A (users 3, 4); dept 4 Support (head 5).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from rop.bitrix.sync import run_sync
from rop.bitrix.viewer_rights import GrantCache, GrantStats, refresh_grant
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.metrics.catalogue import STATIC
from rop.report.build import build_report, drill
from rop.report.filter import AccessDenied, ReportFilter
from rop.report.scope import set_override, viewer_scope
from rop.store.db import Store, open_store
from rop.store.grants import forget_grants, load_grant
from tests.emulator_portal import TOKEN, write_portal

PERIODS = {
    "year": (date(2026, 1, 1), date(2026, 11, 30)),
    "march": (date(2026, 3, 1), date(2026, 3, 31)),
}


def period(viewer: int | None, which: str = "year") -> ReportFilter:
    start, end = PERIODS[which]
    return ReportFilter(start, end, viewer=viewer, today=date(2026, 11, 27))


class Emu:
    def __init__(self, base: str) -> None:
        self.base = base
        self.rest = base + "/rest/"
        self.key = base.split("://", 1)[1]

    def provider(self, user: int) -> Any:
        tokens = httpx.post(f"{self.base}/_emulator/oauth/issue", json={"user_id": user}).json()

        async def provide(refresh: bool) -> str:
            return str(tokens["access_token"])

        return provide


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emu]:
    folder = write_portal(tmp_path_factory.mktemp("portal"), deals=150)
    app = create_app(
        folder,
        EmulatorConfig(rate_limit=False, oauth=True, test_api=True, simulate_processing=False),
    )
    with serve_in_thread(app) as base:
        yield Emu(base)


@pytest.fixture(scope="module")
def main(emu: Emu, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with open_store(tmp_path_factory.mktemp("main") / "rop.duckdb") as store:
        run_sync(store, f"{emu.base}/rest/1/{TOKEN}/", rate_per_second=100)
        yield store


def own_copy(emu: Emu, viewer: int, folder: Path) -> Store:
    store = open_store(folder / f"viewer{viewer}.duckdb")
    run_sync(store, emu.rest, token_provider=emu.provider(viewer), rate_per_second=100)
    return store


def figures_of(report: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {row["user_id"]: row["figures"] for row in report["rows"]}


@pytest.mark.parametrize("which", ["year", "march"])
@pytest.mark.parametrize("viewer", [1, 2, 3, 5])
def test_every_total_row_and_drill_equals_what_the_viewers_token_reads(
    emu: Emu, main: Store, viewer: int, which: str, tmp_path: Path
) -> None:
    stats = GrantStats()
    refresh_grant(main, emu.rest, emu.key, viewer, emu.provider(viewer), rate_per_second=100,
                  stats=stats)  # fmt: skip
    own = own_copy(emu, viewer, tmp_path)
    try:
        granted = build_report(main, period(viewer, which), portal=emu.key)
        readable = build_report(own, period(None, which), portal=emu.key)
        assert granted["total"]["figures"] == readable["total"]["figures"]
        assert figures_of(granted) == figures_of(readable)
        assert [d["department_id"] for d in granted["departments"]] == [
            d["department_id"] for d in readable["departments"]
        ]
        for key in readable["total"]["figures"]:
            if key not in {f.key for f in STATIC}:
                continue
            mine = drill(main, period(viewer, which), key, portal=emu.key)
            theirs = drill(own, period(None, which), key, portal=emu.key)
            assert [r["id"] for r in mine["records"]] == [r["id"] for r in theirs["records"]], key
            assert mine["value"] == theirs["value"], key
    finally:
        own.close()
    # One request each: the admin's totals equal the store's; the others' totals are
    # explained by the users a head of department would see (their guess).
    assert stats.requests == 1 and stats.ids_listed == 0


def test_a_user_outside_the_grant_is_refused_not_emptied(emu: Emu, main: Store) -> None:
    refresh_grant(main, emu.rest, emu.key, 3, emu.provider(3), rate_per_second=100)
    report = build_report(main, period(3), portal=emu.key)
    assert {row["user_id"] for row in report["rows"]} == {3}
    with pytest.raises(AccessDenied):
        drill(main, period(3), "deals_new", user_id=4, portal=emu.key)
    # The report's own override still widens: the administrator lets 3 see 4.
    set_override(main, emu.key, 3, 4, True)
    try:
        assert viewer_scope(main, emu.key, 3).sees(4)
        widened = build_report(main, period(3), portal=emu.key)
        assert {row["user_id"] for row in widened["rows"]} == {3, 4}
        drill(main, period(3), "deals_new", user_id=4, portal=emu.key)
    finally:
        main.execute("DELETE FROM scope_overrides")


def test_without_a_grant_the_head_of_department_rule_stays(emu: Emu, main: Store) -> None:
    forget_grants(main, emu.key)
    assert load_grant(main, emu.key, 2) is None
    scope = viewer_scope(main, emu.key, 2)
    assert scope.granted is None and scope.users == {2, 3, 4, 6}


def test_partly_visible_users_get_their_record_ids(emu: Emu, main: Store, tmp_path: Path) -> None:
    # The grant of viewer 3 computed over a store where user 3 "owns" more
    # deals than the portal shows them: the extra rows stay hidden, and the
    # rows the token does list are granted one by one.
    refresh_grant(main, emu.rest, emu.key, 3, emu.provider(3), rate_per_second=100)
    grant = load_grant(main, emu.key, 3, records=True)
    assert grant is not None and grant.of("deal").users == {3}
    main.execute("UPDATE deals SET assigned_by_id = 3 WHERE id = 1")  # user 2's on the portal
    try:
        stats = GrantStats()
        refresh_grant(main, emu.rest, emu.key, 3, emu.provider(3), rate_per_second=100,
                      stats=stats)  # fmt: skip
        grant = load_grant(main, emu.key, 3, records=True)
        assert grant is not None
        deal = grant.of("deal")
        assert 3 not in deal.users and stats.partial_users == 1
        assert 1 not in deal.records and 2 in deal.records
        assert len(deal.records) == stats.ids_listed == 30  # every 5th of 150 deals
        report = build_report(main, period(3), portal=emu.key)
        ids = {r["id"] for r in drill(main, period(3), "deals_new", portal=emu.key)["records"]}
        assert 1 not in ids and ids <= deal.records
        assert report["total"]["figures"]["deals_new"] == len(ids)
    finally:
        main.execute("UPDATE deals SET assigned_by_id = 2 WHERE id = 1")


def test_the_cache_computes_once_then_refreshes_in_the_background(emu: Emu, main: Store) -> None:
    forget_grants(main, emu.key)
    calls: list[tuple[str, int]] = []

    def refresh(portal: str, viewer: int) -> None:
        calls.append((portal, viewer))
        refresh_grant(main.cursor(), emu.rest, portal, viewer, emu.provider(viewer),
                      rate_per_second=100)  # fmt: skip

    cache = GrantCache(main, refresh, ttl=3600)
    assert cache.ensure(emu.key, 5) == "computed"
    assert cache.ensure(emu.key, 5) == "fresh"
    cache.ttl = 0
    assert cache.ensure(emu.key, 5) == "refreshing"
    cache.wait()
    assert calls == [(emu.key, 5), (emu.key, 5)]
    assert load_grant(main, emu.key, 5) is not None


def test_a_process_without_the_viewers_token_serves_the_stored_grant(emu: Emu, main: Store) -> None:
    """Only the process a frame was posted to knows the viewer's token (it is
    never stored): another process neither works a grant out nor refreshes it."""
    forget_grants(main, emu.key)
    calls: list[tuple[str, int]] = []
    known: set[tuple[str, int]] = set()

    def refresh(portal: str, viewer: int) -> None:
        calls.append((portal, viewer))
        refresh_grant(main.cursor(), emu.rest, portal, viewer, emu.provider(viewer),
                      rate_per_second=100)  # fmt: skip

    cache = GrantCache(main, refresh, ttl=3600, ready=lambda p, v: (p, v) in known)
    assert cache.ensure(emu.key, 5) == "missing"
    assert load_grant(main, emu.key, 5) is None and calls == []
    known.add((emu.key, 5))
    assert cache.ensure(emu.key, 5) == "computed"
    known.clear()
    cache.ttl = 0
    assert cache.ensure(emu.key, 5) == "stale"
    cache.wait()
    assert calls == [(emu.key, 5)]
    assert load_grant(main, emu.key, 5) is not None
