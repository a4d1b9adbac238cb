"""Figures as a reader reads them, in the digest's language (Babel's CLDR data)."""

from __future__ import annotations

from datetime import date
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal, get_currency_symbol

_LOCALE = {"ru": "ru_RU", "en": "en_GB"}


def show(value: Any, kind: str, lang: str, currency: str | None = None) -> str:
    """A figure's value; nothing to divide by is a dash, never 0 %."""
    loc = _LOCALE.get(lang, "ru_RU")
    if value is None:
        return "—"
    if kind == "share":
        return format_decimal(value * 100, format="#,##0.0", locale=loc) + " %"
    if kind == "days":
        return format_decimal(value, format="#,##0.0", locale=loc)
    if kind == "seconds":
        total = int(round(value))
        return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
    if kind == "amount":
        text = format_decimal(round(value), format="#,##0", locale=loc)
        return f"{text} {get_currency_symbol(currency, locale=loc)}" if currency else text
    return format_decimal(value, format="#,##0", locale=loc)


def change(ratio: float | None, lang: str) -> str:
    """+12 % / −5 % against the previous period; empty when not comparable."""
    if ratio is None:
        return ""
    loc = _LOCALE.get(lang, "ru_RU")
    sign = "+" if ratio > 0 else ("−" if ratio < 0 else "±")
    return f"{sign}{format_decimal(abs(ratio) * 100, format='#,##0', locale=loc)} %"


def period(first: date, last: date, lang: str) -> str:
    loc = _LOCALE.get(lang, "ru_RU")
    if first == last:
        return format_date(first, format="d MMMM y", locale=loc)
    return (
        f"{format_date(first, format='d MMM', locale=loc)} – "
        f"{format_date(last, format='d MMM y', locale=loc)}"
    )
