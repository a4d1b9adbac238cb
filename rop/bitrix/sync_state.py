"""What the sync remembers in the store: per-entity watermarks and the run log.

``sync_state`` rows are written in the same transaction as the rows they
describe, so a watermark never runs ahead of the data (a crash or Ctrl-C
resumes where the last commit left off). ``sync_runs`` gives the report its
"data as of" line.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rop.bitrix.ratelimit import LeakyBucket
from rop.store.db import Store, StoreError
from rop.store.portal_lock import portal_lock


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class EntityState:
    modified_watermark: datetime | None = None  # changes at/after this are re-read
    id_watermark: int | None = None  # rows up to this ID are committed
    full_done: bool = False  # the first full copy finished


def load_state(store: Store, portal: str, entity: str) -> EntityState:
    rows = store.query(
        "SELECT modified_watermark, id_watermark, full_done FROM sync_state "
        "WHERE portal = ? AND entity = ?",
        [portal, entity],
    )
    if not rows:
        return EntityState()
    modified, last_id, done = rows[0]
    return EntityState(modified, last_id, bool(done))


def save_state(store: Store, portal: str, entity: str, state: EntityState) -> None:
    store.upsert(
        "sync_state",
        [
            {
                "portal": portal,
                "entity": entity,
                "modified_watermark": state.modified_watermark,
                "id_watermark": state.id_watermark,
                "full_done": state.full_done,
                "updated_at": utcnow(),
            }
        ],
    )


def stamp_clock(store: Store, portal: str, clock: datetime | None) -> None:
    """Remember the portal's clock at the end of a run: the report's "today"
    (rop.report.portal.portal_today) is that day in the portal's zone."""
    if clock is not None:
        with store.transaction():
            store.execute("UPDATE portals SET clock = ? WHERE portal = ?", [clock, portal])


def reset_state(store: Store, portal: str) -> None:
    """Forget every watermark of ``portal`` (a requested full sync)."""
    store.execute("DELETE FROM sync_state WHERE portal = ?", [portal])


@contextlib.contextmanager
def held(store: Store, portal: str, bucket: LeakyBucket) -> Iterator[None]:
    """The portal's lock for a sync (rop.store.portal_lock), taken before its run is
    logged and its first request, and ``bucket`` started from the portal's limit
    as the last run left it (:func:`carry_over`); one still busy after the wait
    is a SyncError."""
    from rop.bitrix.sync import SyncError

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(portal_lock(store, portal))
        except StoreError as exc:  # PortalBusy, or the store went away
            raise SyncError(str(exc)) from None
        carry_over(store, portal, bucket)
        yield


def carry_over(store: Store, portal: str, bucket: LeakyBucket) -> None:
    """PostgreSQL: a run starts from the portal's limit as the last run left it.

    Each run has a client and a bucket of its own, and in server mode the
    portal's runs follow one another on any worker: the next one, let in by
    the lock as the last ends, would otherwise burst on a portal bucket the
    last left full. Its last commit (its last watermark, or the run's end) is
    when it last spent the limit; the bucket is taken as full then. DuckDB: one
    process, runs seldom back to back; its behaviour stays as it was.
    """
    if store.dialect.name != "postgres":
        return
    row = store.query(
        "SELECT (SELECT max(finished_at) FROM sync_runs WHERE portal = ?), "
        "(SELECT max(updated_at) FROM sync_state WHERE portal = ?)",
        [portal, portal],
    )
    moments = [m for m in (row[0] if row else ()) if m is not None]
    if moments:
        bucket.spent(max(0.0, (utcnow() - max(moments)).total_seconds()))


def start_run(store: Store, portal: str, kind: str, started_at: datetime) -> int:
    """Log a run as 'running'; runs left 'running' by a killed process become 'interrupted'."""
    with store.transaction():
        store.execute(
            "UPDATE sync_runs SET outcome = 'interrupted', "
            "message = 'the sync process stopped before it finished' "
            "WHERE portal = ? AND outcome = 'running'",
            [portal],
        )
        run_id = int(
            store.scalar(
                "SELECT coalesce(max(id), 0) + 1 FROM sync_runs WHERE portal = ?", [portal]
            )
        )
        store.upsert(
            "sync_runs",
            [
                {
                    "portal": portal,
                    "id": run_id,
                    "kind": kind,
                    "started_at": started_at,
                    "outcome": "running",
                    "requests": 0,
                    "counts": "{}",
                }
            ],
        )
    return run_id


def finish_run(
    store: Store,
    portal: str,
    run_id: int,
    *,
    outcome: str,
    message: str | None,
    requests: int,
    counts: dict[str, Any],
) -> None:
    store.execute(
        "UPDATE sync_runs SET finished_at = ?, outcome = ?, message = ?, requests = ?, counts = ? "
        "WHERE portal = ? AND id = ?",
        [utcnow(), outcome, message, requests, json.dumps(counts), portal, run_id],
    )


def last_run(store: Store, portal: str | None = None) -> dict[str, Any] | None:
    """The latest finished-or-running run (of ``portal``, or of any portal)."""
    where, params = ("WHERE portal = ?", [portal]) if portal else ("", [])
    rows = store.query_dicts(
        f"SELECT * FROM sync_runs {where} ORDER BY started_at DESC LIMIT 1",  # noqa: S608
        params,
    )
    return rows[0] if rows else None
