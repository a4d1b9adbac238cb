"""A drill-down page in the default order (by ID) is a slice of the whole list in
that order, on both engines; on PostgreSQL its statement sorts by ``f.id + 0``,
so the planner reads the filter's index and sorts the few matching rows instead of
walking the primary key over every fact of the portal for a LIMIT that the
``count(*) OVER ()`` beside the page never lets stop early (1M deals: 2.1 s ->
0.19 s, docs/BENCHMARKS.md, PostgreSQL thirteenth run)."""

from __future__ import annotations

from datetime import date

import pytest

from rop.report.build import drill
from rop.report.drill import _plan
from rop.report.filter import ReportFilter
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load

FLT = ReportFilter(date(2026, 10, 1), date(2026, 11, 30), today=date(2026, 11, 27))
FIGURES = ("deals_won", "deals_new", "leads_new", "calls_total")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_page_in_id_order_is_the_slice_of_the_whole_list(engine, tmp_path, request):
    store = load("tricky", store_target(engine, tmp_path, request))
    for figure in FIGURES:
        for desc in (False, True):
            whole = drill(store, FLT, figure, desc=desc)
            ids = [r["id"] for r in whole["records"]]
            assert len(ids) > 3, figure
            assert ids == sorted(ids, reverse=desc), (figure, desc)
            page = drill(store, FLT, figure, desc=desc, offset=1, limit=2)
            assert page["records"] == whole["records"][1:3], (figure, desc)
            assert page["total_records"] == whole["total_records"] == len(ids)
    store.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_only_postgres_pages_sort_by_an_unindexed_id(engine, tmp_path, request):
    store = load("tricky", store_target(engine, tmp_path, request))

    def sql(figure: str, limit: int | None, sort: str | None = None) -> str:
        args = (None, None, None, sort, False, 0, limit, None, False, None)
        return _plan(store, FLT, figure, *args).sql

    for figure in FIGURES:
        paged = sql(figure, 100)
        if engine == "postgres":
            assert "ORDER BY (f.id + 0) ASC NULLS LAST, f.id LIMIT 100" in paged, figure
        else:
            assert "ORDER BY f.id ASC NULLS LAST, f.id LIMIT 100" in paged, figure
        # The whole list (an export) has no LIMIT to mislead the planner: as before.
        assert "(f.id + 0)" not in sql(figure, None), figure
    # Another sort key is no primary key: left alone.
    assert "(f.id + 0)" not in sql("calls_total", 100, sort="duration")
    store.close()
