"""Finding records the portal deleted, at the cost of a few counts.

Bitrix24 has no "deleted" flag: a deleted deal just stops being listed
(BITRIX24_API.md §10). Listing every ID each run would cost as many requests
as a full copy, so we compare counts instead. After the change pass the store
holds every record the portal had at the start of the run (IDs up to the
run's highest ID), so for any ID range, store count == portal count means
the range is exact. A range that differs is split and counted again (ten
sub-ranges per level, 50 counts per batch request); a small differing range
is listed in full with a keyset chain: its records are upserted fresh and
store rows the listing lacks are deleted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from rop.bitrix.client import BATCH_MAX_COMMANDS, BitrixClient, Command
from rop.bitrix.export import Chain, count_command, step
from rop.bitrix.records import Entity, Record

# A differing range with at most this many records is listed outright: one
# batch of 50 chained pages lists 2,500 records.
LIST_RECORDS = 2_500
# A differing bigger range is split into this many sub-ranges per level.
SPLIT = 10

Range = tuple[int, int, int | None]  # (lo exclusive, hi inclusive, portal count)
StoreCount = Callable[[int, int], int]
Listed = Callable[[list[Record]], None]  # upsert one batch of listed records
Finished = Callable[[int, int, set[int]], None]  # (lo, hi, IDs the portal has there)


async def _counts(
    client: BitrixClient, entity: Entity, spans: list[tuple[int, int]]
) -> list[Range]:
    out: list[Range] = []
    for first in range(0, len(spans), BATCH_MAX_COMMANDS):
        chunk = spans[first : first + BATCH_MAX_COMMANDS]
        commands: dict[str, Command] = {}
        for n, (lo, hi) in enumerate(chunk):
            key = entity.id_field
            commands[f"r{n}"] = count_command(entity, {f">{key}": lo, f"<={key}": hi})
        reply = await client.batch(commands)
        for n, (lo, hi) in enumerate(chunk):
            reply.get(f"r{n}")  # raises the command's own error, if any
            out.append((lo, hi, reply.total(f"r{n}")))
    return out


async def _list_range(
    client: BitrixClient,
    entity: Entity,
    lo: int,
    hi: int,
    expected: int | None,
    listed: Listed,
    finished: Finished,
) -> None:
    chain = Chain(entity, last_id=lo, extra_filter={f"<={entity.id_field}": hi}, expected=expected)
    seen: set[int] = set()
    while not chain.done:
        records = await step(client, chain)
        seen.update(int(r[entity.id_field]) for r in records)
        listed(records)
    finished(lo, hi, seen)


async def reconcile(
    client: BitrixClient,
    entity: Entity,
    top: Range,
    store_count: StoreCount,
    listed: Listed,
    finished: Finished,
) -> int:
    """Make the store's ID set in ``top`` equal the portal's; returns ranges listed."""
    pending: list[Range] = [top]
    listed_ranges = 0
    while pending:
        split: list[tuple[int, int]] = []
        for lo, hi, portal_count in pending:
            if hi <= lo:
                continue
            if portal_count is not None and store_count(lo, hi) == portal_count:
                continue
            small = portal_count is None or portal_count <= LIST_RECORDS or hi - lo <= LIST_RECORDS
            if small:
                await _list_range(client, entity, lo, hi, portal_count, listed, finished)
                listed_ranges += 1
                continue
            width = math.ceil((hi - lo) / SPLIT)
            split.extend((a, min(a + width, hi)) for a in range(lo, hi, width))
        pending = await _counts(client, entity, split) if split else []
    return listed_ranges
