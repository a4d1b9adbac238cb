"""Keyset export: ``order ID ASC``, ``filter >ID``, ``start=-1``, pages chained in ``batch``.

One batch carries up to 50 pages of one entity: command ``k`` filters
``>ID = $result[k-1][49][ID]``, the last ID of the page before it, so one
request moves 2,500 rows without the COUNT that offset paging costs
(BITRIX24_API.md §2). Several entities' chains can share one batch (the
incremental sync asks every entity for its first changed pages at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rop.bitrix.client import BATCH_MAX_COMMANDS, PAGE_SIZE, BatchReply, BitrixClient, Command
from rop.bitrix.errors import BitrixError
from rop.bitrix.records import Entity, Record

# List methods whose records arrive wrapped in a map ({"items": [...]}); a
# ``$result`` reference has to step into the wrapper.
WRAPPERS: dict[str, str] = {"crm.stagehistory.list": "items", "crm.category.list": "categories"}
# voximplant.statistic.get takes FILTER / SORT / ORDER strings, not filter/order maps.
_UPPER_PARAMS = frozenset({"voximplant.statistic.get"})


def list_params(
    entity: Entity,
    extra_filter: dict[str, Any] | None = None,
    *,
    descending: bool = False,
    start: int = -1,
    select: tuple[str, ...] | None = None,
    order_field: str | None = None,
) -> dict[str, Any]:
    """The list call's parameters for ``entity``: its fixed params plus our filter and order."""
    direction = "DESC" if descending else "ASC"
    by = order_field or entity.id_field
    base_filter = dict(entity.params.get("filter") or {})
    merged = {**base_filter, **(extra_filter or {})}
    if entity.method in _UPPER_PARAMS:
        return {"FILTER": merged, "SORT": by, "ORDER": direction, "start": start}
    params: dict[str, Any] = {k: v for k, v in entity.params.items() if k != "filter"}
    if merged:
        params["filter"] = merged
    params["order"] = {by: direction}
    fields = entity.select if select is None else select
    if fields:
        params["select"] = list(fields)
    params["start"] = start
    return params


def record_id(entity: Entity, record: Record) -> int:
    return int(record[entity.id_field])


@dataclass
class Chain:
    """One keyset walk over an entity (optionally filtered), resumable by ``last_id``."""

    entity: Entity
    last_id: int = 0
    extra_filter: dict[str, Any] = field(default_factory=dict)
    select: tuple[str, ...] | None = None
    expected: int | None = None  # rows still expected, to size batches
    done: bool = False

    def _reference(self, key: str) -> str:
        wrapper = WRAPPERS.get(self.entity.method)
        inner = f"[{wrapper}]" if wrapper else ""
        return f"$result[{key}]{inner}[{PAGE_SIZE - 1}][{self.entity.id_field}]"

    def pages_wanted(self) -> int:
        """Pages for the next batch: enough for the expected rows and the short page that ends them."""
        if self.expected is None:
            return BATCH_MAX_COMMANDS
        return max(1, min(BATCH_MAX_COMMANDS, max(self.expected, 0) // PAGE_SIZE + 1))

    def commands(self, prefix: str, pages: int) -> dict[str, Command]:
        out: dict[str, Command] = {}
        previous = ""
        for n in range(pages):
            key = f"{prefix}{n}"
            after: Any = self.last_id if n == 0 else self._reference(previous)
            flt = {**self.extra_filter, f">{self.entity.id_field}": after}
            out[key] = (self.entity.method, list_params(self.entity, flt, select=self.select))
            previous = key
        return out

    def consume(self, reply: BatchReply, prefix: str, pages: int) -> list[Record]:
        """The rows a batch brought for this chain; advances ``last_id`` and ``done``."""
        rows: list[Record] = []
        last = self.last_id
        for n in range(pages):
            page = reply.records(f"{prefix}{n}")
            for record in page:
                rid = record_id(self.entity, record)
                if rid <= last:
                    # Keyset order broke (a reference was not resolved): copying
                    # on would duplicate or skip rows, so stop with the reason.
                    raise BitrixError(
                        self.entity.method,
                        "",
                        f"keyset paging returned ID {rid} after ID {last}",
                        200,
                    )
                last = rid
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                self.done = True
                break
        self.last_id = last
        if self.expected is not None:
            self.expected -= len(rows)
        return rows


async def step_chains(client: BitrixClient, chains: list[tuple[Chain, int]]) -> list[list[Record]]:
    """One batch advancing several chains by the given number of pages each."""
    commands: dict[str, Command] = {}
    for index, (chain, pages) in enumerate(chains):
        commands.update(chain.commands(f"k{index}_", pages))
    reply = await client.batch(commands)
    return [chain.consume(reply, f"k{i}_", pages) for i, (chain, pages) in enumerate(chains)]


async def step(client: BitrixClient, chain: Chain) -> list[Record]:
    """One batch of one chain."""
    return (await step_chains(client, [(chain, chain.pages_wanted())]))[0]


def count_command(entity: Entity, extra_filter: dict[str, Any] | None = None) -> Command:
    """A command whose ``total`` counts the matching records; its first row has the highest ID."""
    select = (entity.id_field,) if entity.select else None
    return (
        entity.method,
        list_params(entity, extra_filter, descending=True, start=0, select=select),
    )
