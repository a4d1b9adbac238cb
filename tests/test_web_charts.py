"""The pictures' data straight from the store (tiny portal)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from rop.report.filter import ReportFilter
from rop.report.trend import deal_trend
from rop.web import charts
from rop.web.options import load_options
from tests.test_web_support import tiny_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = tiny_store(tmp_path_factory.mktemp("charts"))
    yield s
    s.close()


def test_funnel_counts_the_furthest_stage_reached(store):
    opts = load_options(store)
    october = ReportFilter(date(2026, 10, 1), date(2026, 10, 31))
    wholesale = charts.funnel(store, opts, 1, october)
    assert [(s["stage_id"], s["count"]) for s in wholesale["steps"]] == [
        ("C1:NEW", 2),
        ("C1:WON", 1),
    ]
    # Only Вера's (3) deals: 1 won, 2 lost after PREPARATION.
    mine = charts.funnel(store, opts, 0, replace(october, managers=(3,)))
    assert [s["count"] for s in mine["steps"]] == [2, 2, 1]
    # Everyone but Вера; and every pipeline in one call gives the same funnels.
    others = replace(october, managers=tuple(u["id"] for u in opts.users if u["id"] != 3))
    assert charts.funnel(store, opts, 0, others)["steps"][0]["count"] == 3
    both = charts.funnels(store, opts, [0, 1], october)
    assert both == [charts.funnel(store, opts, 0, october), wholesale]


def test_trend_stops_at_today_and_goes_weekly_for_long_periods(store):
    # The trend is the report layer's (rop.report.trend); the page shows it as is.
    short = deal_trend(
        store, ReportFilter(date(2026, 10, 1), date(2026, 10, 31)), today=date(2026, 10, 9)
    )
    assert short["labels"][-1] == "2026-10-09" and sum(short["new"]) == 5  # deals 1, 2, 3, 4, 7
    year = deal_trend(store, ReportFilter(date(2026, 1, 1), date(2026, 12, 31)))
    assert year["unit"] == "week" and year["labels"][0] == "2025-12-29"
    assert sum(year["new"]) == 8 and sum(year["won"]) == 5 and sum(year["lost"]) == 1
