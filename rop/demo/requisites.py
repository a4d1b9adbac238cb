"""Companies' requisites (crm.requisite.list): the INN, with the problems a real
portal has: a few companies entered twice under one INN written another way,
placeholders and typos, and companies with no requisites yet (docs/DEMO.md).

Drawn from a side generator of their own, so adding them changed no other
value of a portal generated with the same seed. The control digits come from
``python-stdnum`` (the library the product checks them with).
"""

from __future__ import annotations

from array import array
from random import Random
from typing import Any

from stdnum.ru import inn

HAS_REQUISITE = 0.85  # share of client companies with requisites filled in
SOLE_TRADER = 0.08  # of those: a sole trader (ИП), 12-digit INN
TWIN = 0.01  # repeats an earlier company's INN (entered twice)
BROKEN = 0.01  # a placeholder or a typo: no INN to compare
COMPANY = 4  # ENTITY_TYPE_ID of a company


def company_inn(rng: Random) -> str:
    """A valid 10-digit INN of an organisation."""
    body = f"{rng.randint(1, 99):02d}{rng.randrange(10**7):07d}"
    return body + inn.calc_company_check_digit(body)


def person_inn(rng: Random) -> str:
    """A valid 12-digit INN of a person (a sole trader)."""
    body = f"{rng.randint(1, 99):02d}{rng.randrange(10**8):08d}"
    return body + inn.calc_personal_check_digits(body)


def spaced(number: str, style: int) -> str:
    """One INN the ways people type it."""
    if style == 0:
        return number
    if style == 1:
        return " ".join(number[i : i + 2] for i in range(0, len(number), 2))
    return f"{number[:4]} {number[4:]}"


class Requisites:
    """Requisites for companies in ID order; remembers INNs for twins."""

    def __init__(self, rng: Random) -> None:
        # A str seed goes through SHA-512: the same in every process.
        self.rng = Random("requisites:" + repr(rng.getstate()[1][:16]))
        self.inns = array("q")
        self.next_id = 1

    def for_company(
        self, company_id: int, created: str, modified: str | None
    ) -> dict[str, Any] | None:
        rng = self.rng
        if rng.random() >= HAS_REQUISITE:
            return None
        roll = rng.random()
        trader = rng.random() < SOLE_TRADER
        if roll < TWIN and self.inns:
            number = str(self.inns[rng.randrange(len(self.inns))])
            value = spaced(number.zfill(12 if len(number) > 10 else 10), 1 + rng.randrange(2))
        elif roll < TWIN + BROKEN:
            value = rng.choice(("0000000000", "нет", "7707083894", "123"))
        else:
            number = person_inn(rng) if trader else company_inn(rng)
            self.inns.append(int(number))
            value = spaced(number, 0 if rng.random() < 0.9 else 1)
        record = {
            "ID": str(self.next_id),
            "ENTITY_TYPE_ID": str(COMPANY),
            "ENTITY_ID": str(company_id),
            "PRESET_ID": "2" if trader else "1",
            "NAME": "ИП" if trader else "Организация",
            "ACTIVE": "Y",
            "RQ_INN": value,
            "DATE_CREATE": created,
            # Blank until the first change, as Bitrix24 sends it.
            "DATE_MODIFY": modified or "",
        }
        self.next_id += 1
        return record
