"""Lookups remembered until the next write (rop.store.memo): a drill-down's fixed
cost, never a stale figure."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from rop.store import open_store
from rop.store.db import DuckStore
from tests.fixtures.portals import load

FLT = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
PORTAL = "tricky.bitrix24.ru"


def _in_progress(store) -> int:
    return build_report(store, FLT, stages=False)["total"]["figures"]["deals_in_progress"]


def _win_deal(store, deal_id: int) -> None:
    row = store.query_dicts("SELECT * FROM deals WHERE id = ?", [deal_id])[0]
    row.update(stage_id="WON", stage_semantic="S")
    store.upsert("deals", [row])


def test_a_remembered_value_lasts_until_a_write(tmp_path):
    store = load("tricky", tmp_path / "s.duckdb")
    calls = []

    def compute() -> int:
        calls.append(1)
        return int(store.scalar("SELECT count(*) FROM deals"))

    n = store.remember("deals", compute)
    assert store.remember("deals", compute) == n and len(calls) == 1
    store.query("SELECT count(*) FROM leads")  # a read forgets nothing
    assert store.remember("deals", compute) == n and len(calls) == 1
    # A write through ``scalar`` (INSERT ... RETURNING) forgets too.
    store.scalar(
        "INSERT INTO deals (portal, id, assigned_by_id) VALUES (?, 999001, 1) RETURNING id",
        [PORTAL],
    )
    assert store.remember("deals", compute) == n + 1 and len(calls) == 2
    store.close()


def test_nothing_is_remembered_inside_a_transaction(tmp_path):
    store = load("tricky", tmp_path / "s.duckdb")
    reader = store.cursor()
    with store.transaction():
        store.execute(
            "INSERT INTO deals (portal, id, assigned_by_id) VALUES (?, 999002, 1)", [PORTAL]
        )
        # Another handle reads the committed rows; what it reads now is not kept.
        inside = reader.remember("n", lambda: reader.scalar("SELECT count(*) FROM deals"))
    after = reader.remember("n", lambda: reader.scalar("SELECT count(*) FROM deals"))
    assert after == inside + 1
    with_rollback = store.remember("n", lambda: store.scalar("SELECT count(*) FROM deals"))
    try:
        with store.transaction():
            store.execute("DELETE FROM deals WHERE id = 999002")
            store.remember("n", lambda: store.scalar("SELECT count(*) FROM deals"))
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert store.remember("n", lambda: store.scalar("SELECT count(*) FROM deals")) == with_rollback
    store.close()


def test_a_write_through_another_handle_on_the_same_file_shows_at_once(tmp_path):
    path = tmp_path / "s.duckdb"
    store = load("tricky", path)
    other = open_store(path)  # the same DuckDB instance, another open_store
    before = _in_progress(store)
    drill(store, FLT, "deals_in_progress")
    deal = store.scalar(
        "SELECT min(id) FROM deals WHERE stage_semantic = 'P' AND assigned_by_id IS NOT NULL"
    )
    _win_deal(other, deal)
    # Its facts are marked, not refreshed: the report must see that (not a
    # remembered "the facts are current") and compute them afresh.
    assert _in_progress(store) == before - 1
    assert drill(store, FLT, "deals_in_progress")["value"] == before - 1
    other.close()
    store.close()


def test_in_memory_stores_remember_apart():
    a, b = open_store(":memory:"), open_store(":memory:")
    assert isinstance(a, DuckStore)
    a.remember("k", lambda: "a")
    assert b.remember("k", lambda: "b") == "b"
    a.close()
    b.close()


def test_a_store_opened_again_sees_what_another_process_wrote(tmp_path):
    path = tmp_path / "s.duckdb"
    load("tricky", path).close()
    store = open_store(path)
    before = _in_progress(store)
    store.close()
    deal_sql = "SELECT min(id) FROM deals WHERE stage_semantic = 'P' AND assigned_by_id IS NOT NULL"
    script = (
        "import sys\n"
        "from rop.store import open_store\n"
        "s = open_store(sys.argv[1])\n"
        f"d = s.scalar({deal_sql!r})\n"
        "row = s.query_dicts('SELECT * FROM deals WHERE id = ?', [d])[0]\n"
        "row.update(stage_id='WON', stage_semantic='S')\n"
        "s.upsert('deals', [row])\n"
        # No refresh: the marks say the stored facts lag.
        "s.close()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    store = open_store(path)
    assert _in_progress(store) == before - 1
    store.close()


def test_a_warm_drill_down_runs_its_query_and_little_else(tmp_path):
    store = load("tricky", tmp_path / "s.duckdb")
    assert isinstance(store, DuckStore)
    drill(store, FLT, "deals_won", limit=100)
    drill(store, FLT, "deals_won", limit=100)
    seen: list[str] = []
    fetch = store._fetch

    def counting(sql, params):
        seen.append(sql)
        return fetch(sql, params)

    store._fetch = counting  # type: ignore[method-assign]
    page = drill(store, FLT, "deals_won", limit=100)
    # Before: about thirty lookups (fingerprint, facts state, portal, directories).
    assert len(seen) <= 3, seen
    assert page["value"] == build_report(store, FLT, stages=False)["total"]["figures"]["deals_won"]
    store.close()


def test_the_data_and_plans_versions_are_remembered_until_a_write(tmp_path):
    """A report request asked the data's version up to four times (3.5 ms of CPU
    each at 1M deals): now once per write, on any handle of the file."""
    from rop.report.plans import plans_version
    from rop.web.cache import data_version

    store = load("tricky", tmp_path / "s.duckdb")
    reader = store.cursor()
    statements: list[str] = []
    real = DuckStore._fetch

    def spy(self, sql, params):
        statements.append(sql)
        return real(self, sql, params)

    DuckStore._fetch = spy  # type: ignore[method-assign]
    try:
        version, plans = data_version(reader, PORTAL), plans_version(reader)
        asked = len(statements)
        assert asked == 2
        assert data_version(reader, PORTAL) == version and plans_version(reader) == plans
        assert data_version(store, PORTAL) == version  # another handle of the same file
        assert len(statements) == asked
        # A sync run recorded through another handle: both versions read afresh.
        store.execute(
            "INSERT INTO sync_runs (portal, id, kind, started_at, finished_at) "
            "VALUES (?, 990001, 'full', now(), now())",
            [PORTAL],
        )
        assert data_version(reader, PORTAL) != version
        assert plans_version(reader) == plans and len(statements) > asked + 1
    finally:
        DuckStore._fetch = real  # type: ignore[method-assign]
        reader.close()
        store.close()
