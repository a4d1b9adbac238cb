"""Shown values: the same rules for the terminal table and the exports."""

from __future__ import annotations

from typing import Any

SECTION_LABELS = {
    "deals": ("Сделки", "Deals"),
    "leads": ("Лиды", "Leads"),
    "companies": ("Компании", "Companies"),
    "contacts": ("Контакты", "Contacts"),
    "calls": ("Звонки", "Calls"),
}
WORDS = {
    "manager": ("Менеджер", "Manager"),
    "department": ("Отдел", "Department"),
    "row": ("Строка", "Row"),
    "source": ("Источник", "Source"),
    "pipeline": ("Воронка", "Pipeline"),
    "total": ("Итого", "Total"),
    "previous": ("Предыдущий период", "Previous period"),
    "report": ("Отчёт", "Report"),
    "dismissed": ("уволен", "dismissed"),
    "no_department": ("Без отдела", "No department"),
    "no_source": ("Без источника", "No source"),
    "no_pipeline": ("Без воронки", "No pipeline"),
    "user": ("Пользователь", "user"),
    "same_days": ("те же дни", "same days"),
    "whole_period": ("весь период", "whole period"),
}


def comparison_tag(report: dict, lang: str) -> str:
    """Which previous period a file's figures compare with, for a period that has
    not ended: "те же дни" / "весь период"; "" when the period is over (always whole)."""
    period = (report.get("previous") or {}).get("period") or {}
    if not period.get("ongoing"):
        return ""
    return word("same_days" if period.get("mode") == "to_date" else "whole_period", lang)


def previous_title(report: dict, lang: str) -> str:
    """The previous period's line in a file: "Предыдущий период 01.10.2026–28.10.2026, те же дни"."""
    from datetime import date

    period = (report.get("previous") or {}).get("period") or {}
    title = word("previous", lang)
    try:
        start, end = date.fromisoformat(period["from"]), date.fromisoformat(period["to"])
    except (KeyError, TypeError, ValueError):
        return title
    fmt = "%d.%m.%Y" if lang == "ru" else "%Y-%m-%d"
    title += f" {start.strftime(fmt)}–{end.strftime(fmt)}"
    tag = comparison_tag(report, lang)
    return f"{title}, {tag}" if tag else title


def word(key: str, lang: str) -> str:
    ru, en = WORDS[key]
    return ru if lang == "ru" else en


def row_heading(report: dict, lang: str) -> str:
    """The first column's title: what a row is (manager, department, source, pipeline)."""
    by = report.get("filter", {}).get("by", "manager")
    return word(by if by in WORDS else "row", lang)


def label(item: dict, lang: str) -> str:
    return str(item["label_ru"] if lang == "ru" else item["label_en"])


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def show(value: Any, kind: str) -> str:
    """A value as a person reads it; nothing to divide by is a dash, never 0 %."""
    if value is None:
        return "—"
    if kind == "share":
        return f"{value * 100:.1f} %"
    if kind == "days":
        return f"{value:.1f}"
    if kind == "seconds":
        return hms(value)
    if kind == "amount":
        return f"{value:,.2f}".replace(",", " ")
    if isinstance(value, bool):
        return "да" if value else "нет"
    return str(value)


def unknown_user_name(user_id: int, lang: str) -> str:
    """A user the portal's directory does not know: "Пользователь #7" / "user #7"."""
    return f"{word('user', lang)} #{user_id}"


def row_title(row: dict, lang: str) -> str:
    name = str(row.get(f"name_{lang}") or row.get("name") or "—")
    if row.get("dismissed"):
        name += f" ({word('dismissed', lang)})"
    return name
