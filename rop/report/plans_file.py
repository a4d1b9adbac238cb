"""Plans as a file: the downloadable template (CSV or XLSX) and reading it back.

One line per plan: subject (``user`` or ``department``), its ID, its name
(for the reader; ignored on import), the figure's key, the period
(``2026-11`` or ``2026-Q4``) and the plan. An empty plan cell leaves that
plan as it is. Names are CRM text: written as text, never a formula.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rop.metrics.errors import ReportInputError
from rop.report.export_safe import csv_text
from rop.report.plans import (
    MAIN_FIGURES,
    PlanEntry,
    PlanPeriod,
    list_plans,
    parse_period,
    parse_value,
)
from rop.report.scope import choosable_departments, viewer_scope
from rop.store.db import Store

HEADER = ("subject", "id", "name", "figure", "period", "plan")
MAX_LINES = 20000


def template_rows(
    store: Store, portal: str, period: PlanPeriod, *, viewer: int | None
) -> list[tuple[Any, ...]]:
    """Every department and active user the viewer sees, for the main figures,
    with the plans in force (empty where there is none)."""
    scope = viewer_scope(store, portal, viewer)
    allowed = choosable_departments(store, portal, viewer, scope)
    current = {
        (p["subject"], p["subject_id"], p["figure"]): p["value"]
        for p in list_plans(store, portal, viewer=viewer, period=period)
    }
    figures = list(MAIN_FIGURES) + sorted({f for (_, _, f) in current} - set(MAIN_FIGURES))
    rows: list[tuple[Any, ...]] = []
    for did, name in store.query(
        "SELECT id, name FROM departments WHERE portal = ? ORDER BY sort, id", [portal]
    ):
        if allowed is None or did in allowed:
            for f in figures:
                rows.append(("department", did, name or "", f, period.key,
                             current.get(("department", did, f))))  # fmt: skip
    for uid, first, last in store.query(
        "SELECT id, name, last_name FROM users WHERE portal = ? AND coalesce(active, TRUE) "
        "ORDER BY id",
        [portal],
    ):
        if scope.sees(uid):
            name = " ".join(p for p in (first, last) if p)
            for f in figures:
                rows.append(("user", uid, name, f, period.key, current.get(("user", uid, f))))
    return rows


def to_csv(rows: list[tuple[Any, ...]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, delimiter=";")
    w.writerow(HEADER)
    for r in rows:
        w.writerow([csv_text(v) if isinstance(v, str) else ("" if v is None else v)
                    for v in r])  # fmt: skip
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(rows: list[tuple[Any, ...]]) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False})  # fmt: skip
    sheet = book.add_worksheet("plans")
    sheet.write_row(0, 0, HEADER)
    for i, r in enumerate(rows, start=1):
        for j, v in enumerate(r):
            if isinstance(v, str):
                sheet.write_string(i, j, v)
            elif v is not None:
                sheet.write_number(i, j, v)
    book.close()
    return buf.getvalue()


def _problem(text: str) -> ReportInputError:
    return ReportInputError("bad_plan_file", problem=text)


def _lines_csv(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1251")
        except UnicodeDecodeError:
            raise _problem("not UTF-8 or Windows-1251 text") from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def _lines_xlsx(data: bytes) -> list[list[Any]]:
    import zipfile

    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        raise _problem("not an XLSX workbook") from None
    sheet = book.worksheets[0]
    return [list(r) for r in sheet.iter_rows(values_only=True, max_row=MAX_LINES + 2)]


def read_entries(data: bytes, filename: str = "") -> list[PlanEntry]:
    """The plans of a CSV or XLSX file; every problem names its line."""
    is_xlsx = data[:2] == b"PK" or filename.lower().endswith(".xlsx")
    lines = _lines_xlsx(data) if is_xlsx else _lines_csv(data)
    if not lines:
        raise _problem("empty")
    header = [str(c or "").strip().lower() for c in lines[0]]
    missing = [h for h in HEADER if h != "name" and h not in header]
    if missing:
        raise _problem(f"no column {', '.join(missing)} in the first line")
    if len(lines) > MAX_LINES + 1:
        raise _problem(f"more than {MAX_LINES} lines")
    at = {h: header.index(h) for h in HEADER if h in header}
    entries = []
    for n, line in enumerate(lines[1:], start=2):
        cells = list(line) + [None] * (len(header) - len(line))
        if all(c in (None, "") for c in cells):
            continue
        value = cells[at["plan"]]
        if value in (None, "") or (isinstance(value, str) and not value.strip()):
            continue
        try:
            subject = str(cells[at["subject"]] or "").strip()
            raw_id = cells[at["id"]]
            if isinstance(raw_id, float) and raw_id.is_integer():
                raw_id = int(raw_id)
            sid = int(str(raw_id).strip())
            entries.append(PlanEntry(subject, sid, str(cells[at["figure"]] or "").strip(),
                                     parse_period(str(cells[at["period"]] or "")),
                                     parse_value(value)))  # fmt: skip
        except ReportInputError as exc:
            raise _problem(f"line {n}: {exc}") from None
        except ValueError:
            raise _problem(f"line {n}: bad id {cells[at['id']]!r}") from None
    return entries
