"""Writing fetched records into the store, counting what was added and updated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def compare_rows(
    store: Store, table: str, rows: Sequence[dict[str, Any]], watch: Sequence[str] = ()
) -> tuple[int, int]:
    """(rows already in ``table``, of those the ones that would change), by primary key.

    ``watch`` names the columns that say a record changed (DATE_MODIFY);
    empty compares every column the rows carry. One query for the whole
    batch: the rows go in as Arrow with the table's own types, so a value
    compares equal exactly when the upsert would store the same value.
    """
    if not rows:
        return 0, 0
    spec = store.table(table)
    # A watched column the table lacks would make every row look changed or
    # fail: compare content then, which is stricter but still honest.
    watch = [c for c in watch if c in spec.columns]
    # With a watched column only the key and it travel: cheaper than the rows.
    columns = [c for c in spec.columns if c in spec.key or (c in watch if watch else c in rows[0])]
    unique: dict[tuple[Any, ...], Sequence[Any]] = {}
    for row in rows:
        unique[tuple(row.get(k) for k in spec.key)] = [row.get(c) for c in columns]
    values = list(zip(*unique.values(), strict=True))
    data = {c: list(values[i]) for i, c in enumerate(columns)}
    compared = list(watch) or [c for c in columns if c not in spec.key]
    on = " AND ".join(f"t.{k} = i.{k}" for k in spec.key)
    differs = " OR ".join(f"t.{c} IS DISTINCT FROM i.{c}" for c in compared) or "false"
    with store.staged("_rop_incoming", spec, data):
        found = store.query(
            f"SELECT count(*), count(*) FILTER (WHERE {differs}) "  # noqa: S608
            f"FROM _rop_incoming i JOIN {table} t ON {on}"
        )
    existing, changed = found[0]
    return int(existing or 0), int(changed or 0)


def modified_column(entity: Entity) -> tuple[str, ...]:
    """The store column that tells a changed record (none: compare content)."""
    return (entity.modified_field.lower(),) if entity.modified_field else ()


def write_records(
    store: Store, entity: Entity, portal: str, records: list[Record], tally: Tally
) -> list[int]:
    """Upsert ``records`` (call inside a transaction); returns their IDs.

    "Updated" counts records the store had whose modification time (or, for
    entities without one, content) differs: the overlap and catch-up passes
    re-read unchanged records, which must not show as updates. Every row is
    still written, so a ``--full`` run repairs a change that did not touch
    DATE_MODIFY.
    """
    rows = to_rows(entity, portal, records)
    ids = sorted({int(row["id"]) for row in rows})
    if not ids:
        return ids
    existing, changed = compare_rows(store, entity.table, rows, modified_column(entity))
    store.upsert(entity.table, rows)
    tally.updated += changed
    tally.added += len(ids) - existing
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
            "AND owner_id IN (SELECT unnest(CAST(? AS BIGINT[])))",
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
