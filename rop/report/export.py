"""The report and drill-downs as CSV and XLSX files (figure keys as CSV headers)."""

from __future__ import annotations

import csv
import io
from typing import Any, BinaryIO

import xlsxwriter

from rop.report.formatting import SECTION_LABELS, label, row_heading, row_title, word

_XLSX_FORMATS = {
    "count": "0",
    "amount": "#,##0.00",
    "share": "0.0%",
    "days": "0.0",
    "seconds": "[h]:mm:ss",
}


def _lines(report: dict, lang: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(kind, title, figures, department) for every line: rows, subtotals, total, previous."""
    lines = [
        ("row", row_title(r, lang), r["figures"], str(r.get("department") or ""))
        for r in report["rows"]
    ]
    for d in report["departments"]:
        name = d.get("name") or word("no_department", lang)
        lines.append(("department", f"{word('total', lang)}: {name}", d["figures"], str(name)))
    lines.append(("total", word("total", lang), report["total"]["figures"], ""))
    if "previous" in report:
        lines.append(
            ("previous", word("previous", lang), report["previous"]["total"]["figures"], "")
        )
    return lines


def report_to_csv(report: dict, lang: str = "ru") -> str:
    """One line per manager, department subtotal, total and previous total; raw numbers."""
    keys = [c["key"] for c in report["columns"]]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["line", "user_id", "name", "department", *keys])
    user_ids = [r.get("user_id") for r in report["rows"]]
    for i, (kind, title, figs, dept) in enumerate(_lines(report, lang)):
        uid = user_ids[i] if kind == "row" and i < len(user_ids) else ""
        w.writerow(
            [kind, "" if uid is None else uid, title, dept, *[_csv(figs.get(k)) for k in keys]]
        )
    return out.getvalue()


def _csv(value: Any) -> Any:
    return "" if value is None else value


def _xlsx_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    return value / 86400 if kind == "seconds" else value


def _write_sheet(book, name: str, report: dict, columns: list[dict], lang: str) -> None:
    sheet = book.add_worksheet(name[:31])
    bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    fmts = {k: book.add_format({"num_format": f}) for k, f in _XLSX_FORMATS.items()}
    bold_fmts = {
        k: book.add_format({"num_format": f, "bold": True}) for k, f in _XLSX_FORMATS.items()
    }
    head = [row_heading(report, lang), word("department", lang)]
    for c, text in enumerate(head + [label(col, lang) for col in columns]):
        sheet.write(0, c, text, bold)
    for r, (kind, title, figs, dept) in enumerate(_lines(report, lang), start=1):
        strong = kind != "row"
        sheet.write(r, 0, title, bold if strong else None)
        sheet.write(r, 1, dept)
        for c, col in enumerate(columns, start=2):
            value = _xlsx_value(figs.get(col["key"]), col["kind"])
            style = (bold_fmts if strong else fmts)[col["kind"]]
            if value is None:
                sheet.write_blank(r, c, None, style)
            else:
                sheet.write_number(r, c, value, style)
    sheet.freeze_panes(1, 1)
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 18)
    sheet.set_column(2, 1 + len(columns), 14)
    sheet.set_row(0, 45)


def report_to_xlsx(
    report: dict, path_or_buffer: str | BinaryIO | None = None, lang: str = "ru"
) -> bytes | None:
    """One sheet for the whole report and one per section; real numbers with formats.

    Without a path or buffer, returns the file's bytes.
    """
    if path_or_buffer is None:
        buffer = io.BytesIO()
        report_to_xlsx(report, buffer, lang)
        return buffer.getvalue()
    book = xlsxwriter.Workbook(path_or_buffer, {"in_memory": True})
    try:
        _write_sheet(book, word("report", lang), report, report["columns"], lang)
        for section, (ru, en) in SECTION_LABELS.items():
            cols = [c for c in report["columns"] if c["section"] == section]
            if cols:
                _write_sheet(book, ru if lang == "ru" else en, report, cols, lang)
    finally:
        book.close()
    return None


def drill_to_csv(result: dict, lang: str = "ru") -> str:
    keys = [c["key"] for c in result["columns"]] + ["url"]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(keys)
    for rec in result["records"]:
        w.writerow([_csv(rec.get(k)) for k in keys])
    return out.getvalue()


def drill_to_xlsx(
    result: dict, path_or_buffer: str | BinaryIO | None = None, lang: str = "ru"
) -> bytes | None:
    """The drill-down list as a sheet; without a path or buffer, returns the bytes."""
    if path_or_buffer is None:
        buffer = io.BytesIO()
        drill_to_xlsx(result, buffer, lang)
        return buffer.getvalue()
    book = xlsxwriter.Workbook(path_or_buffer, {"in_memory": True})
    try:
        sheet = book.add_worksheet(result["figure"].replace(":", "_")[:31])
        bold = book.add_format({"bold": True})
        fmts = {k: book.add_format({"num_format": f}) for k, f in _XLSX_FORMATS.items()}
        cols = result["columns"]
        for c, col in enumerate(cols):
            sheet.write(0, c, label(col, lang), bold)
        sheet.write(0, len(cols), "URL", bold)
        for r, rec in enumerate(result["records"], start=1):
            for c, col in enumerate(cols):
                value = rec.get(col["key"])
                if isinstance(value, bool) or value is None:
                    sheet.write(r, c, "" if value is None else ("да" if value else "нет"))
                elif isinstance(value, (int, float)) and col["kind"] in _XLSX_FORMATS:
                    sheet.write_number(r, c, _xlsx_value(value, col["kind"]), fmts[col["kind"]])
                else:
                    sheet.write(r, c, value)
            if rec.get("url"):
                sheet.write_url(r, len(cols), rec["url"], string=str(rec["id"]))
        sheet.freeze_panes(1, 0)
    finally:
        book.close()
    return None
