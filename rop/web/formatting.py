"""Numbers the way a Russian (or English) reader expects them.

One function per figure kind (counts, amounts, shares, days, seconds), plus
the delta against the previous period. ``None`` means "nothing to divide by"
and always shows as an em dash, never as 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DASH = "—"
# Every negative number and delta gets the typographic minus (U+2212), never a
# hyphen: "−5", "−3 п.п.", "−0:01:10".
MINUS = "\u2212"
# Russian typography groups thousands with a (non-breaking) space and uses a
# comma for decimals; a narrow no-break space keeps "1 234 567 ₽" on one line.
_GROUP = {"ru": "\u00a0", "en": ","}
_DECIMAL = {"ru": ",", "en": "."}
_CURRENCY_SIGNS = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br", "UAH": "₴"}

# Figures where a rise is bad news: their delta arrows are coloured inversely.
_WORSE_WHEN_UP = (
    "lost",
    "overdue",
    "missed",
    "not_called",
    "not_sold",
    "cycle",
    "junk",
    "conversion_loss",
)


def _group(value: int, lang: str) -> str:
    text = f"{abs(value):,}".replace(",", _GROUP.get(lang, ","))
    return (MINUS if value < 0 else "") + text


def fmt_count(value: float | None, lang: str = "ru") -> str:
    if value is None:
        return DASH
    return _group(round(value), lang)


def fmt_amount(value: float | None, currency: str = "RUB", lang: str = "ru") -> str:
    if value is None:
        return DASH
    sign = _CURRENCY_SIGNS.get(currency, currency)
    number = _group(round(value), lang)
    return f"{number}\u00a0{sign}" if lang == "ru" else f"{number} {sign}"


def fmt_share(value: float | None, lang: str = "ru") -> str:
    if value is None:
        return DASH
    pct = round(value * 100)
    text = (MINUS if pct < 0 else "") + str(abs(pct))
    return f"{text}\u00a0%" if lang == "ru" else f"{text}%"


def fmt_days(value: float | None, lang: str = "ru") -> str:
    if value is None:
        return DASH
    text = (MINUS if value < 0 else "") + f"{abs(value):.1f}".replace(".", _DECIMAL.get(lang, "."))
    return f"{text}\u00a0дн." if lang == "ru" else f"{text} d"


def fmt_seconds(value: float | None, lang: str = "ru") -> str:
    """Talk time as h:mm:ss (hours are not wrapped at 24)."""
    if value is None:
        return DASH
    total = round(value)
    sign = MINUS if total < 0 else ""
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{seconds:02d}"


def fmt_value(kind: str, value: float | None, currency: str = "RUB", lang: str = "ru") -> str:
    """Format one figure by its kind (count, amount, share, days, seconds)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if kind == "amount":
        return fmt_amount(value, currency, lang)
    if kind == "share":
        return fmt_share(value, lang)
    if kind == "days":
        return fmt_days(value, lang)
    if kind == "seconds":
        return fmt_seconds(value, lang)
    if isinstance(value, float) and not value.is_integer():
        text = f"{abs(value):.1f}".replace(".", _DECIMAL.get(lang, "."))
        return (MINUS if value < 0 else "") + text
    return fmt_count(value, lang)


@dataclass(frozen=True)
class Delta:
    """The change of one figure against the previous period, ready to show."""

    direction: str  # "up", "down" or "same"
    good: bool | None  # None when flat or unknown
    text: str  # the signed difference, formatted like the figure
    previous: str  # the previous value, formatted


def delta(
    key: str,
    kind: str,
    current: float | None,
    previous: float | None,
    currency: str = "RUB",
    lang: str = "ru",
) -> Delta | None:
    """The delta to show next to a figure, or None when either side is missing."""
    if current is None or previous is None:
        return None
    diff = current - previous
    prev_text = fmt_value(kind, previous, currency, lang)
    if abs(diff) < 1e-9:
        return Delta("same", None, "", prev_text)
    worse_up = any(part in key for part in _WORSE_WHEN_UP)
    up = diff > 0
    if kind == "share":
        # Percentage points: the difference of two shares, not a ratio of them.
        pts = round(diff * 100)
        if pts == 0:
            return Delta("same", None, "", prev_text)
        signed = ("+" if pts > 0 else MINUS) + str(abs(pts))
        text = f"{signed}\u00a0п.п." if lang == "ru" else f"{signed} pp"
    else:
        text = fmt_value(kind, abs(diff), currency, lang)
        # A change too small to show (0,04 дн., 0.3 s) reads as "no change", not "+0".
        if text == fmt_value(kind, 0, currency, lang) or text in ("0,0", "0.0"):
            return Delta("same", None, "", prev_text)
        text = ("+" if up else MINUS) + text
    return Delta("up" if up else "down", up != worse_up, text, prev_text)


def fmt_moment(iso: str | None, timezone: str, lang: str = "ru") -> str | None:
    """An ISO 8601 moment as the portal's local time: 27.11.2026 10:35."""
    if not iso:
        return None
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(iso)
        local = moment.astimezone(ZoneInfo(timezone)) if moment.tzinfo else moment
    except (ValueError, KeyError):
        return iso
    return local.strftime("%d.%m.%Y %H:%M" if lang == "ru" else "%Y-%m-%d %H:%M")


# Calls in words (BITRIX24_API.md, voximplant.statistic.get): CALL_TYPE,
# CALL_FAILED_CODE and CRM_ENTITY_TYPE are codes in the store.
_CALL_TYPES = {
    1: ("Исходящий", "Outgoing"),
    2: ("Входящий", "Incoming"),
    3: ("Входящий с переадресацией", "Incoming, redirected"),
    4: ("Обратный звонок", "Callback"),
    5: ("Информационный", "Informational"),
}
_CALL_RESULTS = {
    "200": ("Состоялся", "Connected"),
    "304": ("Пропущен", "Missed"),
    "603": ("Отклонён", "Declined"),
    "603-S": ("Отменён", "Cancelled"),
    "486": ("Занято", "Busy"),
    "480": ("Абонент недоступен", "Unavailable"),
    "404": ("Неверный номер", "Wrong number"),
    "402": ("Недостаточно средств", "Insufficient funds"),
    "403": ("Запрещён", "Forbidden"),
    "423": ("Заблокирован", "Blocked"),
    "484": ("Неполный номер", "Incomplete number"),
    "503": ("Сервис недоступен", "Service unavailable"),
    "OTHER": ("Вызов не удался", "Call failed"),
}
_CRM_ENTITIES = {
    "COMPANY": ("Компания", "Company"),
    "CONTACT": ("Контакт", "Contact"),
    "LEAD": ("Лид", "Lead"),
    "DEAL": ("Сделка", "Deal"),
}
# Numbers written without a country code are read as Russian ones (the portals
# this report is for); a number that is not valid stays as the portal wrote it.
PHONE_REGION = "RU"


def _word(words: dict, value: object, lang: str) -> str:
    pair = words.get(value)
    if pair is None:
        return str(value)
    return pair[0] if lang == "ru" else pair[1]


def fmt_phone(raw: object) -> str:
    """A phone as its country writes it: 79161234567 -> +7 916 123-45-67
    (libphonenumber's international format); anything else as it came."""
    import phonenumbers

    text = str(raw).strip()
    digits = text.lstrip("+")
    candidates = [text] if text.startswith("+") else [f"+{digits}", text]
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, PHONE_REGION)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return text


def fmt_cell(
    kind: str, value: object, key: str = "", currency: str = "RUB", lang: str = "ru"
) -> str:
    """One value of a drill-down record, by its column kind."""
    if value is None or value == "":
        return DASH
    if kind == "bool":
        return "✓" if value else ""
    if kind == "call_type":
        return _word(_CALL_TYPES, value, lang)
    if kind == "call_status":
        return _word(_CALL_RESULTS, str(value), lang)
    if kind == "crm_entity":
        return _word(_CRM_ENTITIES, str(value).upper(), lang)
    if kind == "phone":
        return fmt_phone(value)
    if key == "id" or key.endswith("_id"):
        return str(value)
    if kind in ("datetime", "date") and isinstance(value, str):
        from datetime import datetime

        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if kind == "date" or len(value) == 10:
            return moment.strftime("%d.%m.%Y" if lang == "ru" else "%Y-%m-%d")
        return moment.strftime("%d.%m.%Y %H:%M" if lang == "ru" else "%Y-%m-%d %H:%M")
    if kind in ("count", "amount", "share", "days", "seconds") and isinstance(value, int | float):
        return fmt_value(kind, value, currency, lang)
    return str(value)
