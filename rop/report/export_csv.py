"""The report and drill-downs as CSV, in a dialect the reader's spreadsheet opens.

Excel splits a CSV by the list separator of the system's locale: in Russia
that is ``;`` (the comma is the decimal sign), so a comma-separated file
opens as one column. The language picks the dialect (docs/WEB.md, "Exports"):

- ``ru``: ``;`` between fields, a decimal comma, Russian headers and words;
- ``en``: ``,`` and a decimal point, figure keys as headers (METRICS.md), as
  scripts read them.

Both start with a UTF-8 byte-order mark, the one sign Excel takes for UTF-8.
Numbers are rounded to what their kind means (no ``15282554.700000001``),
booleans are words, and text that a spreadsheet would run as a formula is
neutralised (rop.report.export_safe).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rop.report.export_lines import report_lines
from rop.report.export_safe import csv_text
from rop.report.formatting import label, row_heading, word

BOM = "\ufeff"


@dataclass(frozen=True)
class CsvDialect:
    lang: str
    delimiter: str
    decimal: str
    words: bool  # headers in the language's words rather than keys
    yes: str
    no: str
    date: str  # strftime of a day; a moment adds " %H:%M:%S"


DIALECTS = {
    "ru": CsvDialect("ru", ";", ",", True, "да", "нет", "%d.%m.%Y"),
    "en": CsvDialect("en", ",", ".", False, "yes", "no", "%Y-%m-%d"),
}

# Decimals that carry meaning per kind: kopecks, a share to 0.01 %, days to ~15 minutes.
DECIMALS = {"count": 0, "amount": 2, "share": 4, "days": 2, "seconds": 1}

_LINE_WORDS = {
    "ru": {"row": "строка", "department": "подытог", "total": "итого", "previous": "пред. период"},
    "en": {"row": "row", "department": "department", "total": "total", "previous": "previous"},
}
_REPORT_HEAD = {
    "ru": ["Строка", "ID пользователя"],
    "en": ["line", "user_id"],
}


def dialect(lang: str) -> CsvDialect:
    return DIALECTS["en" if lang == "en" else "ru"]


def number(value: float | int, kind: str, d: CsvDialect) -> str:
    """A number as the dialect writes it: no float dust, no ``-0``, its decimal sign."""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.{DECIMALS.get(kind, 6)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.replace(".", d.decimal)


def cell(value: Any, kind: str, d: CsvDialect) -> str:
    """One field: numbers as numbers, booleans as words, moments as a spreadsheet reads
    them, any other text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return d.yes if value else d.no
    if isinstance(value, int | float):
        return number(value, kind, d)
    text = str(value)
    if kind in ("date", "datetime"):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return csv_text(text)
        fmt = d.date if kind == "date" else f"{d.date} %H:%M:%S"
        return moment.strftime(fmt)
    return csv_text(text)


def _writer(out: io.StringIO, d: CsvDialect) -> Any:
    out.write(BOM)
    return csv.writer(out, delimiter=d.delimiter, lineterminator="\r\n")


def report_to_csv(report: dict, lang: str = "ru") -> str:
    """One line per manager, department subtotal (under its managers), total and the
    previous period's total."""
    d = dialect(lang)
    columns = report["columns"]
    heads = [label(c, d.lang) if d.words else c["key"] for c in columns]
    fixed = (
        [*_REPORT_HEAD["ru"], row_heading(report, "ru"), word("department", "ru")]
        if d.words
        else [*_REPORT_HEAD["en"], "name", "department"]
    )
    out = io.StringIO()
    w = _writer(out, d)
    w.writerow([csv_text(h) for h in [*fixed, *heads]])
    for line in report_lines(report, lang, previous_line=True):
        w.writerow(
            [
                _LINE_WORDS[d.lang][line.kind],
                "" if line.user_id is None else str(line.user_id),
                csv_text(line.title),
                csv_text(line.department),
                *[cell(line.figures.get(c["key"]), c["kind"], d) for c in columns],
            ]
        )
    return out.getvalue()


def drill_to_csv(result: dict, lang: str = "ru") -> str:
    """The records behind one figure, every column of the drill-down and the card's URL."""
    return "".join(drill_csv_parts(result, [result["records"]], lang))


def drill_csv_parts(
    result: dict, chunks: Iterable[Iterable[dict[str, Any]]], lang: str = "ru"
) -> Iterator[str]:
    """``drill_to_csv`` piece by piece: the head (byte-order mark and header line),
    then one piece of text per chunk of records (rop.report.drill.drill_chunks),
    so a long list streams and only one chunk's text is held at a time."""
    d = dialect(lang)
    columns = result["columns"]
    heads = [label(c, d.lang) if d.words else c["key"] for c in columns]
    out = io.StringIO()
    w = _writer(out, d)
    w.writerow([csv_text(h) for h in [*heads, "URL" if d.words else "url"]])
    yield out.getvalue()
    for records in chunks:
        out = io.StringIO()
        w = csv.writer(out, delimiter=d.delimiter, lineterminator="\r\n")
        for rec in records:
            w.writerow(
                [cell(rec.get(c["key"]), c["kind"], d) for c in columns]
                + [cell(rec.get("url"), "text", d)]
            )
        text = out.getvalue()
        if text:
            yield text
