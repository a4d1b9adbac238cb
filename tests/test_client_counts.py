"""The companies' and contacts' sections counted from the period's events
(rop.metrics.client_counts) give exactly what the records path gives, for
every grouping, scope, pipeline subset, call bounds, both periods at once and
the stored client facts of a long period."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

import rop.metrics.client_counts as client_counts
import rop.report.build as build
from rop.bitrix.snapshot import load_snapshot
from rop.report.build import build_report
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store import open_store
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load
from tests.sync_portal import make_portal
from tests.test_sync import emulate, sync

SECTIONS = ("companies", "contacts")
# (the emulator's kind, the report's section, the deals' column) of each client kind.
CLIENTS = [("contact", "contacts", "contact_id"), ("company", "companies", "company_id")]


@pytest.fixture
def used(monkeypatch):
    """The client sections' queries that came from counts per manager."""
    seen: list[str] = []
    make = client_counts.client_counts_sql

    def counting(source, figs, ctx):
        sql = make(source, figs, ctx)
        if sql is not None:
            seen.append(source.name)
        return sql

    monkeypatch.setattr(build, "client_counts_sql", counting)
    return seen


def _both_ways(store, flt: ReportFilter, monkeypatch, portal: str | None = None) -> dict:
    """The report by counts, checked against the same report by the records."""
    fast = build_report(store, flt, portal=portal, stages=False)
    with monkeypatch.context() as m:
        m.setattr(client_counts, "ENABLED", False)
        slow = build_report(store, flt, portal=portal, stages=False)
    for part in ("total", "rows", "departments", "previous"):
        assert fast.get(part) == slow.get(part), (part, flt)
    return fast


def _nonzero(report: dict) -> int:
    return sum(
        1
        for k, v in report["total"]["figures"].items()
        if k.startswith(("companies_", "contacts_")) and v not in (None, 0, 0.0)
    )


def test_tricky_portal_counts_equal_the_records(used, monkeypatch):
    store = load("tricky")
    nov = (date(2026, 11, 1), date(2026, 11, 30))
    for flt in (
        ReportFilter(*nov, today=date(2026, 11, 27)),
        ReportFilter(*nov, compare=False),
        ReportFilter(date(2026, 10, 1), date(2026, 10, 31), min_call_seconds=30, viewer=2),
        ReportFilter(date(2026, 10, 1), date(2026, 12, 31), pipelines=(0,), max_call_seconds=100),
        ReportFilter(*nov, by="department"),
        ReportFilter(*nov, by="source"),
        ReportFilter(*nov, by="pipeline"),
        ReportFilter(date(2026, 1, 1), date(2026, 11, 30)),
        ReportFilter(date(2026, 1, 1), date(2026, 11, 30), min_call_seconds=10),
    ):
        _both_ways(store, flt, monkeypatch)
    assert {"company_rel", "contact_rel"} <= set(used)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    generator = pytest.importorskip("rop.demo.generator")
    folder = tmp_path_factory.mktemp("demo")
    generator.generate(folder, seed=5, deals=3000)
    store = open_store(":memory:")
    load_snapshot(store, folder)
    yield store
    store.close()


def test_demo_portal_counts_equal_the_records(demo_store, used, monkeypatch):
    last = demo_store.scalar("SELECT max(date_create) FROM deals").date()
    month = last.replace(day=1)
    managers = [
        r[0]
        for r in demo_store.query(
            "SELECT assigned_by_id FROM contacts WHERE assigned_by_id IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 3"
        )
    ]
    depts = [r[0] for r in demo_store.query("SELECT id FROM departments ORDER BY id LIMIT 2")]
    compared = 0
    for flt in (
        ReportFilter(month, last),
        ReportFilter(month, last, previous="full"),
        ReportFilter(month - timedelta(days=61), last, min_call_seconds=20),
        ReportFilter(month, last, by="source", sections=SECTIONS),
        ReportFilter(month, last, by="department", sections=SECTIONS),
        ReportFilter(month, last, managers=tuple(managers[:2]), sections=SECTIONS),
        ReportFilter(month, last, departments=(depts[-1],), sections=SECTIONS),
        ReportFilter(month, last, pipelines=(0,), max_call_seconds=60, sections=SECTIONS),
        # A long period: the flags from the stored client facts.
        ReportFilter(date(last.year, 1, 1), last, sections=SECTIONS),
        ReportFilter(date(last.year, 1, 1), last, sections=SECTIONS, by="source"),
        ReportFilter(date(last.year - 1, 1, 1), last, sections=SECTIONS, compare=False),
    ):
        compared += _nonzero(_both_ways(demo_store, flt, monkeypatch))
    assert compared > 40
    assert set(used) == {"company_rel", "contact_rel"}


def test_a_viewer_scope_narrows_the_counts(demo_store, used, monkeypatch):
    """A viewer who sees one department: their report's client figures are
    counted for that department's managers only, as the records are."""
    last = demo_store.scalar("SELECT max(date_create) FROM deals").date()
    head = demo_store.scalar(
        "SELECT head_id FROM departments WHERE head_id IS NOT NULL AND parent_id IS NOT NULL "
        "ORDER BY id LIMIT 1"
    )
    if head is None:
        pytest.skip("the demo portal has no department head")
    whole = build_report(demo_store, ReportFilter(last.replace(day=1), last, sections=SECTIONS))
    flt = ReportFilter(last.replace(day=1), last, sections=SECTIONS, viewer=int(head))
    seen = _both_ways(demo_store, flt, monkeypatch)
    assert used
    total = "contacts_total"
    assert 0 < seen["total"]["figures"][total] < whole["total"]["figures"][total]


@pytest.fixture(scope="module")
def small_portal(tmp_path_factory):
    return make_portal(tmp_path_factory.mktemp("portal"), deals=200)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("kind", "table", "link"), CLIENTS)
def test_a_client_moved_to_another_manager_counts_for_the_new_one(
    small_portal, engine, kind, table, link, tmp_path, request, monkeypatch
):
    """The client's manager, not the deal's: a contact or a company handed to
    another manager on the portal takes its flags with it after an incremental
    sync (the stored copies of its manager follow, as the records path does)."""
    section = f"{table}_"
    with open_store(store_target(engine, tmp_path, request)) as store, emulate(small_portal) as emu:
        # The portal's deals have companies only: some get a contact too; its
        # clients are all one manager's: five share them.
        for rid in sorted(emu.portal.tables["deal"].rows)[::5]:
            emu.portal.update("deal", rid, {"CONTACT_ID": str(1 + rid % 80)})
        for rid in sorted(emu.portal.tables[kind].rows):
            emu.portal.update(kind, rid, {"ASSIGNED_BY_ID": str(2 + rid % 5)})
        sync(store, emu)
        # A client with a deal created mid-month (its local day in the same month).
        client, owner, created = store.query(
            f"SELECT x.id, x.assigned_by_id, min(d.date_create) FROM {table} x "
            f"JOIN deals d ON d.{link} = x.id WHERE x.assigned_by_id IS NOT NULL "
            "AND EXTRACT(DAY FROM d.date_create) BETWEEN 3 AND 25 "
            "GROUP BY x.id, x.assigned_by_id ORDER BY x.id LIMIT 1"
        )[0]
        start = created.date().replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        flt = ReportFilter(start, end, sections=(table,), compare=False, today=date(2026, 11, 27))
        prep = prepare(store, flt, emu.key)
        assert context(prep, start, end).opts.client_managers  # the stored copies are read
        before = _both_ways(store, flt, monkeypatch, emu.key)
        rows = {r["key"]: r["figures"] for r in before["rows"]}
        other = next(k for k in rows if k not in (owner, None))
        emu.portal.update(kind, int(client), {"ASSIGNED_BY_ID": str(other)})
        sync(store, emu)
        after = _both_ways(store, replace(flt), monkeypatch, emu.key)
    moved = {r["key"]: r["figures"] for r in after["rows"]}
    assert moved[owner][f"{section}total"] == rows[owner][f"{section}total"] - 1
    assert moved[other][f"{section}total"] == rows[other][f"{section}total"] + 1
    assert moved[owner][f"{section}with_deals"] <= rows[owner][f"{section}with_deals"]
    # Its deal of the month goes with it.
    assert moved[owner][f"{section}with_deals"] == rows[owner][f"{section}with_deals"] - 1
    assert moved[other][f"{section}with_deals"] == rows[other][f"{section}with_deals"] + 1
    assert after["total"]["figures"] == before["total"]["figures"]


def test_grants_and_unknown_figures_keep_the_records_path():
    """A viewer with single records granted (app mode) and a figure the counts do
    not know get the records path (None here), never a wrong count."""
    from rop.metrics.catalogue import STATIC
    from rop.metrics.compile import Context
    from rop.metrics.sources import SOURCES, Options

    figs = [f for f in STATIC if f.section == "companies"]
    opts = Options(pipelines=False, max_call=False)
    source = SOURCES["company_rel"]
    assert client_counts.client_counts_sql(source, figs, Context({}, opts)) is not None
    granted = Context({}, opts, grant_viewer=7, grant_full={"company": frozenset({1})})
    assert client_counts.client_counts_sql(source, figs, granted) is None
    odd = replace(figs[0], condition="date_create IS NULL")
    assert client_counts.client_counts_sql(source, [*figs, odd], Context({}, opts)) is None
    assert client_counts.client_counts_sql(SOURCES["deal_rel"], figs, Context({}, opts)) is None
