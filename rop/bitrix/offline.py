"""Offline events: where Bitrix24 cannot reach us, we fetch the changes from its queue.

Bound with ``event_type=offline``, events wait in the portal's queue (the
latest state per record: 1,000 edits are one entry). Safe mode
(BITRIX24_APP.md §4): ``event.offline.get`` with ``clear=0`` reserves a batch
under a ``process_id``; after the by-ID sync stored it, ``event.offline.clear``
with those entries' IDs removes them; if the sync failed,
``event.offline.error`` marks them, so they are not lost and not retried
forever. An entry whose data names no record (its shape is not documented)
is cleared too and counted in ``unknown``: the caller then runs the periodic
re-scan, which reads every change anyway.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from rop.bitrix.changes import Changes
from rop.bitrix.client import BitrixClient, RetryPolicy, TokenProvider
from rop.bitrix.errors import BitrixError
from rop.bitrix.events import data_changes
from rop.bitrix.sync import SyncError, SyncResult, run_with_client
from rop.bitrix.sync_ids import sync_changes
from rop.bitrix.sync_state import held
from rop.store.db import Store

# event.offline.get's page: its default (50) and the by-ID sync's batch size agree.
LIMIT = 50


@dataclass
class OfflineResult:
    events: int = 0  # queue entries processed
    unknown: int = 0  # entries naming no record: run the re-scan
    requests: int = 0
    runs: list[SyncResult] = field(default_factory=list)


def entry_changes(entry: dict[str, Any]) -> Changes | None:
    """One queue entry -> the records it names; None if it names none."""
    name = str(entry.get("EVENT_NAME") or "").strip().upper()
    data = entry.get("EVENT_DATA")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    entity, rid, deleted, call, activity = data_changes(name, data)
    out = Changes()
    if entity is not None and rid is not None:
        (out.delete if deleted else out.change)(entity, rid)
    if call is not None:
        out.call(call)
    if activity is not None:
        out.change("activities", activity)
    return out or None


async def drain_offline(
    store: Store,
    client: BitrixClient,
    portal: str,
    *,
    limit: int = LIMIT,
    max_rounds: int = 100,
) -> OfflineResult:
    """Take the portal's offline queue round by round until it is empty."""
    result = OfflineResult()
    before = client.requests
    for _ in range(max_rounds):
        reply = await client.call("event.offline.get", {"clear": 0, "limit": limit})
        body = reply.result if isinstance(reply.result, dict) else {}
        entries = [e for e in (body.get("events") or []) if isinstance(e, dict)]
        process = body.get("process_id")
        if not entries:
            break
        if not process:
            raise SyncError("event.offline.get: the answer has no process_id")
        changes = Changes()
        for entry in entries:
            named = entry_changes(entry)
            if named is None:
                result.unknown += 1
            else:
                changes.merge(named)
        ids = [entry["ID"] for entry in entries if entry.get("ID") is not None]
        try:
            if changes:
                result.runs.append(await sync_changes(store, client, portal, changes))
        except SyncError:
            messages = [e["MESSAGE_ID"] for e in entries if e.get("MESSAGE_ID") is not None]
            # The entries stay reserved if this fails too; the sync's own error matters more.
            with contextlib.suppress(BitrixError):
                await client.call(
                    "event.offline.error", {"process_id": process, "message_id": messages}
                )
            raise
        await client.call("event.offline.clear", {"process_id": process, "id": ids})
        result.events += len(entries)
        if len(entries) < limit:
            break
    result.requests = client.requests - before
    return result


def run_drain_offline(
    store: Store,
    base_url: str,
    *,
    portal: str | None = None,
    token_provider: TokenProvider | None = None,
    rate_per_second: float = 2.0,
    rate_burst: int = 50,
    retry: RetryPolicy | None = None,
) -> OfflineResult:
    """:func:`drain_offline` from a thread with no event loop (a poller)."""

    async def job(client: BitrixClient, host: str) -> OfflineResult:
        try:
            # PostgreSQL: the drain is one sync of the portal (its lock, held throughout).
            with held(store, portal or host, client.bucket):
                return await drain_offline(store, client, portal or host)
        except BitrixError as exc:
            raise SyncError(str(exc)) from None

    return run_with_client(
        base_url,
        job,
        token_provider=token_provider,
        rate_per_second=rate_per_second,
        rate_burst=rate_burst,
        retry=retry,
    )
