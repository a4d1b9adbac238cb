"""Meta-tests: the catalogue is whole, and every figure compiles from its one definition."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from rop.metrics.catalogue import STATIC, figure, figures
from rop.metrics.compile import drill_columns
from rop.metrics.figure import KINDS, MEASURES
from rop.metrics.sources import SOURCES
from rop.report.filter import ReportFilter, ReportInputError

SPEC = Path("/work/shared/spec/METRICS.md")


@pytest.mark.parametrize("fig", STATIC, ids=lambda f: f.key)
def test_every_figure_is_complete(fig):
    assert fig.label_ru and fig.label_en
    assert fig.description_ru and fig.description_en
    assert fig.measure in MEASURES and fig.kind in KINDS
    assert fig.source in SOURCES and SOURCES[fig.source].section == fig.section
    assert drill_columns(SOURCES[fig.source], fig)
    if fig.measure in ("sum", "mean"):
        assert fig.value
    if fig.measure == "share":
        assert fig.numerator and fig.kind == "share"


def test_keys_are_unique_and_match_the_contract():
    keys = [f.key for f in STATIC]
    assert len(keys) == len(set(keys))
    if SPEC.exists():
        documented = set(re.findall(r"^\| `([a-z_]+)` \|", SPEC.read_text(), re.M))
        documented |= {
            k.replace("companies_", "contacts_") for k in documented if k.startswith("companies_")
        }
        assert documented == set(keys)


def test_key_stage_and_status_columns():
    flt = ReportFilter(
        date(2026, 11, 1), date(2026, 11, 30), key_stages=("C1:PREP",), key_statuses=("NEW",),
        sections=("deals", "leads"),
    )  # fmt: skip
    keys = [f.key for f in figures(flt)]
    assert keys[keys.index("deals_overdue") + 1] == "deal_stage:C1:PREP"
    assert keys[-1] == "lead_status:NEW"
    assert (
        figure("deal_stage:C1:PREP").params == figures(flt)[keys.index("deal_stage:C1:PREP")].params
    )
    # The stage ID is a bound value, never part of the SQL text.
    hostile = figure("deal_stage:X'); DROP TABLE deals; --")
    assert "DROP" not in hostile.condition


def test_unknown_figure_is_bad_input():
    with pytest.raises(ReportInputError, match="unknown figure 'deals_nope'"):
        figure("deals_nope")
    with pytest.raises(ReportInputError):
        figure("deal_stage:")


PERIOD_BOUND = ("$p_", "$d_", "moved", "with_deals", "with_sales", "called", "close_time")


@pytest.mark.parametrize("fig", [f for f in STATIC if f.now], ids=lambda f: f.key)
def test_figures_about_the_present_do_not_depend_on_the_period(fig):
    # They are computed once and reused for the previous period (rop.report.build).
    text = " ".join(x or "" for x in (fig.condition, fig.value, fig.numerator))
    assert not any(word in text for word in PERIOD_BOUND)
    assert SOURCES[fig.source].name != "call_rel"  # calls exist only within a period
