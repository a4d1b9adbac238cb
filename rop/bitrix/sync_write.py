"""Writing fetched records into the store, counting what was added and updated."""

from __future__ import annotations

from dataclasses import dataclass

from rop.bitrix.records import Entity, Record, to_rows
from rop.store.db import Store

# Deleting a deal or lead on the portal drops its stage history with it.
HISTORY_OF: dict[str, str] = {"deals": "deal_stage_history", "leads": "lead_status_history"}


@dataclass
class Tally:
    """Rows added, updated and deleted for one entity in one run."""

    added: int = 0
    updated: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "deleted": self.deleted}


def write_records(
    store: Store, entity: Entity, portal: str, records: list[Record], tally: Tally
) -> list[int]:
    """Upsert ``records`` (call inside a transaction); returns their IDs."""
    rows = to_rows(entity, portal, records)
    ids = sorted({int(row["id"]) for row in rows})
    if not ids:
        return ids
    existing = store.scalar(
        f"SELECT count(*) FROM {entity.table} WHERE portal = ? "  # noqa: S608
        "AND id IN (SELECT unnest(?::BIGINT[]))",
        [portal, ids],
    )
    store.upsert(entity.table, rows)
    tally.updated += int(existing or 0)
    tally.added += len(ids) - int(existing or 0)
    return ids


def delete_records(store: Store, entity: Entity, portal: str, ids: list[int], tally: Tally) -> None:
    """Delete rows the portal no longer has, with their stage history (inside a transaction)."""
    if not ids:
        return
    tally.deleted += store.delete_ids(entity.table, portal, ids)
    history = HISTORY_OF.get(entity.name)
    if history:
        store.execute(
            f"DELETE FROM {history} WHERE portal = ? "  # noqa: S608
            "AND owner_id IN (SELECT unnest(?::BIGINT[]))",
            [portal, ids],
        )


def store_ids(store: Store, entity: Entity, portal: str, lo: int, hi: int) -> list[int]:
    """IDs the store holds in the range (lo, hi]."""
    rows = store.query(
        f"SELECT id FROM {entity.table} WHERE portal = ? AND id > ? AND id <= ?",  # noqa: S608
        [portal, lo, hi],
    )
    return [int(r[0]) for r in rows]


def store_count(store: Store, entity: Entity, portal: str, lo: int, hi: int) -> int:
    return int(
        store.scalar(
            f"SELECT count(*) FROM {entity.table} WHERE portal = ? AND id > ? AND id <= ?",  # noqa: S608
            [portal, lo, hi],
        )
        or 0
    )
