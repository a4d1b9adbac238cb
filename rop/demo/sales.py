"""Deals and leads in creation order, with their stage history and calls.

First a plan fixes every creation time and which lead becomes which deal
(compact arrays). Then deals and leads are generated in one pass in creation
order; each plans its future stage moves and calls on the timeline, which
writes them in time order.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate
from random import Random
from typing import Any

from rop.demo import catalog
from rop.demo.catalog import BY_ID, CURRENCIES, PIPELINES, SOURCE_WEIGHTS, SOURCES
from rop.demo.clients import ClientBase, pick_company
from rop.demo.clock import DAY, Clock
from rop.demo.lifecycle import LEAD_SEMANTICS, SEMANTICS, deal_path, lead_path
from rop.demo.names import company_title, deal_title, odd_product, person, phone
from rop.demo.reach import side_random
from rop.demo.staff import BOT, Roster
from rop.demo.telephony import plan_calls
from rop.demo.timeline import Timeline
from rop.demo.todo import plan_deal_todos

# The oldest tenth of deals and leads predates the stage history (a portal
# that turned history on late): only MOVED_TIME / CLOSEDATE tell when they closed.
NO_HISTORY_SHARE = 0.1
LEAD_CONVERSION = 0.3  # share of leads that become deals
REPLANNED = 0.8  # open deals whose missed close date was moved on (side generator)
SCRIPT_TITLE = "<script>alert(1)</script>"

_SOURCE_CODES = tuple(code for code, _ in SOURCES)
_SOURCE_CUMULATIVE = list(accumulate(SOURCE_WEIGHTS))
_PIPELINE_CUMULATIVE = list(accumulate(p.share for p in PIPELINES))
_CURRENCY_CUMULATIVE = list(accumulate(c[3] for c in CURRENCIES))
_DEAL_TYPES = tuple(code for code, _ in catalog.DEAL_TYPES)
# lognormal (mu, sigma) of a deal's amount in roubles, per pipeline
_AMOUNTS = {0: (11.6, 0.9), 1: (14.5, 1.0), 3: (10.8, 0.8)}
_DEAL_CALLS = (0, 1, 1, 1, 2, 2, 3)
_LEAD_CALLS = (0, 0, 1, 1, 1, 2, 3)


@dataclass
class Plan:
    deal_times: array  # deal index -> DATE_CREATE (ascending)
    lead_times: array  # lead index -> DATE_CREATE (ascending)
    lead_deal: array  # lead index -> index + 1 of the deal it became (0: none)


def make_plan(rng: Random, clock: Clock, deals: int, leads: int) -> Plan:
    """Creation times of deals and leads, and which lead turned into which deal.

    A converted lead's deal is created at the moment of conversion, so the
    lead claims the first free deal created after its conversion delay.
    """
    deal_times = array("q", (clock.at((i + rng.random()) / deals) for i in range(deals)))
    lead_times = array("q", (clock.at((i + rng.random()) / leads) for i in range(leads)))
    lead_deal = array("i", bytes(4 * leads))
    taken = bytearray(deals)
    for k in range(leads):
        if rng.random() >= LEAD_CONVERSION:
            continue
        target = lead_times[k] + 300 + int(rng.expovariate(1.0 / (4 * DAY)))
        d = bisect_left(deal_times, target)
        while d < deals and taken[d]:
            d += 1
        if d < deals:
            taken[d] = 1
            lead_deal[k] = d + 1
    return Plan(deal_times, lead_times, lead_deal)


def _pick_contact(rng: Random, existing: int) -> int:
    """A contact among the first ``existing``: half new clients, half the whole base."""
    if existing < 1:
        return 0
    if rng.random() < 0.5:
        return existing - rng.randrange(min(existing, max(1, existing // 20)))
    return rng.randint(1, existing)


class Sales:
    """Deals and leads in creation order, with their history and calls."""

    def __init__(
        self,
        rng: Random,
        clock: Clock,
        roster: Roster,
        clients: ClientBase,
        plan: Plan,
        timeline: Timeline,
    ) -> None:
        self.rng = rng
        self.side = side_random(rng)  # activities: not drawn from ``rng``
        self.clock = clock
        self.roster = roster
        self.clients = clients
        self.plan = plan
        self.timeline = timeline
        # deal index -> (LEAD_ID, owner, SOURCE_ID, contact, company) of its lead
        self.from_lead: dict[int, tuple[int, int, str, int, int]] = {}

    def run(self) -> None:
        deal_times, lead_times = self.plan.deal_times, self.plan.lead_times
        deals, leads = len(deal_times), len(lead_times)
        i = k = 0
        while i < deals or k < leads:
            # Leads first on ties: a converted lead precedes its deal.
            if k < leads and (i >= deals or lead_times[k] <= deal_times[i]):
                self.timeline.flush(lead_times[k])
                self._lead(k)
                k += 1
            else:
                self.timeline.flush(deal_times[i])
                self._deal(i)
                i += 1

    def _source(self) -> str:
        return self.rng.choices(_SOURCE_CODES, cum_weights=_SOURCE_CUMULATIVE)[0]

    def _lead(self, k: int) -> None:
        rng, clock, plan = self.rng, self.clock, self.plan
        leads = len(plan.lead_times)
        lead_id = k + 1
        created = plan.lead_times[k]
        owner = self.roster.pick(rng, "L", created)
        source = self._source()
        deal_index = plan.lead_deal[k] - 1
        converted = plan.deal_times[deal_index] if deal_index >= 0 else None
        events = lead_path(rng, clock, created, converted)
        contact = company = 0
        if converted is not None:
            if rng.random() < 0.5:
                contact = _pick_contact(rng, self.clients.contact_count_at(k / leads))
                company = self.clients.contact_company[contact - 1] if contact else 0
            self.from_lead[deal_index] = (lead_id, owner, source, contact, company)
        with_history = k >= int(leads * NO_HISTORY_SHARE)
        if with_history:
            for moment, type_id, _, status in events:
                self.timeline.lead_event(moment, lead_id, type_id, status)
        last, _, _, status = events[-1]
        semantic = LEAD_SEMANTICS[status]
        closed = semantic != "P"
        moved: int | None = last
        if not with_history and closed and rng.random() < 0.3:
            moved = None  # closed before history existed: only DATE_CLOSED remains
        end = (
            converted
            if converted is not None
            else (last if closed else min(clock.now, last + 20 * DAY))
        )
        for moment, call in plan_calls(
            rng, self.roster, owner, "LEAD", lead_id, created, end, rng.choice(_LEAD_CALLS)
        ):
            self.timeline.call(moment, call)
        modified = min(clock.now, last + rng.randrange(DAY))
        first, middle, last_name, _ = person(rng)
        number = phone(rng)
        if source in ("WEB", "WEBFORM"):
            title = "Заявка с сайта" if source == "WEB" else "CRM-форма «Обратная связь»"
        elif source in ("CALL", "CALLBACK"):
            title = f"Входящий звонок +{number}"
        else:
            title = f"{first} {last_name}: запрос КП" if rng.random() < 0.9 else company_title(rng)
        record: dict[str, Any] = {
            "ID": str(lead_id),
            "TITLE": title,
            "HONORIFIC": None,
            "NAME": first,
            "SECOND_NAME": middle if rng.random() < 0.4 else "",
            "LAST_NAME": last_name,
            "COMPANY_TITLE": company_title(rng) if rng.random() < 0.5 else "",
            "COMPANY_ID": str(company) if company else None,
            "CONTACT_ID": str(contact) if contact else None,
            "IS_RETURN_CUSTOMER": "N",
            "BIRTHDATE": "",
            "SOURCE_ID": source,
            "SOURCE_DESCRIPTION": None,
            "STATUS_ID": status,
            "STATUS_DESCRIPTION": None,
            "POST": "",
            "COMMENTS": None,
            "CURRENCY_ID": "RUB",
            "OPPORTUNITY": f"{rng.randint(0, 40) * 5000}.00" if rng.random() < 0.4 else "0.00",
            "IS_MANUAL_OPPORTUNITY": "N",
            "HAS_PHONE": "Y",
            "HAS_EMAIL": "Y" if rng.random() < 0.5 else "N",
            "HAS_IMOL": "N",
            "ASSIGNED_BY_ID": str(owner),
            "CREATED_BY_ID": str(BOT if source in ("WEB", "WEBFORM", "CALLBACK") else owner),
            "MODIFY_BY_ID": str(owner),
            "DATE_CREATE": clock.iso(created),
            "DATE_MODIFY": clock.iso(modified),
            "DATE_CLOSED": clock.iso(last) if closed else "",
            "STATUS_SEMANTIC_ID": semantic,
            "OPENED": "Y",
            "ORIGINATOR_ID": None,
            "ORIGIN_ID": None,
            "MOVED_BY_ID": str(owner) if moved is not None else None,
            "MOVED_TIME": clock.iso(moved) if moved is not None else None,
            "UTM_SOURCE": "yandex" if source == "ADVERTISING" else None,
            "UTM_MEDIUM": "cpc" if source == "ADVERTISING" else None,
            "UTM_CAMPAIGN": None,
            "UTM_CONTENT": None,
            "UTM_TERM": None,
            "LAST_ACTIVITY_TIME": clock.iso(last),
            "LAST_ACTIVITY_BY": str(owner),
        }
        self.timeline.out["leads"].add(record)

    def _client(self, share: float) -> tuple[int, int]:
        """(contact, company) of a deal without a lead; sometimes one or both are missing."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.85:
            contact = _pick_contact(rng, self.clients.contact_count_at(share))
            return contact, (self.clients.contact_company[contact - 1] if contact else 0)
        if roll < 0.95:
            return 0, pick_company(rng, self.clients.company_count_at(share))
        return 0, 0

    def _deal(self, i: int) -> None:
        rng, clock, roster = self.rng, self.clock, self.roster
        deals = len(self.plan.deal_times)
        deal_id = i + 1
        created = self.plan.deal_times[i]
        pipe = rng.choices(PIPELINES, cum_weights=_PIPELINE_CUMULATIVE)[0]
        origin = self.from_lead.pop(i, None)
        if origin is not None:
            lead_id, owner, source, contact, company = origin
            if not roster.employed(owner, created):
                owner = roster.pick(rng, pipe.group, created)
        else:
            lead_id, contact, company = 0, 0, 0
            owner = roster.pick(rng, pipe.group, created)
            source = self._source()
        if not contact and not company:
            contact, company = self._client(i / deals)
        events = deal_path(rng, clock, pipe, created)
        with_history = i >= int(deals * NO_HISTORY_SHARE)
        if with_history:
            for moment, type_id, category, stage in events:
                self.timeline.deal_event(moment, deal_id, type_id, category, stage)
        last, _, category, stage = events[-1]
        semantic = SEMANTICS[stage]
        closed = semantic != "P"
        moved: int | None = last
        if not with_history and closed and rng.random() < 0.3:
            moved = None  # closed before history existed: only CLOSEDATE remains
        mover = owner if roster.employed(owner, last) else roster.stand_in(owner)
        planned = created + rng.randint(5, 60) * DAY
        close_date = last if closed and rng.random() < 0.7 else planned
        if not closed and close_date < clock.now and self.side.random() < REPLANNED:
            # Most managers move a missed close date on; the rest stay overdue.
            close_date = clock.now + self.side.randint(1, 45) * DAY
        modified = min(clock.now, last + rng.randrange(3 * DAY))

        entity: str | None = "CONTACT" if contact else "COMPANY"
        entity_id: int | None = contact or company
        count = rng.choice(_DEAL_CALLS)
        if not entity_id:
            # No client in the CRM: at most one call from an unknown number.
            entity, entity_id, count = None, None, int(rng.random() < 0.3)
        # Calls stop soon after a deal closes, and fade out on a deal left hanging.
        end = min(clock.now, last + (3 if closed else 20) * DAY)
        for moment, call in plan_calls(rng, roster, owner, entity, entity_id, created, end, count):
            self.timeline.call(moment, call)
        for moment, todo in plan_deal_todos(
            self.side, owner, deal_id, created, last, closed, clock.now
        ):
            self.timeline.todo(moment, todo)

        if i == deals // 2:
            title = SCRIPT_TITLE  # exactly one, for the XSS tests
        elif i % 101 == 50:
            title = odd_product(i // 101)
        else:
            client = self.clients.company_titles[company - 1] if company else None
            title = deal_title(rng, client)
        currency, opportunity = self._amount(category)
        final_pipe = BY_ID[category]
        record: dict[str, Any] = {
            "ID": str(deal_id),
            "TITLE": title,
            "TYPE_ID": rng.choice(_DEAL_TYPES),
            "STAGE_ID": stage,
            "PROBABILITY": None,
            "CURRENCY_ID": currency,
            "OPPORTUNITY": opportunity,
            "IS_MANUAL_OPPORTUNITY": "Y" if opportunity not in ("", "0.00") else "N",
            "TAX_VALUE": "0.00",
            "LEAD_ID": str(lead_id) if lead_id else None,
            "COMPANY_ID": str(company),  # Bitrix24 sends "0" for "no company"
            "CONTACT_ID": str(contact) if contact else None,
            "QUOTE_ID": None,
            "BEGINDATE": clock.iso_date(created),
            "CLOSEDATE": clock.iso_date(close_date),
            "ASSIGNED_BY_ID": str(owner),
            "CREATED_BY_ID": str(owner),
            "MODIFY_BY_ID": str(mover),
            "DATE_CREATE": clock.iso(created),
            "DATE_MODIFY": clock.iso(modified),
            "OPENED": "Y",
            "CLOSED": "Y" if closed else "N",
            "COMMENTS": None,
            "ADDITIONAL_INFO": None,
            "LOCATION_ID": None,
            "CATEGORY_ID": str(category),
            "STAGE_SEMANTIC_ID": semantic,
            "IS_NEW": "Y" if stage == final_pipe.stage(final_pipe.process[0][0]) else "N",
            "IS_RECURRING": "N",
            "IS_RETURN_CUSTOMER": "Y" if category == 3 else "N",
            "IS_REPEATED_APPROACH": "N",
            "SOURCE_ID": source,
            "SOURCE_DESCRIPTION": None,
            "ORIGINATOR_ID": None,
            "ORIGIN_ID": None,
            "MOVED_BY_ID": str(mover) if moved is not None else None,
            "MOVED_TIME": clock.iso(moved) if moved is not None else None,
            "LAST_ACTIVITY_TIME": clock.iso(last),
            "LAST_ACTIVITY_BY": str(mover),
            "UTM_SOURCE": None,
            "UTM_MEDIUM": None,
            "UTM_CAMPAIGN": None,
            "UTM_CONTENT": None,
            "UTM_TERM": None,
        }
        self.timeline.out["deals"].add(record)

    def _amount(self, category: int) -> tuple[str, str]:
        """(CURRENCY_ID, OPPORTUNITY); a few deals have no amount at all."""
        rng = self.rng
        code, count, rate, _, _ = rng.choices(CURRENCIES, cum_weights=_CURRENCY_CUMULATIVE)[0]
        roll = rng.random()
        if roll < 0.03:
            return code, "0.00"
        if roll < 0.04:
            return code, ""
        mu, sigma = _AMOUNTS[category]
        value = rng.lognormvariate(mu, sigma) * count / rate
        value = round(value, -2) if value > 10_000 else round(value)
        return code, f"{max(value, 100):.2f}"
