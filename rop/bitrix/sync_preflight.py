"""The sync's first request: one ``batch`` that checks every method and sizes the work.

It reads the webhook user, whether that user is an admin, the base currency,
each directory's first page, and per big entity its count and highest ID
(plus, on incremental runs, how many records changed). Every method the sync
uses is touched, so a bad token, a missing scope or a denied method stops the
run before anything is written. The reply's ``time.date_start`` is the
portal's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rop.bitrix.client import PAGE_SIZE, BatchReply, BitrixClient, Command
from rop.bitrix.export import Chain, count_command
from rop.bitrix.records import BIG, DIRECTORIES, Entity, Record
from rop.bitrix.sync_state import utcnow
from rop.bitrix.values import to_bool, to_utc


@dataclass
class Probe:
    """What the preflight learnt about one big entity."""

    total: int | None
    max_id: int
    high: datetime | None  # the portal's clock at preflight (UTC): the next watermark


@dataclass
class Preflight:
    user: dict[str, Any]
    is_admin: bool
    base_currency: str | None
    first_pages: dict[str, tuple[list[Record], int | None]]
    probes: dict[str, Probe]
    date_start: str | None
    change_totals: dict[str, int | None]  # incremental runs: changed records per entity


def directory_params(entity: Entity, start: int) -> dict[str, Any]:
    if entity.method == "user.get":
        return {"sort": "ID", "order": "ASC", "start": start}
    if entity.method == "department.get":
        # department.get takes filter fields as top-level keys, SORT among
        # them: a "sort" parameter is too easily read as a filter. Its page
        # parameter is documented as START (department-get.md), other list
        # methods say start: send both, a portal reads the one it knows.
        return {"START": start, "start": start}
    if entity.method == "crm.status.list":
        return {"order": {"SORT": "ASC"}, "start": start}
    return {**entity.params, "start": start}


async def preflight(client: BitrixClient, chains: dict[str, Chain]) -> Preflight:
    """Ask everything at once; sets each incremental chain's ``expected`` count."""
    commands: dict[str, Command] = {
        "me": ("user.current", {}),
        "admin": ("user.admin", {}),
        "currency": ("crm.currency.base.get", {}),
    }
    for entity in DIRECTORIES:
        commands[f"d_{entity.name}"] = (entity.method, directory_params(entity, 0))
    for entity in BIG:
        commands[f"n_{entity.name}"] = count_command(entity)
    for name, chain in chains.items():
        flt = {**chain.extra_filter, f">{chain.entity.id_field}": chain.last_id}
        commands[f"c_{name}"] = count_command(chain.entity, flt)
    reply = await client.batch(commands)
    user = reply.get("me")
    first_pages = {
        e.name: (reply.records(f"d_{e.name}"), reply.total(f"d_{e.name}")) for e in DIRECTORIES
    }
    # The portal's clock at preflight (its own dates' clock): any change
    # made after this moment carries a DATE_MODIFY at or after it.
    date_start = str(reply.time.get("date_start") or "") or None
    now = to_utc(date_start) if date_start else None
    probes: dict[str, Probe] = {}
    for entity in BIG:
        top = reply.records(f"n_{entity.name}")
        probes[entity.name] = Probe(
            total=reply.total(f"n_{entity.name}"),
            max_id=int(top[0][entity.id_field]) if top else 0,
            high=(now or utcnow()) if entity.modified_field else None,
        )
    change_totals: dict[str, int | None] = {}
    for name, chain in chains.items():
        reply.get(f"c_{name}")
        chain.expected = reply.total(f"c_{name}")
        change_totals[name] = chain.expected
    currency = reply.get("currency")
    return Preflight(
        user=user if isinstance(user, dict) else {},
        is_admin=bool(to_bool(reply.get("admin"))),
        base_currency=str(currency) if currency else None,
        first_pages=first_pages,
        probes=probes,
        date_start=date_start,
        change_totals=change_totals,
    )


async def directory_records(client: BitrixClient, pre: Preflight, entity: Entity) -> list[Record]:
    """A directory's records: the preflight's first page plus the rest, in one batch per 50 pages."""
    records, total = pre.first_pages[entity.name]
    records = list(records)
    if total is None or total <= len(records):
        return records
    starts = list(range(PAGE_SIZE, total, PAGE_SIZE))
    for first in range(0, len(starts), 50):
        chunk = starts[first : first + 50]
        reply: BatchReply = await client.batch(
            {f"s{s}": (entity.method, directory_params(entity, s)) for s in chunk}
        )
        for s in chunk:
            records.extend(reply.records(f"s{s}"))
    return records
