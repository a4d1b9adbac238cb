"""The report's plan/fact section as an XLSX sheet (rop.report.export_xlsx adds it).

One line per manager, department and the total, and per planned figure:
plan, fact, % done, the gap and, for the current period, both forecasts.
Names are CRM text: written as strings, never formulas.
"""

from __future__ import annotations

from typing import Any

_HEAD = {
    "ru": ("Строка", "Показатель", "План", "Факт", "Выполнено, %", "Отклонение", "Статус",
           "Прогноз (темп)", "Прогноз (воронка)"),
    "en": ("Line", "Figure", "Plan", "Fact", "Done, %", "Gap", "Status",
           "Forecast (run rate)", "Forecast (pipeline)"),
}  # fmt: skip


def _lines(plans: dict[str, Any], lang: str) -> list[tuple[str, dict[str, Any], dict | None]]:
    name = "name_ru" if lang == "ru" else "name_en"
    out = [(r[name], r["figures"], r.get("forecast")) for r in plans["rows"]]
    out += [(d[name], d["figures"], d.get("forecast")) for d in plans["departments"]]
    total = plans["total"]
    out.append(("Итого" if lang == "ru" else "Total", total["figures"], total.get("forecast")))
    return out


def plans_sheet(book: Any, name: str, report: dict[str, Any], lang: str, bold: Any) -> None:
    plans = report["plans"]
    labels = {c["key"]: c["label_ru" if lang == "ru" else "label_en"] for c in report["columns"]}
    sheet = book.add_worksheet(name)
    facts = [
        (("Период плана", "Plan period"), plans["period"]["key"]),
        (("Рабочих дней", "Working days"), plans["working_days"]),
        (("Прошло рабочих дней", "Working days elapsed"), plans["working_days_elapsed"]),
        (("Ожидается, %", "Expected, %"), plans["expected_pct"]),
    ]
    for r, ((ru, en), value) in enumerate(facts):
        sheet.write_string(r, 0, ru if lang == "ru" else en, bold)
        if isinstance(value, str):
            sheet.write_string(r, 1, value)
        else:
            sheet.write_number(r, 1, value)
    r = len(facts) + 1
    for c, head in enumerate(_HEAD["ru" if lang == "ru" else "en"]):
        sheet.write_string(r, c, head, bold)
    for line, cells, forecast in _lines(plans, lang):
        for f in plans["figures"]:
            r += 1
            cell = cells[f]
            sheet.write_string(r, 0, str(line))
            sheet.write_string(r, 1, labels.get(f, f))
            values = [cell["plan"], cell["fact"], cell["pct"], cell["gap"]]
            for c, v in enumerate(values, start=2):
                if v is not None:
                    sheet.write_number(r, c, v)
            if cell["status"]:
                sheet.write_string(r, 6, cell["status"])
            for c, method in ((7, "run_rate"), (8, "pipeline")):
                v = ((forecast or {}).get(method) or {}).get(f)
                if v is not None:
                    sheet.write_number(r, c, v)
    sheet.set_column(0, 1, 28)
    sheet.set_column(2, 8, 16)
