"""What events named and no worker has read yet: ``sync_pending`` rows per portal.

Events only name records; a burst of them for one portal becomes rows here
(each record once: the newest event wins) and one queued job (procrastinate's
queueing lock), which takes every row of its portal. A row is removed only
after the sync that read it committed, and only if no newer event touched it
meanwhile (same ``received_at``): a worker killed mid-job leaves the rows for
its retry, and an event arriving during a job is read by the next one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rop.bitrix.changes import Changes
from rop.store.db import Store

CALLS = "calls"  # voximplant CALL_IDs are strings, kept under this entity name

Taken = list[tuple[str, str, datetime]]


def put(store: Store, portal: str, changes: Changes) -> int:
    """Record ``changes`` for ``portal``; returns the rows written."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for entity, ids in changes.changed.items():
        rows += [(entity, str(i), False) for i in ids]
    for entity, ids in changes.deleted.items():
        rows += [(entity, str(i), True) for i in ids]
    rows += [(CALLS, c, False) for c in changes.calls]
    return store.upsert(
        "sync_pending",
        [
            {"portal": portal, "entity": e, "record": r, "deleted": d, "received_at": now}
            for e, r, d in rows
        ],
    )


def take(store: Store, portal: str) -> tuple[Changes, Taken]:
    """The portal's pending changes, and what to pass to :func:`done` after the sync."""
    rows = store.query(
        "SELECT entity, record, deleted, received_at FROM sync_pending WHERE portal = ? "
        "ORDER BY received_at",
        [portal],
    )
    changes = Changes()
    for entity, record, deleted, _ in rows:
        if entity == CALLS:
            changes.call(record)
        elif deleted:
            changes.delete(entity, int(record))
        else:
            changes.change(entity, int(record))
    return changes, [(e, r, at) for e, r, _, at in rows]


def done(store: Store, portal: str, taken: Taken) -> None:
    """Forget the rows a committed sync read, unless an event renewed them since."""
    with store.transaction():
        for entity, record, at in taken:
            store.execute(
                "DELETE FROM sync_pending WHERE portal = ? AND entity = ? AND record = ? "
                "AND received_at = ?",
                [portal, entity, record, at],
            )
