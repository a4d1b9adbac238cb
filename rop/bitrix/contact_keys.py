"""Keys that tell two CRM clients are likely the same: a phone and an e-mail,
normalised once when a record becomes a row.

Phones go through ``phonenumbers`` (Google's libphonenumber, maintained), not
hand-written parsing: "8 (912) 345-67-89", "+7 912 345 67 89" and
"79123456789" all become "+79123456789". A number without a country code is
read as Russian, the portals' usual country (docs/METRICS_DECISIONS.md).
A requisite's INN is checked by ``python-stdnum`` (its control digits) the same way.
"""

from __future__ import annotations

from typing import Any

# The region a number without "+" is read in.
PHONE_REGION = "RU"


def phone_key(raw: Any) -> str | None:
    """E.164 of a valid number, else None (a fragment cannot match another client)."""
    import phonenumbers

    text = str(raw or "").strip()
    if not text:
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    # "79123456789" is a full number written without its "+".
    candidates = [text] if text.startswith("+") else [text, f"+{digits}"]
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, PHONE_REGION)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def inn_key(raw: Any) -> str | None:
    """The digits of a valid Russian INN (10 digits: an organisation, 12: a person or
    a sole trader), else None: a typo or a placeholder cannot match another client.

    Valid means the control digits check out (``python-stdnum``'s ``ru.inn``) and
    it is not all zeros (the usual placeholder, whose control digits are zeros too).
    """
    from stdnum.ru import inn

    digits = "".join(ch for ch in str(raw or "") if ch.isdigit())
    if len(digits) not in (10, 12) or not digits.strip("0"):
        return None
    return digits if inn.is_valid(digits) else None


def email_key(raw: Any) -> str | None:
    """An address compared without case or blanks; None unless it has an "@"."""
    text = str(raw or "").strip().lower()
    return text if "@" in text.strip("@") else None


def first_value(value: Any) -> str | None:
    """The first value of a multi-field (``[{"VALUE": "...", ...}]``)."""
    if isinstance(value, list):
        for item in value:
            found = item.get("VALUE") if isinstance(item, dict) else None
            if found:
                return str(found)
    return None
