"""The rollups' sums from their rows in memory equal the rollup statement's, on
DuckDB and PostgreSQL (rop/metrics/rollup_memory.py): row for row and partial
for partial, for every figure the rollups answer, every grouping, a viewer's
scope, a pipeline subset; the rows are read again after a write; a report from
them equals the report from the statements.

The portal is the emulator over real HTTP; the store a real DuckDB file or a
database of the private PostgreSQL cluster (as the application role).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rop.metrics import rollup_memory
from rop.metrics.catalogue import STATIC
from rop.metrics.compile import Context, bind, params_for
from rop.metrics.rollups import ROLLS, rollup_sql
from rop.report.build import build_report
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.sync_portal import make_portal
from tests.test_facts import change_portal, differences
from tests.test_sync import emulate, sync


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=300)


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def _value(v: Any) -> Any:
    # Sums to 9 digits: the engines and Arrow add in their own order.
    if isinstance(v, (float, Decimal)):
        return round(float(v), 9)
    return v


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({k: _value(v) for k, v in r.items()} for r in rows), key=repr)


def _statement_rows(store: Store, section: str, ctx: Context) -> list[dict[str, Any]]:
    figs = [f for f in STATIC if f.section == section and f.key in ROLLS]
    sql = rollup_sql(section, figs, ctx, offset=3)
    return store.query_dicts(sql, bind(sql, params_for(ctx, figs)))


def _memory_rows(store: Store, section: str, ctx: Context) -> list[dict[str, Any]] | None:
    figs = [f for f in STATIC if f.section == section and f.key in ROLLS]
    return rollup_memory.partial_rows(store, section, figs, ctx, offset=3, always=True)


def _contexts(store: Store, portal: str) -> Iterator[tuple[str, Context]]:
    """Periods, groupings and scopes the rollups answer."""
    month = ReportFilter(date(2026, 3, 1), date(2026, 3, 31), today=date(2026, 5, 1))
    year = ReportFilter(date(2025, 6, 1), date(2026, 5, 31), today=date(2026, 5, 1))
    empty = ReportFilter(date(2019, 1, 1), date(2019, 1, 31), today=date(2026, 5, 1))
    for name, flt in (("month", month), ("year", year), ("no records", empty)):
        for by in ("manager", "department", "pipeline"):
            prep = prepare(store, replace(flt, by=by), portal)
            ctx = context(prep, prep.flt.date_from, prep.flt.date_to)
            assert ctx.rollups
            yield f"{name} by {by}", ctx
    prep = prepare(store, year, portal)
    ctx = context(prep, year.date_from, year.date_to)
    managers = sorted({r[0] for r in store.query("SELECT id FROM users") if r[0] is not None})
    yield "two managers", replace(ctx, allowed=frozenset(managers[:2]))
    yield "all but two", replace(ctx, excluded=frozenset(managers[:2]))
    piped = replace(
        ctx,
        opts=replace(ctx.opts, pipelines=True),
        params={**ctx.params, "pipes": [1]},
    )
    yield "pipeline 1", piped


def _assert_equal(store: Store, portal: str) -> int:
    compared = 0
    for name, ctx in _contexts(store, portal):
        for section in ("deals", "leads", "calls"):
            if section == "calls" and ctx.group == "pipeline":
                continue  # calls have no pipeline: the records answer (rollups.usable)
            memory = _memory_rows(store, section, ctx)
            assert memory is not None
            statement = _statement_rows(store, section, ctx)
            assert _sorted(memory) == _sorted(statement), (name, section)
            compared += len(statement)
    return compared


def test_the_sums_in_memory_equal_the_rollup_statement_and_follow_a_sync(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(5)
    with emulate(portal_dir) as emu:
        sync(store, emu)
        assert _assert_equal(store, emu.key) > 50  # rows of managers, departments...
        # Rows with NULLs where SQL compares nothing (no manager, no semantic, no
        # day, no amount, no call type or result): kept or left out alike.
        _add_null_rows(store, emu.key)
        assert _assert_equal(store, emu.key) > 50
        # A sync changes the data: the rows in memory are read again.
        before = rollup_memory.rows(store, "deals", emu.key)
        change_portal(emu, rnd)
        sync(store, emu)
        after = rollup_memory.rows(store, "deals", emu.key)
        assert after is not before
        assert _assert_equal(store, emu.key) > 50
        # The first report on new data keeps the statements (reading the rows costs
        # about as much); from the second on the rows are read, once.
        month = ReportFilter(date(2026, 3, 1), date(2026, 3, 31), today=date(2026, 5, 1))
        first, read = _report(store, month, monkeypatch, memory=True)
        assert read >= 3
        second, _ = _report(store, month, monkeypatch, memory=True)
        assert not differences(first, second)
        # A report from them equals the report from the statements, both periods.
        for flt in (
            ReportFilter(date(2026, 3, 1), date(2026, 3, 31), today=date(2026, 5, 1)),
            ReportFilter(
                date(2026, 1, 1), date(2026, 4, 30), today=date(2026, 5, 1), by="department"
            ),
            ReportFilter(
                date(2026, 1, 1), date(2026, 4, 30), today=date(2026, 5, 1), pipelines=(1,)
            ),
        ):
            fast, read = _report(store, flt, monkeypatch, memory=True)
            assert read == 0  # no statement reads a rollup table: the rows are in memory
            slow, read = _report(store, flt, monkeypatch, memory=False)
            assert read >= 3  # deals, leads, calls: a statement each
            assert not differences(fast, slow), flt


def _add_null_rows(store: Store, portal: str) -> None:
    manager = store.query("SELECT min(manager_id) FROM record_rollups")[0][0]
    day = date(2026, 3, 10)
    records = (
        ("deal", "new", day, None, None, None, 2, None, None, None),
        ("deal", "closed", day, manager, 1, None, 1, 5.0, 1.5, 1),
        ("deal", "open", None, manager, 1, "P", 1, 10.0, None, None),
        ("deal", "open", day, None, 1, "P", 4, 7.0, None, None),
        ("lead", "closed", day, None, None, "S", 1, None, 2.0, 1),
    )
    for row in records:
        store.execute(
            "INSERT INTO record_rollups (portal, entity, kind, day, manager_id, category_id, "
            "semantic, n, amount, days_s, days_n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [portal, *row],
        )
    for row in ((day, None, 2, False, 3, 30), (day, manager, None, None, 2, 20)):
        store.execute(
            "INSERT INTO call_rollups (portal, day, manager_id, call_type, ok, n, secs) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [portal, *row],
        )


def _report(
    store: Store, flt: ReportFilter, monkeypatch: pytest.MonkeyPatch, memory: bool
) -> tuple[dict, int]:
    """The report with the rollups' sums from memory or from their statements, and
    how many of its statements read a rollup table."""
    seen: list[str] = []
    real = type(store).query_dicts

    def spy(self: Store, sql: str, params: Any = None) -> list[dict[str, Any]]:
        seen.append(sql)
        return real(self, sql, params)

    # The figure statements go together (Store.query_batch, rop.report.build).
    real_batch = type(store).query_batch

    def batch_spy(self: Store, statements: Any) -> Any:
        seen.extend(sql for sql, _ in statements)
        return real_batch(self, statements)

    with monkeypatch.context() as m:
        m.setattr(type(store), "query_dicts", spy)
        m.setattr(type(store), "query_batch", batch_spy)
        if not memory:
            m.setattr(rollup_memory, "rows", lambda *a: None)
        report = build_report(store, flt, stages=False)
    return report, sum(" record_rollups " in s or " call_rollups " in s for s in seen)


def test_a_portal_past_the_bound_keeps_the_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures.portals import load

    store = load("tricky", tmp_path / "s.duckdb")
    portal = "tricky.bitrix24.ru"
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
    build_report(store, flt, stages=False)
    fast = build_report(store, flt, stages=False)  # the second: from the rows in memory
    assert rollup_memory.rows(store, "deals", portal) is not None
    store.execute("UPDATE portals SET updated_at = updated_at")  # a write: forget
    monkeypatch.setattr(rollup_memory, "MAX_ROWS", 0)
    build_report(store, flt, stages=False)
    assert not differences(build_report(store, flt, stages=False), fast)
    assert rollup_memory.rows(store, "deals", portal) is None
    store.close()
