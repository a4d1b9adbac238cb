"""Both periods of a section in one query (companies, contacts over short periods)
give exactly what a report of each period alone gives."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

import rop.report.build as build
from rop.bitrix.snapshot import load_snapshot
from rop.report.build import build_report
from rop.report.filter import ReportFilter
from rop.store import open_store
from tests.fixtures.portals import load


def _by_key(items: list[dict], key: str) -> dict:
    return {r[key]: r["figures"] for r in items}


def _empty(figures: dict) -> bool:
    return all(v in (None, 0, 0.0) for v in figures.values())


def check_previous(store, flt: ReportFilter) -> int:
    """The report's previous period equals a report of those days alone; returns
    how many client figures were compared (so a test knows it compared some)."""
    report = build_report(store, flt, stages=False)
    prev = report["previous"]["period"]
    alone = build_report(
        store,
        replace(
            flt,
            date_from=date.fromisoformat(prev["from"]),
            date_to=date.fromisoformat(prev["to"]),
            compare=False,
        ),
        stages=False,
    )
    assert report["previous"]["total"]["figures"] == alone["total"]["figures"]
    alone_rows = _by_key(alone["rows"], "key")
    for row in report["previous"]["rows"]:
        expected = alone_rows.get(row["key"])
        assert row["figures"] == expected if expected is not None else _empty(row["figures"])
    alone_depts = _by_key(alone["departments"], "department_id")
    for dept in report["previous"]["departments"]:
        expected = alone_depts.get(dept["department_id"])
        assert dept["figures"] == expected if expected is not None else _empty(dept["figures"])
    # And the current period equals a report of it without the comparison.
    current = build_report(store, replace(flt, compare=False), stages=False)
    assert report["total"]["figures"] == current["total"]["figures"]
    assert report["rows"] == current["rows"]
    return sum(
        1
        for k, v in report["previous"]["total"]["figures"].items()
        if k.startswith(("companies_", "contacts_")) and v not in (None, 0, 0.0)
    )


@pytest.fixture
def paired(monkeypatch):
    """Counts the sections computed for both periods at once."""
    seen: list[str] = []
    run = build._run_both

    def counting(prep, section, figs, ctx, prev):
        seen.append(section)
        return run(prep, section, figs, ctx, prev)

    monkeypatch.setattr(build, "_run_both", counting)
    return seen


def test_tricky_portal_previous_period_equals_its_own_report(paired):
    store = load("tricky")
    for flt in (
        ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27)),
        ReportFilter(date(2026, 10, 1), date(2026, 10, 31), min_call_seconds=30, viewer=2),
        ReportFilter(date(2026, 10, 1), date(2026, 12, 31), pipelines=(0,), max_call_seconds=100),
        ReportFilter(date(2026, 11, 1), date(2026, 11, 30), by="department"),
    ):
        check_previous(store, flt)
    assert set(paired) == {"companies", "contacts"}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    generator = pytest.importorskip("rop.demo.generator")
    folder = tmp_path_factory.mktemp("demo")
    generator.generate(folder, seed=3, deals=3000)
    store = open_store(":memory:")
    load_snapshot(store, folder)
    yield store
    store.close()


def test_demo_portal_previous_period_equals_its_own_report(demo_store, paired):
    last = demo_store.scalar("SELECT max(date_create) FROM deals").date()
    month = last.replace(day=1)
    compared = 0
    for flt in (
        ReportFilter(month, last),
        ReportFilter(month, last, previous="full"),
        ReportFilter(month - timedelta(days=61), last, min_call_seconds=20),
        ReportFilter(month, last, by="source", sections=("companies", "contacts")),
    ):
        compared += check_previous(demo_store, flt)
    assert compared > 8 and paired
    # A long period runs each period on its own (the pairing does not pay there).
    paired.clear()
    check_previous(demo_store, ReportFilter(date(last.year, 1, 1), last))
    assert not paired
