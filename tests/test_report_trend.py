"""The page's trend (rop.report.trend) and funnels (rop.report.funnel) over the stored
deal facts equal the charts' old computation over the raw tables (the stage history
aggregated per build),
on a synced portal after random changes: re-opened deals, deals moved between
pipelines, deletions; for the whole team, a pipeline, a manager, a viewer's scope,
by day and by week; on DuckDB and PostgreSQL. Local days are exact in zones with
daylight saving and half-hour offsets.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from rop.report.filter import ReportFilter
from rop.report.funnel import funnel_tops
from rop.report.trend import deal_trend, local_day_sql, offset_spans
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.sync_portal import make_portal
from tests.test_facts import change_portal
from tests.test_sync import emulate, sync


def old_trend(
    store: Store,
    portal: str,
    zone: str,
    date_from: date,
    date_to: date,
    pipelines: Sequence[int] = (),
    users: Sequence[int] | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """rop.web.charts.trend as it was before the stored facts (main at 953d268),
    kept here as the reference: the raw deals and the whole stage history."""
    tz = ZoneInfo(zone)

    def utc(day: date) -> datetime:
        return (
            datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
        )

    start, end = utc(date_from), utc(date_to + timedelta(days=1))
    weekly = (date_to - date_from).days + 1 > 62
    users_sql, users_params = "", []
    if users is not None:
        users_sql = " AND d.assigned_by_id IN (" + ", ".join("?" for _ in users) + ")"
        users_params = list(users)
    pipe_sql = ""
    if pipelines:
        pipe_sql = " AND d.category_id IN (" + ", ".join("?" for _ in pipelines) + ")"
    where = " WHERE d.portal = ? AND d.assigned_by_id IS NOT NULL" + pipe_sql + users_sql
    base = [portal, *pipelines, *users_params]
    buckets: dict[date, dict[str, int]] = {}

    def bucket(day: date) -> date:
        return day - timedelta(days=day.weekday()) if weekly else day

    def add(day: date, kind: str, n: int) -> None:
        if date_from <= day <= date_to:
            slot = buckets.setdefault(bucket(day), {"new": 0, "won": 0, "lost": 0})
            slot[kind] += n

    def local_day(moment: datetime) -> date:
        return moment.replace(tzinfo=UTC).astimezone(tz).date()

    new_sql = (
        "SELECT date_trunc('hour', d.date_create) AS h, count(*) FROM deals d"  # noqa: S608
        + where
        + " AND d.date_create >= ? AND d.date_create < ? GROUP BY h"
    )
    for hour, n in store.query(new_sql, [*base, start, end]):
        add(local_day(hour), "new", n)
    closed_sql = (
        "WITH h AS (SELECT owner_id, max(created_time) AS t FROM deal_stage_history "  # noqa: S608
        "WHERE portal = ? AND type_id = 3 GROUP BY owner_id), "
        "c AS (SELECT d.stage_semantic AS sem, coalesce(h.t, d.moved_time) AS t, "
        "d.closedate AS day FROM deals d LEFT JOIN h ON h.owner_id = d.id"
        + where
        + " AND d.stage_semantic IN ('S', 'F')) "
        "SELECT sem, date_trunc('hour', t) AS hr, day, count(*) FROM c "
        "WHERE (t >= ? AND t < ?) OR (t IS NULL AND day >= ? AND day <= ?) "
        "GROUP BY sem, hr, day"
    )
    for sem, hour, day, n in store.query(
        closed_sql, [portal, *base, start, end, date_from, date_to]
    ):
        add(local_day(hour) if hour is not None else day, "won" if sem == "S" else "lost", n)
    labels = []
    day = bucket(date_from)
    last = min(date_to, today) if today is not None and today >= date_from else date_to
    while day <= last:
        labels.append(day)
        day += timedelta(days=7 if weekly else 1)
    empty = {"new": 0, "won": 0, "lost": 0}
    return {
        "unit": "week" if weekly else "day",
        "labels": [d.isoformat() for d in labels],
        "new": [buckets.get(d, empty)["new"] for d in labels],
        "won": [buckets.get(d, empty)["won"] for d in labels],
        "lost": [buckets.get(d, empty)["lost"] for d in labels],
    }


def old_funnel_tops(
    store: Store,
    portal: str,
    zone: str,
    pipeline: int,
    date_from: date,
    date_to: date,
    users: Sequence[int] | None = None,
) -> dict[int | None, int]:
    """rop.web.charts.funnel's counts as they were (main at 953d268): the period's deals
    of one pipeline joined to their whole stage history, per furthest stage's sort."""
    tz = ZoneInfo(zone)

    def utc(day: date) -> datetime:
        local = datetime(day.year, day.month, day.day, tzinfo=tz)
        return local.astimezone(UTC).replace(tzinfo=None)

    users_sql, users_params = "", []
    if users is not None:
        users_sql = " AND assigned_by_id IN (" + ", ".join("?" for _ in users) + ")"
        users_params = list(users)
    entity = "DEAL_STAGE" if pipeline == 0 else f"DEAL_STAGE_{pipeline}"
    sql = (
        "WITH d AS (SELECT id, stage_id FROM deals WHERE portal = ? AND category_id = ? "  # noqa: S608
        "AND assigned_by_id IS NOT NULL "
        "AND date_create >= ? AND date_create < ?" + users_sql + "), "
        "reached AS ("
        "SELECT d.id, h.stage_id FROM d JOIN deal_stage_history h "
        "ON h.portal = ? AND h.owner_id = d.id "
        "UNION SELECT id, stage_id FROM d), "
        "tops AS (SELECT d.id, max(st.sort) AS top FROM d "
        "LEFT JOIN reached r ON r.id = d.id "
        "LEFT JOIN statuses st ON st.portal = ? AND st.entity_id = ? "
        "AND st.status_id = r.stage_id AND coalesce(st.semantics, '') <> 'F' "
        "GROUP BY d.id) "
        "SELECT top, count(*) FROM tops GROUP BY top"
    )
    params = [portal, pipeline, utc(date_from), utc(date_to + timedelta(days=1)),
              *users_params, portal, portal, entity]  # fmt: skip
    return {top: int(n) for top, n in store.query(sql, params)}


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=600)


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest):
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def test_the_trend_and_funnels_from_the_stored_facts_equal_the_old_computation(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulate(portal_dir) as emu:
        sync(store, emu)
        done = change_portal(emu, random.Random(5))
        assert done["reopened"] and done["piped"] and done["deleted"], done
        sync(store, emu)
        key = emu.key
    zone = store.scalar("SELECT timezone FROM portals WHERE portal = ?", [key])
    month = (date(2026, 1, 1), date(2026, 1, 31))
    year = (date(2025, 12, 1), date(2026, 12, 31))
    manager = store.scalar(
        "SELECT assigned_by_id FROM deals WHERE portal = ? GROUP BY 1 ORDER BY count(*) DESC, 1 "
        "LIMIT 1",
        [key],
    )
    cases = [
        (month, {}, {}),
        (month, {"pipelines": (1,)}, {"pipelines": (1,)}),
        (month, {"managers": (manager,)}, {"users": [manager]}),
        (year, {}, {}),
        (year, {"pipelines": (0,)}, {"pipelines": (0,)}),
    ]
    checked = 0
    for (first, last), narrowed, old_args in cases:
        flt = replace(ReportFilter(first, last), **narrowed)
        for today in (None, date(2026, 1, 20)):
            got = deal_trend(store, flt, key, today)
            want = old_trend(store, key, zone, first, last, today=today, **old_args)
            assert got == want, (first, last, narrowed, today)
            checked += sum(got["won"]) + sum(got["lost"])
        # Computed in memory (the facts' SQL), the same.
        monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", False)
        assert deal_trend(store, flt, key) == old_trend(store, key, zone, first, last, **old_args)
        monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", True)
    assert checked > 50
    # The funnels' counts from each deal's stored furthest stage, the same.
    counted = 0
    for (first, last), narrowed, old_args in cases:
        flt = replace(ReportFilter(first, last), **narrowed)
        pipes = flt.pipelines or (0, 1)
        for cached in (True, False):
            monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", cached)
            got = funnel_tops(store, flt, pipes, key)
            users = old_args.get("users")
            want = {p: old_funnel_tops(store, key, zone, p, first, last, users) for p in pipes}
            assert got == want, (first, last, narrowed, cached)
            counted += sum(n for tops in got.values() for top, n in tops.items() if top)
    assert counted > 50
    # What it counts needs neither the records' movements in the period (a
    # semi-join on their lists) nor their department (a join to the users): its
    # statement reads neither (docs/BENCHMARKS.md, "Issue 16: CPU per crowd report").
    seen: list[str] = []
    real = store.query
    monkeypatch.setattr(
        store, "query", lambda sql, params=(): seen.append(sql) or real(sql, params)
    )
    funnel_tops(store, ReportFilter(*month), (0, 1), key)
    (statement,) = [sql for sql in seen if "funnel_top" in sql]
    assert " AS moved" not in statement and "JOIN users" not in statement, statement


@pytest.mark.parametrize(
    "zone", ["Europe/Moscow", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"]
)
def test_local_days_are_exact_across_transitions_and_half_hour_zones(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = datetime(2025, 12, 31, 12)
    end = datetime(2027, 1, 2)
    spans = offset_spans(tz, start, end)
    sql, params = local_day_sql("t", spans)
    # Every 7 minutes over the year, and each transition's minutes around it.
    near = [since + timedelta(minutes=m) for since, _ in spans[1:] for m in range(-3, 4)]
    con = duckdb.connect()
    got = con.execute(
        f"SELECT t, {sql} FROM (SELECT range AS t FROM range($start, $end, INTERVAL 7 MINUTE) "  # noqa: S608
        "UNION SELECT unnest(CAST($near AS TIMESTAMP[]))) m ORDER BY t",
        {**params, "start": start, "end": end, "near": near},
    ).fetchall()
    moments = [t for t, _ in got]
    assert len(moments) > 70_000 and set(near) <= set(moments)
    want = [(m, m.replace(tzinfo=UTC).astimezone(tz).date()) for m in moments]
    assert got == want
    if zone in ("Europe/Berlin", "America/New_York"):
        assert len(spans) == 3  # two transitions in the year


def test_the_trend_reads_the_rollups_and_equals_the_trend_over_the_records(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the rollups answer the deal section (rop.metrics.rollups.trend_usable),
    the trend is read from them (a month reads a few thousand rows, not every deal
    fact): each point equals the one over the records, in a zone with daylight
    saving, for the team, a pipeline, a manager, a department, by source, by week."""
    from rop.store.facts import refresh_facts

    with emulate(portal_dir) as emu:
        sync(store, emu)
        change_portal(emu, random.Random(7))
        sync(store, emu)
        key = emu.key
    # New York's clocks change on 2026-03-08 and 2026-11-01: days around both.
    store.execute("UPDATE portals SET timezone = 'America/New_York' WHERE portal = ?", [key])
    refresh_facts(store, key)
    manager, department = store.query(
        "SELECT d.assigned_by_id, u.department_id FROM deals d JOIN users u "
        "ON u.portal = d.portal AND u.id = d.assigned_by_id WHERE d.portal = ? "
        "AND u.department_id IS NOT NULL GROUP BY 1, 2 ORDER BY count(*) DESC, 1 LIMIT 1",
        [key],
    )[0]
    statements: list[str] = []
    real = type(store).query

    def spy(self: Store, sql: str, params: Any = ()) -> list[tuple]:
        statements.append(sql)
        return real(self, sql, params)

    monkeypatch.setattr(type(store), "query", spy)

    def trend(flt: ReportFilter, rollups: bool) -> tuple[dict[str, Any], bool]:
        monkeypatch.setattr("rop.report.context.USE_ROLLUPS", rollups)
        statements.clear()
        got = deal_trend(store, flt, key, date(2026, 12, 31))
        return got, any("record_rollups" in s for s in statements)

    spring, autumn = (
        ReportFilter(date(2026, 3, 1), date(2026, 3, 31)),
        ReportFilter(date(2026, 10, 15), date(2026, 11, 14)),
    )
    cases = [
        spring,
        autumn,
        ReportFilter(date(2025, 12, 1), date(2026, 12, 31)),  # by week
        replace(autumn, pipelines=(1,)),
        replace(autumn, managers=(manager,)),
        replace(autumn, departments=(department,)),
        replace(spring, by="source"),
    ]
    counted = 0
    for flt in cases:
        fast, read_rollups = trend(flt, True)
        slow, read_records_only = trend(flt, False)
        assert read_rollups and not read_records_only, flt
        assert fast == slow, flt
        counted += sum(fast["new"]) + sum(fast["won"]) + sum(fast["lost"])
    assert counted > 100
