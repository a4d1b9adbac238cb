"""The report as a readable terminal table (rich), one table per section."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rop.report.formatting import (
    SECTION_LABELS,
    label,
    previous_title,
    row_heading,
    row_title,
    show,
    word,
)
from rop.report.stages_table import print_stages
from rop.report.zones import zone_label

_NUMERIC = ("count", "amount", "share", "days", "seconds")


def _shown(value: object, kind: str, lang: str) -> str:
    """A value for the terminal: a Russian table writes decimals with a comma
    (12,5 %; 1 234,50), as a Russian reader (and Excel) expects."""
    text = show(value, kind)
    if lang == "ru" and kind in _NUMERIC and isinstance(value, int | float):
        text = text.replace(".", ",")
    return text


def report_to_table(report: dict, lang: str = "ru", width: int = 200) -> str:
    """Plain text (no colour codes) of every section's table, with the filter above."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    period = report["period"]
    console.print(
        Text(
            f"{word('report', lang)} {report['portal']['key']}: {period['from']} — {period['to']} "
            f"({zone_label(period['timezone'], lang)}), {report['currency']}"
        )
    )
    console.print(Text(report["description_ru" if lang == "ru" else "description_en"]))
    for section, (ru, en) in SECTION_LABELS.items():
        section_cols = [c for c in report["columns"] if c["section"] == section]
        # A terminal is narrow: a section's columns go in chunks that fit.
        for start in range(0, len(section_cols), COLUMNS_PER_TABLE):
            cols = section_cols[start : start + COLUMNS_PER_TABLE]
            title = ru if lang == "ru" else en
            console.print(_section_table(report, title, cols, lang))
    print_stages(console, report, lang)
    return buffer.getvalue()


COLUMNS_PER_TABLE = 7


def _section_table(report: dict, title: str, cols: list[dict], lang: str) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column(row_heading(report, lang), no_wrap=True)
    for col in cols:
        table.add_column(label(col, lang), justify="right")
    for row in report["rows"]:
        table.add_row(
            Text(row_title(row, lang)),
            *[_shown(row["figures"][c["key"]], c["kind"], lang) for c in cols],
        )
    for dep in report["departments"]:
        name = dep.get("name") or word("no_department", lang)
        table.add_row(
            Text(f"{word('total', lang)}: {name}"),
            *[_shown(dep["figures"][c["key"]], c["kind"], lang) for c in cols],
            style="bold",
        )
    table.add_row(
        word("total", lang),
        *[_shown(report["total"]["figures"][c["key"]], c["kind"], lang) for c in cols],
        style="bold",
    )
    if "previous" in report:
        table.add_row(
            previous_title(report, lang),  # its days, and "same days" mid-period
            *[
                _shown(report["previous"]["total"]["figures"][c["key"]], c["kind"], lang)
                for c in cols
            ],
            style="italic",
        )
    return table


def drill_to_table(result: dict, lang: str = "ru", width: int = 200) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    table = Table(
        title=f"{result['label_ru' if lang == 'ru' else 'label_en']}: {_shown(result['value'], result['kind'], lang)}"
    )
    for col in result["columns"]:
        table.add_column(label(col, lang))
    for rec in result["records"]:
        table.add_row(
            *[
                Text(
                    _shown(rec.get(c["key"]), c["kind"], lang)
                    if rec.get(c["key"]) is not None
                    else ""
                )
                for c in result["columns"]
            ]
        )
    console.print(Text(result["description" if lang == "ru" else "description_en"]))
    console.print(table)
    return buffer.getvalue()
