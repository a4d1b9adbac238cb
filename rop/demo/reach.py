"""Clients' phones and e-mails (PHONE and EMAIL multi-fields), with the data
problems a real portal has: a few clients with neither, and a few contacts
entered twice under one number written another way (docs/DEMO.md).

Drawn from a side generator of their own, so adding them changed no other
value of a portal generated with the same seed.
"""

from __future__ import annotations

from array import array
from random import Random
from typing import Any

NO_PHONE = 0.08  # share of clients whose card has no phone
TWIN = 0.02  # share of clients that repeat an earlier client's number
_DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru")


def side_random(rng: Random) -> Random:
    """A generator seeded from ``rng``'s state without drawing from it."""
    # A str seed goes through SHA-512: the same in every process (hash() is not).
    return Random(repr(rng.getstate()[1][:16]))


def written(number: int, style: int) -> str:
    """One Russian mobile number ("79123456789") the ways people type it."""
    d = str(number)
    if style == 0:
        return f"+{d}"
    if style == 1:
        return f"8 ({d[1:4]}) {d[4:7]}-{d[7:9]}-{d[9:]}"
    if style == 2:
        return f"+7 {d[1:4]} {d[4:7]} {d[7:9]} {d[9:]}"
    return f"8{d[1:]}"


class Reach:
    """Phones and e-mails for clients in ID order; remembers numbers for twins."""

    def __init__(self, rng: Random) -> None:
        self.rng = side_random(rng)
        self.numbers = array("q")  # every number given so far

    def fields(self, has_email: bool, login: str, twin: bool = False) -> dict[str, Any]:
        rng = self.rng
        out: dict[str, Any] = {}
        if twin and self.numbers:
            # An earlier client's number: companies and contacts share the list, so a
            # contact may repeat a company's (normal, not counted) or another contact's.
            number = self.numbers[rng.randrange(len(self.numbers))]
        elif rng.random() < NO_PHONE:
            number = 0
        else:
            number = 79_000_000_000 + rng.randrange(1_000_000_000)
        if number:
            self.numbers.append(number)
            out["PHONE"] = [
                {"ID": str(len(self.numbers)), "VALUE_TYPE": "WORK", "TYPE_ID": "PHONE",
                 "VALUE": written(number, rng.randrange(4))}
            ]  # fmt: skip
        out["HAS_PHONE"] = "Y" if number else "N"
        if has_email:
            out["EMAIL"] = [
                {"ID": str(len(self.numbers) + 1), "VALUE_TYPE": "WORK", "TYPE_ID": "EMAIL",
                 "VALUE": f"{login}@{rng.choice(_DOMAINS)}"}
            ]  # fmt: skip
        return out

    def twin(self) -> bool:
        return self.rng.random() < TWIN
