"""The client base: companies and contacts, written before the deals that refer to them.

Records are created evenly over the window with IDs growing in time, so "the
clients that exist at a moment" is simply an ID prefix: a deal created at
share ``x`` of the window may refer to companies 1..floor(x * companies).
Only compact arrays are kept for later (a contact's company, a company's
title), never the records.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

from rop.demo.catalog import SOURCE_WEIGHTS, SOURCES
from rop.demo.clock import DAY, Clock
from rop.demo.jsonfile import ArrayWriter
from rop.demo.names import INDUSTRIES, POSTS, company_title, odd_company, person
from rop.demo.reach import Reach
from rop.demo.requisites import Requisites
from rop.demo.staff import ADMIN, Roster

MY_COMPANY = 1  # IS_MY_COMPANY "Y": the seller itself, never a client
# Every ninth company is a prospect nobody has sold to: no contacts, no deals.
PROSPECT_EVERY = 9
_SOURCE_CODES = tuple(code for code, _ in SOURCES)


@dataclass
class ClientBase:
    companies: int
    contacts: int
    contact_company: array  # contact ID - 1 -> company ID (0: a private person)
    company_titles: list[str]  # company ID - 1 -> TITLE

    def company_count_at(self, share: float) -> int:
        """How many companies surely exist once ``share`` of the window has passed."""
        return int(share * self.companies)

    def contact_count_at(self, share: float) -> int:
        return int(share * self.contacts)


def pick_company(rng: Random, existing: int) -> int:
    """A client company among the first ``existing`` ones (0 if there is none yet)."""
    if existing < 2:
        return 0
    company = rng.randint(2, existing)
    if company % PROSPECT_EVERY == 0:
        company -= 1
    return company


def _modified(rng: Random, clock: Clock, created: int) -> int:
    return min(clock.now, clock.working(created + rng.randrange(60 * DAY), rng.randrange(3600)))


def write_clients(
    folder: Path, rng: Random, clock: Clock, roster: Roster, companies: int, contacts: int
) -> ClientBase:
    base = ClientBase(companies, contacts, array("i"), [])
    company_owner = array("i")
    reach = Reach(rng)
    requisites = Requisites(rng)
    out = ArrayWriter(folder / "crm.company.list.json")
    rq_out = ArrayWriter(folder / "crm.requisite.list.json")
    try:
        for index in range(companies):
            company_id = index + 1
            created = clock.at((index + rng.random()) / companies)
            mine = company_id == MY_COMPANY
            owner = ADMIN if mine else roster.pick(rng, rng.choice("0003"), created)
            if mine:
                title = "ООО «Вектор Трейд»"
            elif company_id % 50 == 7:
                title = odd_company(company_id // 50)
            else:
                title = company_title(rng)
            base.company_titles.append(title)
            company_owner.append(owner)
            record = _company(rng, clock, company_id, title, owner, created, mine)
            twin = not mine and reach.twin()
            record.update(reach.fields(record["HAS_EMAIL"] == "Y", f"info{company_id}", twin))
            out.add(record)
            if not mine:
                # A third of them edited since (at the company's last change).
                changed = record["DATE_MODIFY"] if company_id % 3 == 0 else None
                requisite = requisites.for_company(company_id, record["DATE_CREATE"], changed)
                if requisite is not None:
                    rq_out.add(requisite)
        out.close()
        rq_out.close()
    except BaseException:
        out.abort()
        rq_out.abort()
        raise
    out = ArrayWriter(folder / "crm.contact.list.json")
    try:
        for index in range(contacts):
            share = (index + rng.random()) / contacts
            created = clock.at(share)
            company = 0
            if rng.random() < 0.8:
                company = pick_company(rng, base.company_count_at(share))
            owner = company_owner[company - 1] if company else 0
            if not owner or not roster.employed(owner, created):
                owner = roster.pick(rng, "0", created)
            base.contact_company.append(company)
            record = _contact(rng, clock, index + 1, company, owner, created)
            twin = reach.twin()
            record.update(reach.fields(record["HAS_EMAIL"] == "Y", f"c{index + 1}", twin))
            out.add(record)
        out.close()
    except BaseException:
        out.abort()
        raise
    return base


def _company(
    rng: Random, clock: Clock, company_id: int, title: str, owner: int, created: int, mine: bool
) -> dict[str, Any]:
    modified = _modified(rng, clock, created)
    return {
        "ID": str(company_id),
        "COMPANY_TYPE": "CUSTOMER"
        if mine
        else rng.choice(("CUSTOMER", "CUSTOMER", "PARTNER", "OTHER")),
        "TITLE": title,
        "LEAD_ID": None,
        "HAS_PHONE": "Y",
        "HAS_EMAIL": "Y" if rng.random() < 0.7 else "N",
        "HAS_IMOL": "N",
        "ASSIGNED_BY_ID": str(owner),
        "CREATED_BY_ID": str(owner),
        "MODIFY_BY_ID": str(owner),
        "INDUSTRY": rng.choice(INDUSTRIES),
        "REVENUE": f"{rng.randint(1, 500) * 1_000_000}.00",
        "CURRENCY_ID": "RUB",
        "EMPLOYEES": rng.choice(("EMPLOYEES_1", "EMPLOYEES_2", "EMPLOYEES_3", "EMPLOYEES_4")),
        "COMMENTS": None,
        "DATE_CREATE": clock.iso(created),
        "DATE_MODIFY": clock.iso(modified),
        "OPENED": "Y",
        "IS_MY_COMPANY": "Y" if mine else "N",
        "ORIGINATOR_ID": None,
        "ORIGIN_ID": None,
        "LAST_ACTIVITY_TIME": clock.iso(modified),
        "LAST_ACTIVITY_BY": str(owner),
    }


def _contact(
    rng: Random, clock: Clock, contact_id: int, company: int, owner: int, created: int
) -> dict[str, Any]:
    first, middle, last, _ = person(rng)
    modified = _modified(rng, clock, created)
    return {
        "ID": str(contact_id),
        "HONORIFIC": None,
        "NAME": first,
        "SECOND_NAME": middle if rng.random() < 0.6 else "",
        "LAST_NAME": last,
        "BIRTHDATE": "",
        "TYPE_ID": "CLIENT" if rng.random() < 0.85 else "PARTNER",
        "SOURCE_ID": rng.choices(_SOURCE_CODES, SOURCE_WEIGHTS)[0],
        "SOURCE_DESCRIPTION": None,
        "POST": rng.choice(POSTS) if company else "",
        "COMMENTS": None,
        "OPENED": "Y",
        "EXPORT": "Y",
        "HAS_PHONE": "Y",
        "HAS_EMAIL": "Y" if rng.random() < 0.6 else "N",
        "HAS_IMOL": "N",
        "ASSIGNED_BY_ID": str(owner),
        "CREATED_BY_ID": str(owner),
        "MODIFY_BY_ID": str(owner),
        "DATE_CREATE": clock.iso(created),
        "DATE_MODIFY": clock.iso(modified),
        "COMPANY_ID": str(company) if company else None,
        "LEAD_ID": None,
        "ORIGINATOR_ID": None,
        "ORIGIN_ID": None,
        "LAST_ACTIVITY_TIME": clock.iso(modified),
        "LAST_ACTIVITY_BY": str(owner),
    }
