"""A drill-down page's count and value, and an export's statement without them.

A page carries the list's count and the figure's value over the whole list. On
DuckDB the lists that are a scan of stored facts (calls, leads: ``Source.reread``)
count them beside the page, from the list read again, instead of in windows that
hold every row of it; the numbers must not change: every page of a list, an empty
page past its end, a manager's and a department's rows (the one pick that joins
the manager's department) give the count and the value the whole list gives.

An export (rop.report.drill.drill_chunks) reads the rows alone: its statement
counts nothing, so DuckDB need not hold the whole list before its first row.
"""

from __future__ import annotations

from datetime import date

import pytest

from rop.metrics.catalogue import figure
from rop.metrics.sources import SOURCES
from rop.report import drill as drill_module
from rop.report.build import drill
from rop.report.drill import drill_chunks
from rop.report.filter import ReportFilter
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load

FLT = ReportFilter(date(2026, 10, 1), date(2026, 11, 30), today=date(2026, 11, 27))
# Every measure: counts, a sum, means and shares, over calls, leads and deals.
FIGURES = (
    "calls_total",
    "calls_outgoing",
    "calls_talk_seconds",
    "calls_avg_seconds",
    "leads_new",
    "leads_conversion_sale",
    "leads_conversion_cycle_days",
    "deals_won",
    "deals_won_amount",
)


@pytest.fixture(scope="module", params=ENGINES)
def store(request, tmp_path_factory):
    opened = load("tricky", store_target(request.param, tmp_path_factory.mktemp("t"), request))
    yield opened
    opened.close()


def _rows(store, key: str, **row) -> dict:
    """The whole list, and its value, as one read gives them."""
    return drill(store, FLT, key, **row)


@pytest.mark.parametrize("key", FIGURES)
def test_every_page_gives_the_whole_lists_count_and_value(store, key):
    whole = _rows(store, key)
    count = len(whole["records"])
    assert whole["total_records"] == count
    assert count >= 2, key  # the fixture has a list to page through
    for offset in (0, 1, 2, count - 1):
        page = drill(store, FLT, key, offset=max(0, offset), limit=2)
        assert page["total_records"] == count, (key, offset)
        assert page["value"] == whole["value"], (key, offset)
        assert page["records"] == whole["records"][max(0, offset) : max(0, offset) + 2]
    past = drill(store, FLT, key, offset=count + 5, limit=2)
    assert past["records"] == []
    assert past["total_records"] == count
    assert past["value"] == whole["value"]


@pytest.mark.parametrize("key", ["calls_total", "calls_avg_seconds", "leads_new"])
def test_a_managers_and_a_departments_page_count_their_own_rows(store, key):
    whole = _rows(store, key)
    managers = {r["manager_id"] for r in whole["records"]}
    departments = {
        d
        for (d,) in store.query(
            "SELECT DISTINCT u.department_id FROM users u JOIN departments d "
            "ON d.portal = u.portal AND d.id = u.department_id"
        )
    }
    assert managers and departments
    for row in [{"user_id": m} for m in sorted(managers)] + [
        {"department_id": d} for d in sorted(departments)
    ]:
        listed = _rows(store, key, **row)
        page = drill(store, FLT, key, limit=1, **row)
        assert page["total_records"] == len(listed["records"]), row
        assert page["value"] == listed["value"], row
        assert page["records"] == listed["records"][:1], row


def test_duckdbs_scanned_lists_count_beside_the_page_not_in_windows(store):
    # The windows held every row of the list before the page was picked (the
    # calls of a month at 1M deals: a quarter of the page's CPU). PostgreSQL's
    # page keeps its windows (its plans were not measured with the other form).
    windows = store.dialect.name != "duckdb"
    for key in ("calls_total", "leads_new"):
        plan = drill_module._plan(store, FLT, key, None, None, None, None, False, 0, 2,
                                  None, False, None)  # fmt: skip
        assert SOURCES[figure(key).source].reread
        assert (" OVER (" in plan.sql) is windows, key


def test_an_exports_statement_counts_nothing(store, monkeypatch):
    statements: list[str] = []
    compile_sql = drill_module.drill_sql

    def spy(*args, **kwargs):
        sql, cols = compile_sql(*args, **kwargs)
        statements.append(sql)
        return sql, cols

    monkeypatch.setattr(drill_module, "drill_sql", spy)
    for key in ("calls_total", "deals_won", "companies_not_called", "leads_conversion_sale"):
        statements.clear()
        head, chunks = drill_chunks(store, FLT, key, chunk=3)
        got = [r for chunk in chunks for r in chunk]
        monkeypatch.setattr(drill_module, "drill_sql", compile_sql)
        whole = drill(store, FLT, key)
        monkeypatch.setattr(drill_module, "drill_sql", spy)
        assert got == whole["records"], key
        assert len(statements) == 1, key
        assert " OVER (" not in statements[0], key
        assert "_total" not in statements[0] and "a0_" not in statements[0], key


def test_a_drill_workbook_is_written_row_by_row(tmp_path):
    """20,000 records: the workbook holds a row at a time (xlsxwriter's
    constant_memory), not every cell until it closes (50 MB here in memory
    mode, 16 MB now), and the cells are the same: a formula-like title stays text."""
    import io
    import tracemalloc

    import openpyxl

    from rop.report.export_xlsx import drill_to_xlsx

    columns = [
        {"key": "id", "label_ru": "ID", "label_en": "ID", "kind": "count"},
        {"key": "title", "label_ru": "Сделка", "label_en": "Deal", "kind": "text"},
        {"key": "amount", "label_ru": "Сумма", "label_en": "Amount", "kind": "amount"},
        {"key": "note", "label_ru": "Заметка", "label_en": "Note", "kind": "text"},
    ]
    records = [
        {"id": i, "title": f"Сделка {i}" if i else "=1+2", "amount": i * 1.5,
         "note": f"note {i} " * 4, "url": f"https://p.bitrix24.ru/crm/deal/details/{i}/"}
        for i in range(20_000)
    ]  # fmt: skip
    result = {"figure": "deals_won", "label_ru": "Успешные", "label_en": "Won",
              "columns": columns, "records": records, "period": {"from": "2026-11-01",
              "to": "2026-11-30"}, "description": "всё", "description_en": "all"}  # fmt: skip
    tracemalloc.start()
    try:
        body = drill_to_xlsx(result, lang="en")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert body is not None
    # Each record's card link is held to the end in both modes (~0.4 KB; Excel takes
    # 65,530 a sheet); in memory mode every cell too (~2.5 KB a record here).
    assert peak < 1_200 * len(records), f"peak {peak} bytes while writing the workbook"
    sheet = openpyxl.load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    head = rows.index(("ID", "Deal", "Amount", "Note", "URL"))
    assert rows[head + 1][:4] == (0, "=1+2", 0, "note 0 " * 4)
    assert rows[-1][:3] == (19_999, "Сделка 19999", 19_999 * 1.5)
    assert len(rows) - head - 1 == 20_000
