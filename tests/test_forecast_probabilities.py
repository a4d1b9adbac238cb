"""The weighted-pipeline forecast's stage probabilities (rop.report.forecast)
equal a straightforward derivation in Python on random stage histories: deals
re-opened after a win or a loss, moved between pipelines, several rows at one
moment (the highest ID is the latest), rows before, at and after the window's
edges, deals with no history in the window or none at all, missing pipelines,
semantics and stages, and another portal's rows beside them (DuckDB and
PostgreSQL). Each engine has its SQL (issue 16: on DuckDB grouped maxima instead
of a window over a year of history; PostgreSQL's window): this holds both to one
meaning.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rop.report.forecast import stage_probabilities
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target

PORTAL = "forecast.bitrix24.ru"
OTHER = "other.bitrix24.ru"
TODAY = date(2026, 11, 27)
TZ = ZoneInfo("Europe/Moscow")  # UTC+3 all year since 2014
# The window (12 months up to today, local days): its edges in UTC.
SINCE = datetime(2025, 11, 27) - timedelta(hours=3)
UNTIL = datetime(2026, 11, 28) - timedelta(hours=3)
STAGES = {None: ["NEW", "WORK"], 0: ["NEW", "WORK"], 1: ["C1:NEW", "C1:OFFER"], 2: ["C2:NEW"]}


def _moments(rnd: random.Random) -> list[datetime]:
    """Few distinct moments, so one deal often has several rows at one of them;
    the window's edges among them (the first included, the last excluded)."""
    edges = [SINCE, UNTIL, SINCE - timedelta(seconds=1), UNTIL - timedelta(seconds=1)]
    inside = [SINCE + timedelta(days=rnd.randrange(365), hours=rnd.randrange(24)) for _ in range(9)]
    outside = [SINCE - timedelta(days=40), UNTIL + timedelta(days=3)]
    return edges + inside + outside


def random_history(rnd: random.Random, deals: int) -> list[dict[str, Any]]:
    moments = _moments(rnd)
    rows: list[dict[str, Any]] = []
    for deal in range(1, deals + 1):
        for _ in range(rnd.choice([0, 1, 2, 3, 4, 6, 8])):  # 0: a deal with no history
            cat = rnd.choice([0, 0, 1, 1, 2, None])  # moves between pipelines, a missing one
            stage = rnd.choice([*STAGES[cat], "WON", "LOSE"])
            semantic = {"WON": "S", "LOSE": "F"}.get(stage, rnd.choice(["P", "P", None]))
            if rnd.random() < 0.05:
                stage = None  # a row without its stage
            rows.append({
                "portal": PORTAL, "type_id": rnd.choice([1, 2, 3, 5]),
                "owner_id": deal if rnd.random() > 0.01 else None,
                "created_time": rnd.choice(moments), "category_id": cat,
                "stage_semantic": semantic, "stage_id": stage,
            })  # fmt: skip
    ids = rnd.sample(range(1, 10 * len(rows) + 10), len(rows))  # IDs unrelated to time
    for row, hid in zip(rows, ids, strict=True):
        row["id"] = hid
    # Another portal's rows under other IDs: never counted here.
    rows += [
        {**r, "portal": OTHER, "id": r["id"] + 10**6, "stage_semantic": "S"} for r in rows[:40]
    ]
    return rows


def reference(rows: list[dict[str, Any]]) -> dict[tuple[int, str | None], dict[str, Any]]:
    """As the module's docstring says it: of the deals with a row in a working
    stage within the window, per (pipeline, stage), those whose latest row in the
    window (latest moment, then highest ID) is won or lost, and the share won."""
    window = [r for r in rows if r["portal"] == PORTAL and SINCE <= r["created_time"] < UNTIL]
    latest: dict[int, dict[str, Any]] = {}
    for r in window:
        deal = r["owner_id"]
        if deal is None:
            continue
        best = latest.get(deal)
        if best is None or (r["created_time"], r["id"]) > (best["created_time"], best["id"]):
            latest[deal] = r
    entered: dict[tuple[int, str | None], set[int]] = {}
    for r in window:
        semantic = r["stage_semantic"] or "P"
        if r["owner_id"] is not None and semantic not in ("S", "F"):
            key = (r["category_id"] or 0, r["stage_id"])
            entered.setdefault(key, set()).add(r["owner_id"])
    out = {}
    for key, deals in entered.items():
        outcomes = [latest[d]["stage_semantic"] or "P" for d in deals]
        won = outcomes.count("S")
        closed = won + outcomes.count("F")
        out[key] = {"won": won, "closed": closed, "probability": won / closed if closed else None}
    return out


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest):
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def _load(store: Store, rows: list[dict[str, Any]]) -> None:
    for portal in (PORTAL, OTHER):
        store.upsert("portals", [{"portal": portal, "url": f"https://{portal}",
                                  "timezone": "Europe/Moscow", "base_currency": "RUB"}])  # fmt: skip
        store.use_portal(portal)
        mine = [r for r in rows if r["portal"] == portal]
        for i in range(0, len(mine), 500):
            store.upsert("deal_stage_history", mine[i : i + 500])
    store.use_portal(PORTAL)


@pytest.mark.parametrize("seed", range(6))
def test_probabilities_equal_a_straightforward_derivation(store: Store, seed: int) -> None:
    rnd = random.Random(seed)
    rows = random_history(rnd, deals=rnd.choice([40, 120, 300]))
    _load(store, rows)
    expected = reference(rows)
    got = stage_probabilities(store, PORTAL, TODAY, TZ)
    assert got == expected
    # The histories reach the cases above: won and lost deals in one stage, and
    # deals with several rows at their latest moment in the window.
    assert any(p["closed"] and p["won"] < p["closed"] for p in expected.values())
    window = [r for r in rows if r["portal"] == PORTAL and SINCE <= r["created_time"] < UNTIL]
    last: dict[Any, datetime] = {}
    for r in window:
        last[r["owner_id"]] = max(last.get(r["owner_id"], r["created_time"]), r["created_time"])
    at_last = [r["owner_id"] for r in window if r["created_time"] == last[r["owner_id"]]]
    assert len(at_last) > len(set(at_last))


def test_ties_are_decided_by_the_highest_id(store: Store) -> None:
    """One moment, two rows: the one with the higher ID is the deal's outcome,
    whatever order they were written in; a deal re-opened after its win counts
    as open (no outcome), one moved to another pipeline is counted in both; a row
    without its deal counts nowhere."""
    at = SINCE + timedelta(days=100)
    later = at + timedelta(days=1)
    base = {"portal": PORTAL, "type_id": 2}
    rows = [
        # deal 1: entered NEW, then won and lost at one moment, the loss has the higher ID
        {**base, "id": 10, "owner_id": 1, "created_time": at - timedelta(days=1),
         "category_id": 0, "stage_semantic": "P", "stage_id": "NEW"},
        {**base, "id": 12, "owner_id": 1, "created_time": at, "category_id": 0,
         "stage_semantic": "F", "stage_id": "LOSE"},
        {**base, "id": 11, "owner_id": 1, "created_time": at, "category_id": 0,
         "stage_semantic": "S", "stage_id": "WON"},
        # deal 2: NEW, won, then re-opened into WORK: no outcome
        {**base, "id": 20, "owner_id": 2, "created_time": at, "category_id": 0,
         "stage_semantic": "P", "stage_id": "NEW"},
        {**base, "id": 21, "owner_id": 2, "created_time": later, "category_id": 0,
         "stage_semantic": "S", "stage_id": "WON"},
        {**base, "id": 22, "owner_id": 2, "created_time": later + timedelta(hours=1),
         "category_id": 0, "stage_semantic": "P", "stage_id": "WORK"},
        # deal 3: NEW in pipeline 0, moved to pipeline 1, won there
        {**base, "id": 30, "owner_id": 3, "created_time": at, "category_id": 0,
         "stage_semantic": "P", "stage_id": "NEW"},
        {**base, "id": 31, "owner_id": 3, "created_time": at, "category_id": 1,
         "stage_semantic": "P", "stage_id": "C1:NEW"},
        {**base, "id": 32, "owner_id": 3, "created_time": later, "category_id": 1,
         "stage_semantic": "S", "stage_id": "C1:WON"},
        # a row of no deal: no stage of its own
        {**base, "id": 40, "owner_id": None, "created_time": at, "category_id": 2,
         "stage_semantic": "P", "stage_id": "C2:NEW"},
    ]  # fmt: skip
    _load(store, rows)
    expected = {
        (0, "NEW"): {"won": 1, "closed": 2, "probability": 0.5},
        (0, "WORK"): {"won": 0, "closed": 0, "probability": None},
        (1, "C1:NEW"): {"won": 1, "closed": 1, "probability": 1.0},
    }
    assert reference(rows) == expected
    assert stage_probabilities(store, PORTAL, TODAY, TZ) == expected


@pytest.mark.parametrize("viewer", [None, 5, 2])
def test_open_deals_name_only_the_picked_deals(
    viewer: int | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The open deals behind the forecast, picked first and named after (the
    drill-downs' paged names), are the rows of the whole named relation filtered
    as before, for the administrator, a department head and a manager."""
    from rop.metrics.compile import bind, params_for, relation
    from rop.metrics.sources import SOURCES
    from rop.report.context import context, prepare
    from rop.report.filter import ReportFilter
    from rop.report.forecast import open_deals
    from rop.report.plans import parse_period
    from tests.fixtures import plans_portal

    nov = parse_period("2026-11")
    flt = ReportFilter(nov.start, nov.end, today=plans_portal.TODAY, viewer=viewer)
    for engine in ENGINES:
        with plans_portal.build(store_target(engine, tmp_path, request)) as store:
            prep = prepare(store, flt, None)
            ctx = context(prep, nov.start, nov.end)
            sql = relation(SOURCES["deal_rel"], ctx, names=True) + (
                "\nSELECT f.id, f.title, f.manager_id, f.manager_name, f.department_id, "
                "f.pipeline_name, f.stage_id, f.stage_name, f.amount, f.closedate FROM f "
                "WHERE f.semantic = 'P' AND f.closedate >= $d_from AND f.closedate <= $d_to "
                "ORDER BY f.closedate, f.id"
            )
            whole = store.query(sql, bind(sql, params_for(ctx, [])))
            assert whole, engine  # each viewer sees some
            deals = open_deals(prep, nov)
            got = [
                (d["id"], d["title"], d["manager_id"], d["manager_name"], d["department_id"],
                 d["pipeline_name"], d["stage_id"], d["stage_name"], d["amount"],
                 d["closedate"])
                for d in deals
            ]  # fmt: skip
            assert got == [(*r[:-1], r[-1].isoformat()) for r in whole], engine
