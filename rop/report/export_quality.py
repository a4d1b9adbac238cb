"""The data-quality panel as XLSX: one sheet, managers worst first, each
check's count and the score, then the total; names and texts as text."""

from __future__ import annotations

import io
from typing import Any

import xlsxwriter

from rop.report.export_xlsx import BOOK_OPTIONS


def quality_to_xlsx(panel: dict[str, Any], lang: str = "ru") -> bytes:
    ru = lang == "ru"
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, BOOK_OPTIONS)
    sheet = book.add_worksheet("Качество данных" if ru else "Data quality")
    bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    share = book.add_format({"num_format": "0.0%"})
    period = panel["period"]
    sheet.write_string(0, 0, "Период" if ru else "Period", bold)
    sheet.write_string(0, 1, f"{period['from']} – {period['to']}")
    sheet.write_string(1, 0, "Сегодня" if ru else "Today", bold)
    sheet.write_string(1, 1, panel["today"])
    cols = panel["columns"]
    head = [
        "Менеджер" if ru else "Manager",
        "Оценка" if ru else "Score",
        "Открытых записей" if ru else "Open records",
        "С проблемами" if ru else "With problems",
        *(c["label_ru"] if ru else c["label_en"] for c in cols),
    ]
    r = 3
    for c, text in enumerate(head):
        sheet.write_string(r, c, text, bold)
    lines = [(row["name_ru"] if ru else row["name"], row) for row in panel["rows"]]
    lines.append(("Итого" if ru else "Total", panel["total"]))
    for name, row in lines:
        r += 1
        sheet.write_string(r, 0, name)
        if row["score"] is None:
            sheet.write_string(r, 1, "—")
        else:
            sheet.write_number(r, 1, row["score"], share)
        sheet.write_number(r, 2, row["open_records"])
        sheet.write_number(r, 3, row["open_with_problems"])
        for c, col in enumerate(cols, start=4):
            sheet.write_number(r, c, row["figures"][col["key"]])
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, len(head), 14)
    sheet.freeze_panes(4, 1)
    book.close()
    return out.getvalue()


def quality_to_table(panel: dict[str, Any], lang: str = "ru", width: int = 200) -> str:
    """The panel as plain text (rich, no colour): a row per manager, worst first."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    ru = lang == "ru"
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    period = panel["period"]
    console.print(
        Text(f"{'Качество данных' if ru else 'Data quality'}: {period['from']} — {period['to']}")
    )
    table = Table(show_lines=False)
    table.add_column("Менеджер" if ru else "Manager")
    table.add_column("Оценка" if ru else "Score", justify="right")
    cols = panel["columns"]
    for c in cols:
        table.add_column(f"{c['label_ru'] if ru else c['label_en']}\n[{c['key']}]", justify="right")

    def score(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f} %".replace(".", "," if ru else ".")

    lines = [(r["name_ru"] if ru else r["name"], r) for r in panel["rows"]]
    lines.append(("Итого" if ru else "Total", panel["total"]))
    for name, row in lines:
        table.add_row(
            Text(name), score(row["score"]), *(str(row["figures"][c["key"]]) for c in cols)
        )
    console.print(table)
    return buffer.getvalue()
