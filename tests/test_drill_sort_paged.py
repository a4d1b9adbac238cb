"""A list sorted by a column of the records' own (a call's duration or start, a
company's creation) picks its page first and names only its rows, as the default
order does: no list text is computed for the whole portal, and the rows and their
order are those of the whole list sorted the same way. Sorted by a text (a call's
client), the whole texts are computed, as the order needs them all."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from rop.report.build import drill
from rop.report.filter import ReportFilter
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load
from tests.test_drill_texts import cached_steps

FLT = ReportFilter(date(2026, 10, 1), date(2026, 11, 30), today=date(2026, 11, 27))


def _key(column: str, desc: bool):
    """The SQL order ``column ASC|DESC NULLS LAST, id`` as a Python sort key."""

    def key(rec: dict[str, Any]) -> tuple:
        value = rec[column]
        if isinstance(value, str) and column in ("started", "date_create"):
            value = datetime.fromisoformat(value).timestamp()
        if value is None:
            return (1, 0, rec["id"])
        return (0, -value if desc else value, rec["id"])

    return key


@pytest.mark.parametrize("engine", ENGINES)
def test_a_list_sorted_by_its_own_column_names_its_page_only(engine, tmp_path, request):
    store = load("tricky", store_target(engine, tmp_path, request))
    cases = [
        ("calls_total", "duration", True),
        ("calls_total", "started", False),
        ("companies_total", "date_create", True),
    ]
    for figure, column, desc in cases:
        # The whole list, named, in the manager's order: the reference rows.
        whole = drill(store, FLT, figure, sort="manager")["records"]
        assert len(whole) > 3, figure
        expected = sorted(whole, key=_key(column, desc))
        got = drill(store, FLT, figure, sort=column, desc=desc)
        assert got["records"] == expected, (figure, column)
        assert got["total_records"] == len(whole)
        # A page in the middle is that slice, its count the whole list's.
        page = drill(store, FLT, figure, sort=column, desc=desc, offset=1, limit=2)
        assert page["records"] == expected[1:3], (figure, column)
        assert page["total_records"] == len(whole)
    store.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_only_a_sort_by_a_text_computes_every_rows_text(engine, tmp_path, request):
    store = load("tricky", store_target(engine, tmp_path, request))
    drill(store, FLT, "calls_total", sort="duration", desc=True)
    drill(store, FLT, "companies_total", sort="date_create")
    assert not {s for s in cached_steps(store) if s.endswith("_text")}
    by_client = drill(store, FLT, "calls_total", sort="client")["records"]
    assert "call_text" in cached_steps(store)
    assert len(by_client) == len(drill(store, FLT, "calls_total", sort="manager")["records"])
    if engine == "duckdb":  # PostgreSQL orders text by its cluster's collation
        named = [r["client"] for r in by_client if r["client"] is not None]
        assert named == sorted(named)
    store.close()
