"""The stored stage entries (rop.store.stage_entries) follow the writes and give
the forecast's stage probabilities exactly: on random stage histories (those of
tests/test_forecast_probabilities.py: re-opened deals, pipeline moves, ties at
one moment, rows at and beyond the window's edges, rows after its end, missing
deals, pipelines, semantics and stages, another portal beside), after a first
build and after rounds of random added, changed and deleted history rows each
refreshed incrementally, the stored rows equal a rebuild and the probabilities
read from them equal the Python derivation (DuckDB and PostgreSQL).
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rop.report.forecast import stage_probabilities
from rop.store import facts, rollups, stage_entries
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.test_forecast_probabilities import (
    PORTAL,
    SINCE,
    TODAY,
    TZ,
    UNTIL,
    _load,
    _moments,
    random_history,
    reference,
)


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest):
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def _stored(store: Store) -> list[tuple]:
    cols = ", ".join(stage_entries.COLUMNS)
    rows = store.query(f"SELECT {cols} FROM {stage_entries.TABLE} WHERE portal = ?", [PORTAL])
    return sorted(rows, key=repr)


def _rebuilt(store: Store) -> list[tuple]:
    cols = ", ".join(stage_entries.COLUMNS)
    sql = f"SELECT {cols} FROM ({stage_entries.entries_sql()}) e"
    return sorted(store.query(sql, {"portal": PORTAL}), key=repr)


def _check(store: Store, rows: list[dict[str, Any]]) -> None:
    """The stored path is the one taken, and it gives the derivation's figures."""
    assert facts.facts_ready(store, PORTAL) and rollups.rollups_ready(store, PORTAL)
    assert _stored(store) == _rebuilt(store)
    expected = reference(rows)
    assert stage_probabilities(store, PORTAL, TODAY, TZ, stored=True) == expected
    assert stage_probabilities(store, PORTAL, TODAY, TZ) == expected
    # The history's own SQL (the path while the entries lag) agrees.
    assert stage_probabilities(store, PORTAL, TODAY, TZ, stored=False) == expected


def _deals(store: Store, count: int) -> None:
    """The deals themselves (a refresh of a few is incremental against their number)."""
    store.upsert(
        "deals", [{"portal": PORTAL, "id": i, "title": f"D{i}"} for i in range(1, count + 1)]
    )


def _change(rnd: random.Random, rows: list[dict[str, Any]], store: Store) -> list[dict[str, Any]]:
    """A round of random writes, through the store's one write path: new rows for
    old and new deals, rows moved in time, pipeline and stage (a deal re-opened,
    won, lost or moved), rows deleted. Returns the portal's rows after it."""
    moments = _moments(rnd)
    mine = {r["id"]: r for r in rows if r["portal"] == PORTAL}
    deals = sorted({r["owner_id"] for r in mine.values() if r["owner_id"] is not None})
    top = max([*mine, 0]) + 1
    written: list[dict[str, Any]] = []
    for _ in range(rnd.randrange(1, 8)):  # added rows
        cat = rnd.choice([0, 1, 2, None])
        stage = rnd.choice(["NEW", "WORK", "WON", "LOSE"])
        written.append({
            "portal": PORTAL, "id": top, "type_id": 2,
            "owner_id": rnd.choice([*deals, max([*deals, 0]) + 1]),
            "created_time": rnd.choice(moments) + timedelta(hours=rnd.choice([0, 1])),
            "category_id": cat, "stage_id": stage,
            "stage_semantic": {"WON": "S", "LOSE": "F"}.get(stage, rnd.choice(["P", None])),
        })  # fmt: skip
        top += 1
    for hid in rnd.sample(sorted(mine), min(len(mine), rnd.randrange(1, 8))):  # changed rows
        row = dict(mine[hid])
        what = rnd.choice(["time", "semantic", "pipeline", "owner"])
        if what == "time":
            row["created_time"] = rnd.choice(moments)
        elif what == "semantic":
            row["stage_semantic"] = rnd.choice(["S", "F", "P", None])
        elif what == "pipeline":
            row["category_id"] = rnd.choice([0, 1, 2, None])
        else:
            row["owner_id"] = rnd.choice([*deals, None])
        written.append(row)
    store.upsert("deal_stage_history", written)
    for row in written:
        mine[row["id"]] = row
    gone = rnd.sample(sorted(mine), min(len(mine), rnd.randrange(0, 6)))
    store.delete_ids("deal_stage_history", PORTAL, gone)
    for hid in gone:
        del mine[hid]
    return list(mine.values())


@pytest.mark.parametrize("seed", range(3))
def test_stage_entries_follow_random_writes_and_give_the_probabilities(
    store: Store, seed: int
) -> None:
    rnd = random.Random(seed)
    count = rnd.choice([150, 300])
    rows = random_history(rnd, deals=count)
    _load(store, rows)
    _deals(store, count + 1)
    facts.refresh_facts(store, PORTAL)
    _check(store, rows)
    # The histories reach deals with a row after the window's end (counted from
    # their history) that entered a stage in the window (counted at all).
    assert store.scalar(
        f"SELECT count(*) FROM {stage_entries.TABLE} WHERE portal = ? AND last_at >= ? "
        "AND entered >= ? AND entered < ?",
        [PORTAL, UNTIL, SINCE, UNTIL],
    )
    for _ in range(4):
        rows = _change(rnd, rows, store)
        assert not facts.facts_ready(store, PORTAL)
        done = facts.refresh_facts(store, PORTAL)
        # Incremental: the marked deals only, the rollups followed (not rebuilt).
        assert not done.rebuilt and done.rollups is not None
        _check(store, rows)


def test_stage_entries_are_rebuilt_with_the_rollups(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows left from an older version (or broken) are replaced when the rollups
    are rebuilt: wrong, missing and extra rows; on DuckDB in slices of deal IDs
    (small here), the history of a deal past the last copied one included."""
    monkeypatch.setattr(facts, "STAGE_SLICE", 7)
    rnd = random.Random(7)
    rows = random_history(rnd, deals=60)
    rows += [{**r, "id": r["id"] + 5000, "owner_id": 10_000} for r in rows if r["owner_id"] == 5]
    _load(store, rows)
    _deals(store, 61)
    facts.refresh_facts(store, PORTAL)
    with store.transaction():
        store.execute(
            f"UPDATE {stage_entries.TABLE} SET last_semantic = 'S' WHERE portal = ? AND id < 20",
            [PORTAL],
        )
        store.execute(f"DELETE FROM {stage_entries.TABLE} WHERE portal = ? AND id > 40", [PORTAL])
        store.execute(
            f"INSERT INTO {stage_entries.TABLE} (portal, id, category_id, stage_id, entered, "
            "last_at, last_semantic) VALUES (?, 999, 0, 'NEW', ?, ?, 'S')",
            [PORTAL, TODAY, TODAY],
        )
        store.execute("DELETE FROM rollup_state WHERE portal = ?", [PORTAL])
    assert _stored(store) != _rebuilt(store)
    facts.refresh_facts(store, PORTAL)
    _check(store, rows)


def test_without_history_after_the_window_the_history_is_not_read(store: Store) -> None:
    """No row at or after the window's end (what a live portal has): the entries
    alone answer, and still equal the derivation."""
    rnd = random.Random(3)
    rows = [r for r in random_history(rnd, deals=150) if r["created_time"] < UNTIL]
    _load(store, rows)
    _deals(store, 151)
    facts.refresh_facts(store, PORTAL)
    assert not stage_entries.any_later(store, {"portal": PORTAL, "until": UNTIL})
    assert "deal_stage_history" not in stage_entries.probabilities_sql(later=False)
    _check(store, rows)
