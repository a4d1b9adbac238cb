"""The report and drill-downs as XLSX: text as text, numbers and dates as real cells.

xlsxwriter turns a string that looks like a formula, a URL or a number into
one by default; a CRM title ``=HYPERLINK(...)`` would become a live link. The
workbook switches those conversions off and every text goes through
``write_string``. Each sheet says what it shows at the top (period, filter,
data date), then the table: managers with their department's subtotal under
them, the total, and for each figure about the period its previous-period
value and the change.
"""

from __future__ import annotations

import contextlib
import io
from datetime import date, datetime
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import xlsxwriter

from rop.report.export_lines import Line, report_lines
from rop.report.export_safe import sheet_name
from rop.report.export_xlsx_stages import stage_sheets
from rop.report.formatting import SECTION_LABELS, comparison_tag, label, row_heading, word

# No conversion of text: a CRM string stays a string (formula injection).
BOOK_OPTIONS = {
    "in_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}
# A drill-down's list is written row by row (xlsxwriter's constant_memory: a row
# goes to a temporary file once the next one starts, its strings inline): 50,000
# calls at 1M deals took the workbook 168 MB, now 4 MB, in 25 % more time
# (docs/BENCHMARKS.md "The CSV export's statement"). Its rows are written in order.
DRILL_BOOK_OPTIONS = {**BOOK_OPTIONS, "in_memory": False, "constant_memory": True}

NUMBER_FORMATS = {
    "count": "0",
    "amount": "#,##0.00",
    "share": "0.0%",
    "days": "0.0",
    "seconds": "[h]:mm:ss",
}
# A change carries its sign; one minus sign, U+2212, as on the page. A change
# of a duration is in seconds: Excel cannot show a negative time.
DELTA_FORMATS = {
    "count": '"+"0;"−"0;0',
    "amount": '"+"#,##0.00;"−"#,##0.00;0.00',
    "share": '"+"0.0%;"−"0.0%;0.0%',
    "days": '"+"0.0;"−"0.0;0.0',
    "seconds": '"+"0" {s}";"−"0" {s}";0" {s}"',
}
DATE_FORMATS = {"ru": "dd.mm.yyyy", "en": "yyyy-mm-dd"}
MOMENT_FORMATS = {"ru": "dd.mm.yyyy hh:mm", "en": "yyyy-mm-dd hh:mm"}

_WORDS = {
    "period": ("Период", "Period"),
    "compared": ("Сравнение с", "Compared with"),
    "filter": ("Фильтр", "Filter"),
    "data_as_of": ("Данные на", "Data as of"),
    "currency": ("Валюта", "Currency"),
    "figure": ("Показатель", "Figure"),
    "records": ("Записей", "Records"),
    "previous": ("пред. период", "previous"),
    "change": ("изменение", "change"),
    "yes": ("да", "yes"),
    "no": ("нет", "no"),
    "seconds": ("с", "s"),
}


def _w(key: str, lang: str) -> str:
    ru, en = _WORDS[key]
    return ru if lang == "ru" else en


class _Styles:
    """The workbook's formats, made once per book."""

    def __init__(self, book: Any, lang: str) -> None:
        self.head = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.bold = book.add_format({"bold": True})
        self.date = book.add_format({"num_format": DATE_FORMATS[lang], "align": "left"})
        self.moment = book.add_format({"num_format": MOMENT_FORMATS[lang], "align": "left"})
        self.number = {k: book.add_format({"num_format": f}) for k, f in NUMBER_FORMATS.items()}
        self.strong = {
            k: book.add_format({"num_format": f, "bold": True}) for k, f in NUMBER_FORMATS.items()
        }
        unit = _w("seconds", lang)
        self.delta = {
            k: book.add_format({"num_format": f.replace("{s}", unit), "italic": True})
            for k, f in DELTA_FORMATS.items()
        }


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        return None


def _moment(text: str | None, tz: str | None = None) -> datetime | None:
    """An ISO moment as a naive local datetime (Excel has no time zones)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    if moment.tzinfo is not None and tz:
        with contextlib.suppress(KeyError, ValueError):
            moment = moment.astimezone(ZoneInfo(tz))
    return moment.replace(tzinfo=None)


def _put(sheet: Any, r: int, c: int, value: Any, fmt: Any = None) -> None:
    """A header value: a date as a date, a number as a number, anything else as text."""
    if isinstance(value, datetime):
        sheet.write_datetime(r, c, value, fmt)
    elif isinstance(value, date):
        sheet.write_datetime(r, c, datetime(value.year, value.month, value.day), fmt)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        sheet.write_number(r, c, value)
    elif value is not None:
        sheet.write_string(r, c, str(value))


def _about(sheet: Any, facts: list[tuple[str, list[Any]]], st: _Styles) -> int:
    """What the sheet shows, one fact a row; returns the first row after a blank one."""
    for r, (title, values) in enumerate(facts):
        sheet.write_string(r, 0, title, st.bold)
        for c, value in enumerate(values, start=1):
            fmt = st.moment if isinstance(value, datetime) else st.date
            _put(sheet, r, c, value, fmt)
    return len(facts) + 1


def _report_facts(report: dict, lang: str) -> list[tuple[str, list[Any]]]:
    period = report["period"]
    tz = period.get("timezone")
    facts: list[tuple[str, list[Any]]] = [
        (_w("period", lang), [_day(period["from"]), _day(period["to"]), tz]),
        (_w("filter", lang), [report.get(f"description_{lang}") or report.get("description_ru")]),
        (_w("data_as_of", lang), [_moment(report.get("data_as_of"), tz), tz]),
        (_w("currency", lang), [report.get("currency")]),
    ]
    prev = (report.get("previous") or {}).get("period")
    if prev:
        # A period not yet over says whether it is set against the same days or all of it.
        tag = comparison_tag(report, lang)
        compared = [_day(prev["from"]), _day(prev["to"])] + ([tag] if tag else [])
        facts.insert(1, (_w("compared", lang), compared))
    return facts


def _cell_value(value: Any, kind: str) -> Any:
    """A duration is a fraction of a day in a spreadsheet."""
    if kind == "seconds" and isinstance(value, int | float) and not isinstance(value, bool):
        return value / 86400
    return value


def _write_number(sheet: Any, r: int, c: int, value: Any, fmt: Any) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        sheet.write_blank(r, c, None, fmt)
    else:
        sheet.write_number(r, c, value, fmt)


def _about_now(key: str) -> bool:
    """A figure about the present (in progress, portfolio) is the same in both
    periods: it gets no previous value and no change."""
    from rop.metrics.catalogue import figure
    from rop.metrics.errors import ReportInputError

    try:
        return bool(figure(key).now)
    except ReportInputError:
        return False


def _report_sheet(
    book: Any, name: str, report: dict, columns: list[dict], lang: str, st: _Styles
) -> None:
    sheet = book.add_worksheet(name)
    top = _about(sheet, _report_facts(report, lang), st)
    has_prev = "previous" in report
    # (column, what): the figure, then its previous value and change when it has one.
    layout: list[tuple[dict, str]] = []
    for col in columns:
        layout.append((col, "value"))
        if has_prev and not _about_now(col["key"]):
            layout += [(col, "previous"), (col, "change")]
    heads = [row_heading(report, lang), word("department", lang)]
    tag = comparison_tag(report, lang)
    for col, what in layout:
        text = label(col, lang)
        if what != "value":
            text = f"{text}, {_w(what, lang)}" + (f" ({tag})" if tag else "")
        heads.append(text)
    for c, text in enumerate(heads):
        sheet.write_string(top, c, text, st.head)
    for r, line in enumerate(report_lines(report, lang), start=top + 1):
        _report_line(sheet, r, line, layout, st)
    sheet.freeze_panes(top + 1, 1)
    sheet.set_column(0, 0, 30)
    sheet.set_column(1, 1, 18)
    sheet.set_column(2, 1 + len(layout), 14)
    sheet.set_row(top, 60)


def _report_line(sheet: Any, r: int, line: Line, layout: list[tuple[dict, str]], st: _Styles):
    strong = line.kind != "row"
    sheet.write_string(r, 0, line.title, st.bold if strong else None)
    sheet.write_string(r, 1, line.department)
    for c, (col, what) in enumerate(layout, start=2):
        kind = col["kind"]
        value = line.figures.get(col["key"])
        before = None if line.previous is None else line.previous.get(col["key"])
        if what == "value":
            style = (st.strong if strong else st.number)[kind]
            _write_number(sheet, r, c, _cell_value(value, kind), style)
        elif what == "previous":
            _write_number(sheet, r, c, _cell_value(before, kind), st.number[kind])
        else:
            change = None
            if isinstance(value, int | float) and isinstance(before, int | float):
                change = value - before
            _write_number(sheet, r, c, change, st.delta[kind])


def _book(path_or_buffer: str | BinaryIO, options: dict[str, bool] = BOOK_OPTIONS) -> Any:
    return xlsxwriter.Workbook(path_or_buffer, options)


def report_to_xlsx(
    report: dict, path_or_buffer: str | BinaryIO | None = None, lang: str = "ru"
) -> bytes | None:
    """One sheet for the whole report and one per section; without a path or buffer,
    returns the file's bytes."""
    if path_or_buffer is None:
        buffer = io.BytesIO()
        report_to_xlsx(report, buffer, lang)
        return buffer.getvalue()
    book = _book(path_or_buffer)
    try:
        st = _Styles(book, lang)
        taken: set[str] = set()
        name = sheet_name(word("report", lang), taken)
        _report_sheet(book, name, report, report["columns"], lang, st)
        for section, (ru, en) in SECTION_LABELS.items():
            cols = [c for c in report["columns"] if c["section"] == section]
            if cols:
                name = sheet_name(ru if lang == "ru" else en, taken)
                _report_sheet(book, name, report, cols, lang, st)
        stage_sheets(book, report, lang, st, taken)
        if (report.get("plans") or {}).get("period"):
            from rop.report.export_plans import plans_sheet

            name = sheet_name("План-факт" if lang == "ru" else "Plan-fact", taken)
            plans_sheet(book, name, report, lang, st.bold)
    finally:
        book.close()
    return None


def _record_cell(sheet: Any, r: int, c: int, value: Any, kind: str, st: _Styles, lang: str):
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_string(r, c, _w("yes" if value else "no", lang))
    elif isinstance(value, int | float):
        fmt = st.number.get(kind)
        sheet.write_number(r, c, _cell_value(value, kind) if fmt else value, fmt)
    elif kind in ("date", "datetime") and _moment(value) is not None:
        moment = _moment(value)
        sheet.write_datetime(r, c, moment, st.date if kind == "date" else st.moment)
    else:
        sheet.write_string(r, c, str(value))


def drill_to_xlsx(
    result: dict, path_or_buffer: str | BinaryIO | None = None, lang: str = "ru"
) -> bytes | None:
    """The drill-down list as a sheet; without a path or buffer, returns the bytes."""
    if path_or_buffer is None:
        buffer = io.BytesIO()
        drill_to_xlsx(result, buffer, lang)
        return buffer.getvalue()
    book = _book(path_or_buffer, DRILL_BOOK_OPTIONS)
    try:
        st = _Styles(book, lang)
        sheet = book.add_worksheet(sheet_name(result["figure"]))
        period = result.get("period") or {}
        description = result.get("description_en" if lang == "en" else "description")
        facts: list[tuple[str, list[Any]]] = [
            (_w("figure", lang), [label(result, lang)]),
            (_w("period", lang), [_day(period.get("from")), _day(period.get("to"))]),
            (_w("filter", lang), [description]),
            (_w("records", lang), [len(result["records"])]),
        ]
        top = _about(sheet, facts, st)
        cols = result["columns"]
        for c, col in enumerate(cols):
            sheet.write_string(top, c, label(col, lang), st.head)
        sheet.write_string(top, len(cols), "URL", st.head)
        for r, rec in enumerate(result["records"], start=top + 1):
            for c, col in enumerate(cols):
                _record_cell(sheet, r, c, rec.get(col["key"]), col["kind"], st, lang)
            url = str(rec.get("url") or "")
            if url.startswith(("https://", "http://")):
                sheet.write_url(r, len(cols), url, string=str(rec.get("id", url)))
            elif url:
                sheet.write_string(r, len(cols), url)
        sheet.freeze_panes(top + 1, 0)
    finally:
        book.close()
    return None
