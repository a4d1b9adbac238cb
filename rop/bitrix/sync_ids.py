"""The by-ID sync: re-read the records events named, and drop the ones gone.

Events (:mod:`rop.bitrix.events`) only say *which* record changed; this
fetches those records, 50 IDs per list command (``@ID``, bounded by
``>=ID``/``<=ID`` so the portal can use its ID index), up to 50 commands per
``batch``, with the stage history of the deals and leads among them
(``crm.stagehistory.list`` filtered by ``OWNER_ID``, keyset-chained when a
record has more than a page of it). Rows go through the same
:func:`rop.bitrix.sync_write.write_records` as every other sync, so
``Store.upsert`` stays the one write path.

A record an event named that the list no longer returns is deleted (with its
stage history): either it was deleted, or the event came after a deletion
the portal already made. Each batch's rows and deletions commit together, so
a failure leaves the store as the last whole batch left it. A run is logged
in ``sync_runs`` (kind ``events``) like the other runs, which also moves the
data version the report caches key on (rop.web.cache, rop.metrics.cache).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from rop.bitrix.changes import Changes
from rop.bitrix.client import BATCH_MAX_COMMANDS, BitrixClient, Command, RetryPolicy, TokenProvider
from rop.bitrix.errors import BitrixError
from rop.bitrix.export import Chain, list_params, record_id, step_chains
from rop.bitrix.records import (
    ACTIVITIES,
    CALLS,
    COMPANIES,
    CONTACTS,
    DEAL_HISTORY,
    DEALS,
    LEAD_HISTORY,
    LEADS,
    Entity,
    Record,
)
from rop.bitrix.sync import SyncError, SyncResult, run_with_client
from rop.bitrix.sync_state import finish_run, held, start_run, utcnow
from rop.bitrix.sync_write import Tally, delete_records, write_records
from rop.store.db import Store, StoreError
from rop.store.facts import refresh_facts

# IDs per list command: a page holds 50 rows, so 50 IDs always fit one page.
ID_CHUNK = 50
ENTITIES: dict[str, Entity] = {
    e.name: e for e in (DEALS, LEADS, COMPANIES, CONTACTS, ACTIVITIES)
}  # fmt: skip
HISTORY: dict[str, Entity] = {"deals": DEAL_HISTORY, "leads": LEAD_HISTORY}
RUN_KIND = "events"


@dataclass
class _Unit:
    """One list command of a batch: some IDs of one entity (or CALL_IDs)."""

    entity: Entity
    ids: list[int] = field(default_factory=list)  # asked for (not for calls)
    call_ids: list[str] = field(default_factory=list)
    history: Chain | None = None  # the stage history of these IDs
    history_pages: int = 1  # its pages in the first batch (chained, see batches())

    def commands(self, key: str) -> dict[str, Command]:
        if self.call_ids:
            flt: dict[str, Any] = {"CALL_ID": self.call_ids}
        else:
            flt = {"@ID": self.ids, ">=ID": min(self.ids), "<=ID": max(self.ids)}
        out: dict[str, Command] = {key: (self.entity.method, list_params(self.entity, flt))}
        if self.history is not None:
            out.update(self.history.commands(key + "h", self.history_pages))
        return out

    @property
    def size(self) -> int:
        return 1 + (self.history_pages if self.history is not None else 0)


def plan(changes: Changes) -> list[_Unit]:
    """The list commands that re-read everything ``changes`` names."""
    units: list[_Unit] = []
    for name, ids in sorted(changes.changed.items()):
        entity = ENTITIES[name]
        ordered = sorted(ids)
        for start in range(0, len(ordered), ID_CHUNK):
            chunk = ordered[start : start + ID_CHUNK]
            history = HISTORY.get(name)
            chain = Chain(history, 0, {"OWNER_ID": chunk}) if history is not None else None
            units.append(_Unit(entity, chunk, history=chain))
    calls = sorted(changes.calls)
    for start in range(0, len(calls), ID_CHUNK):
        units.append(_Unit(CALLS, call_ids=calls[start : start + ID_CHUNK]))
    return units


def batches(units: list[_Unit]) -> list[list[_Unit]]:
    """Units packed into batches of at most 50 commands.

    A batch's spare commands go to its history chains as further chained
    pages: a deal has a few history rows, so 50 deals' history is a few
    pages, and asking them in the same request saves a second one.
    """
    out: list[list[_Unit]] = []
    current: list[_Unit] = []
    used = 0
    for unit in units:
        if used + unit.size > BATCH_MAX_COMMANDS:
            out.append(current)
            current, used = [], 0
        current.append(unit)
        used += unit.size
    if current:
        out.append(current)
    for group in out:
        chains = [u for u in group if u.history is not None]
        spare = BATCH_MAX_COMMANDS - sum(u.size for u in group)
        for unit in chains:
            unit.history_pages += spare // len(chains)
    return out


@dataclass
class _Fetched:
    entity: Entity
    asked: list[int]
    records: list[Record]
    history: list[Record]


async def _fetch(client: BitrixClient, units: list[_Unit]) -> list[_Fetched]:
    commands: dict[str, Command] = {}
    for n, unit in enumerate(units):
        commands.update(unit.commands(f"u{n}"))
    reply = await client.batch(commands)
    out: list[_Fetched] = []
    for n, unit in enumerate(units):
        records = reply.records(f"u{n}")
        if unit.ids:
            asked = set(unit.ids)
            # A portal that ignored the ID filter must not make us write
            # records nobody named (or miss deletions): keep to the asked IDs.
            records = [r for r in records if record_id(unit.entity, r) in asked]
        history: list[Record] = []
        if unit.history is not None:
            history = unit.history.consume(reply, f"u{n}h", unit.history_pages)
        out.append(_Fetched(unit.entity, unit.ids, records, history))
    # Records with more than a page of history: their chains continue
    # together, sharing each batch.
    pending = [(f, u.history) for f, u in zip(out, units, strict=True) if u.history is not None]
    while True:
        pending = [(f, c) for f, c in pending if not c.done]
        if not pending:
            return out
        pages = max(1, BATCH_MAX_COMMANDS // len(pending))
        chunk = pending[:BATCH_MAX_COMMANDS]
        got = await step_chains(client, [(c, pages) for _, c in chunk])
        for (item, _), rows in zip(chunk, got, strict=True):
            item.history.extend(rows)


class _Run:
    def __init__(self, store: Store, client: BitrixClient, portal: str) -> None:
        self.store = store
        self.client = client
        self.portal = portal
        self.tallies: dict[str, Tally] = {}

    def tally(self, name: str) -> Tally:
        return self.tallies.setdefault(name, Tally())

    def _delete(self, entity: Entity, ids: list[int]) -> None:
        delete_records(self.store, entity, self.portal, ids, self.tally(entity.name))

    def write(self, fetched: list[_Fetched], deleted: dict[str, set[int]]) -> None:
        """One batch's rows, history and deletions, all or nothing."""
        with self.store.transaction():
            for name, ids in sorted(deleted.items()):
                if ids:
                    self._delete(ENTITIES[name], sorted(ids))
            for item in fetched:
                entity = item.entity
                write_records(
                    self.store, entity, self.portal, item.records, self.tally(entity.name)
                )
                if item.asked:
                    seen = {record_id(entity, r) for r in item.records}
                    self._delete(entity, [i for i in item.asked if i not in seen])
                history = HISTORY.get(entity.name)
                if history is not None and item.history:
                    seen_owners = {record_id(entity, r) for r in item.records}
                    # History of a record deleted meanwhile would outlive it.
                    rows = [h for h in item.history if int(h.get("OWNER_ID") or 0) in seen_owners]
                    write_records(self.store, history, self.portal, rows, self.tally(history.name))

    async def run(self, changes: Changes) -> None:
        groups = batches(plan(changes))
        deleted = changes.deleted
        # Writes are small (at most 2,500 records a batch) and nothing else
        # runs meanwhile: they stay on this thread, which owns the cursor.
        if not groups and any(deleted.values()):
            self.write([], deleted)
        for n, group in enumerate(groups):
            fetched = await _fetch(self.client, group)
            self.write(fetched, deleted if n == 0 else {})


async def sync_changes(
    store: Store, client: BitrixClient, portal: str, changes: Changes
) -> SyncResult:
    """Re-read what ``changes`` names through ``client`` into ``portal``'s rows.

    Raises :class:`SyncError` naming the method and the cause; the run is
    logged in ``sync_runs`` either way.
    """
    started = utcnow()
    before = client.requests
    try:
        run_id = start_run(store, portal, RUN_KIND, started)
    except StoreError as exc:
        raise SyncError(str(exc)) from None
    job = _Run(store, client, portal)
    outcome, message = "failed", None
    try:
        await job.run(changes)
        # The stored facts of the records this run wrote (rop.store.facts).
        refresh_facts(store, portal)
        outcome = "ok"
    except (BitrixError, StoreError) as exc:
        message = str(exc)
        raise SyncError(message) from None
    except (TypeError, KeyError, ValueError, IndexError) as exc:
        message = f"unexpected answer from {portal}: {exc!r}"
        raise SyncError(message) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        outcome, message = "interrupted", "stopped"
        raise
    except Exception as exc:  # the database's own errors (DuckDB): named, logged
        message = f"{type(exc).__name__}: {exc}"
        raise SyncError(message) from None
    finally:
        counts = {k: t.as_dict() for k, t in job.tallies.items()}
        with contextlib.suppress(Exception):
            finish_run(
                store,
                portal,
                run_id,
                outcome=outcome,
                message=message,
                requests=client.requests - before,
                counts=counts,
            )
    return SyncResult(
        portal=portal,
        kind=RUN_KIND,
        run_id=run_id,
        started_at=started,
        finished_at=utcnow(),
        requests=client.requests - before,
        counts=counts,
    )


def run_sync_changes(
    store: Store,
    base_url: str,
    changes: Changes,
    *,
    portal: str | None = None,
    token_provider: TokenProvider | None = None,
    rate_per_second: float = 2.0,
    rate_burst: int = 50,
    retry: RetryPolicy | None = None,
) -> SyncResult:
    """:func:`sync_changes` from a thread with no event loop (the event worker).

    ``base_url`` is a webhook URL, or with ``token_provider`` the app's REST
    endpoint ``https://PORTAL/rest/``; ``portal`` is the store's key (default:
    the URL's host, as :func:`rop.bitrix.sync.run_sync` uses).
    """

    async def job(client: BitrixClient, host: str) -> SyncResult:
        # PostgreSQL: one sync of a portal at a time.
        with held(store, portal or host, client.bucket):
            return await sync_changes(store, client, portal or host, changes)

    return run_with_client(
        base_url,
        job,
        token_provider=token_provider,
        rate_per_second=rate_per_second,
        rate_burst=rate_burst,
        retry=retry,
    )
