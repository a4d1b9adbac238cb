"""Copy a Bitrix24 portal into the store: first in full, then only what changed.

A run goes:

1. **Preflight** (:mod:`rop.bitrix.sync_preflight`): one ``batch`` that
   touches every method we need and sizes the work, so a bad token, a
   missing scope or a denied method stops the run before anything is written.
2. **Directories** (users, departments, pipelines, stages, currencies) and the
   ``portals`` row are replaced whole in one transaction.
3. **Big entities**, concurrently under one rate limiter: a keyset export
   (first run, or ``full``), or the records changed since the watermark
   (``DATE_MODIFY >= watermark - overlap``) and, for append-only history and
   calls, the records after the last ID. Each batch commits its rows together
   with the watermark it earns, so a killed run resumes without loss.
4. **Deletions**: per entity, counts over ID ranges find what the portal no
   longer has (:mod:`rop.bitrix.reconcile`).

Each run is logged in ``sync_runs``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import functools
import gc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from rop.bitrix.client import (
    BATCH_MAX_COMMANDS,
    BitrixClient,
    RetryPolicy,
    TokenProvider,
    Webhook,
    parse_webhook,
)
from rop.bitrix.errors import BitrixError
from rop.bitrix.export import Chain, step, step_chains
from rop.bitrix.progress import ProgressCallback
from rop.bitrix.reconcile import reconcile
from rop.bitrix.records import BIG, DIRECTORIES, Entity, Record, to_rows
from rop.bitrix.sync_preflight import Preflight, Probe, directory_records, preflight
from rop.bitrix.sync_state import (
    EntityState,
    finish_run,
    held,
    load_state,
    reset_state,
    save_state,
    stamp_clock,
    start_run,
    utcnow,
)
from rop.bitrix.sync_write import (
    HISTORY_OF,
    Tally,
    compare_rows,
    delete_records,
    store_count,
    store_ids,
    write_records,
)
from rop.bitrix.timezone import guess_timezone, portal_timezone
from rop.bitrix.values import to_int
from rop.store.db import Store, StoreError
from rop.store.facts import rebuilds_whole, refresh_facts

# Re-read changes this far before the watermark: portal servers' clocks and
# records saved in the same second as the previous run's last read.
OVERLAP = timedelta(minutes=5)

# Parsed batches held at once by all the entities together: one being written,
# one waiting for the writer, two being fetched (the rate limit allows two
# requests a second, and a request takes about a second); more only waits.
BATCHES_IN_FLIGHT = 4

# The share of the store's memory bound the copy works under when the sync
# has the process to itself (`rop sync`: ROP_SYNC_MEMORY_LIMIT; run_sync's ``alone``): the copy's
# upserts need little of DuckDB's pool but fill it with the big tables' blocks
# (a 1M portal's copy climbed to 390 MB at 160MB), while the facts' whole
# rebuild after a first copy needs all of it (BENCHMARKS "Sync").
COPY_SHARE = 0.7

T = TypeVar("T")


def give_back_memory() -> None:
    """Hand the memory the copy's batches freed back to the system before the
    facts' refresh (a whole rebuild after a first copy is the sync's peak).

    Python's large objects (a record's dict, a batch's lists) come from
    glibc's malloc, which keeps what they freed for reuse; DuckDB allocates
    elsewhere (its own allocator, returned past ``allocator_flush_threshold``).
    Where the C library has no ``malloc_trim`` (not glibc) nothing happens.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# glibc's mallopt parameters (malloc.h) and what a sync sets them to.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2
MMAP_THRESHOLD = 256 << 10


def tune_malloc() -> None:
    """Keep glibc's malloc from holding memory a sync's batches freed.

    Two threads allocate a sync's Python objects (the event loop parses each
    batch, the writer thread turns it into rows), and glibc gives each thread
    that meets a locked arena an arena of its own (up to 8 per core), each
    keeping what it freed. And each freed large block (a response body, a
    batch's lists: several MB) raises glibc's threshold for serving such blocks
    from ``mmap`` (returned at once) instead of the arenas (kept), up to 32 MB,
    so later batches' bodies stay behind in the heap. A fixed threshold and two
    arenas stop both. Process-wide and harmless to repeat; nothing happens off
    glibc.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


class SyncError(RuntimeError):
    """The sync stopped; the message says why (method and Bitrix24 error, if any)."""


def run_with_client(
    base_url: str,
    job: Callable[[BitrixClient, str], Awaitable[T]],
    *,
    token_provider: TokenProvider | None = None,
    rate_per_second: float = 2.0,
    rate_burst: int = 50,
    retry: RetryPolicy | None = None,
) -> T:
    """Run ``job(client, portal)`` to its end from a thread with no event loop.

    ``base_url`` is a webhook URL, or with ``token_provider`` the app's REST
    endpoint ``https://PORTAL/rest/``; a bad one is a SyncError naming it.
    ``portal`` is the URL's host, the store's key as run_sync uses it. The
    event worker and the offline poller share this; what a job lets out of
    Bitrix24's errors is the job's own choice.
    """
    hook = _webhook(base_url, token_provider)

    async def go() -> T:
        async with _client(hook, token_provider, rate_per_second, rate_burst, retry) as client:
            return await job(client, hook.portal)

    return asyncio.run(go())


def _webhook(url: str, token_provider: TokenProvider | None) -> Webhook:
    """The portal's endpoint from ``url`` (an app's REST endpoint with a token
    provider, else a webhook); a bad one is a SyncError naming it."""
    try:
        return parse_webhook(url, oauth=token_provider is not None)
    except ValueError as exc:
        raise SyncError(str(exc)) from None


def _client(
    hook: Webhook,
    token_provider: TokenProvider | None,
    rate_per_second: float,
    rate_burst: int,
    retry: RetryPolicy | None,
) -> BitrixClient:
    """The client of one run against ``hook`` (the sync's and any job's alike)."""
    return BitrixClient(
        hook.base,
        rate_per_second=rate_per_second,
        burst=rate_burst,
        token_provider=token_provider,
        retry=retry,
    )


@dataclass
class SyncResult:
    portal: str
    kind: str  # "full" or "incremental"
    run_id: int
    started_at: datetime
    finished_at: datetime
    requests: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.kind} sync of {self.portal}: {self.requests} requests, {self.seconds:.1f} s"
        ]
        for name, c in self.counts.items():
            lines.append(
                f"  {name:<14} +{c.get('added', 0)} added  ~{c.get('updated', 0)} updated"
                f"  -{c.get('deleted', 0)} deleted"
            )
        return lines


def _new(entity: Entity) -> str:
    """The key of an entity's walk over the IDs created since (Entity.new_by_id)."""
    return f"{entity.name}__new"


async def _all_first(tasks: list[Awaitable[T]]) -> list[T]:
    """Run concurrently; on the first failure cancel the rest and raise it."""
    running = [asyncio.ensure_future(t) for t in tasks]
    try:
        return list(await asyncio.gather(*running))
    except BaseException:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise


class _Engine:
    def __init__(
        self,
        store: Store,
        client: BitrixClient,
        hook: Webhook,
        *,
        full: bool,
        timezone: str | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.store = store
        self.client = client
        self.hook = hook
        self.portal = hook.portal
        self.full = full
        self.timezone = timezone
        self.progress = progress
        self.tallies: dict[str, Tally] = {}
        # One thread writes the store during the big-entity phase.
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rop-sync-db")
        self.chains: dict[str, Chain] = {}
        self.change_totals: dict[str, int | None] = {}
        # Entities copied in full this run, whose changes since are read last.
        self.catch_ups: dict[str, tuple[Entity, EntityState, Probe]] = {}
        # Parsed batches in memory at once, every entity together (see _fetch).
        self._slots = asyncio.Semaphore(BATCHES_IN_FLIGHT)

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    def _report(self, entity: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(entity, done, total)

    # -- 1. preflight --------------------------------------------------------
    async def preflight(self) -> Preflight:
        self.chains = self.incremental_chains()
        pre = await preflight(self.client, self.chains)
        self.change_totals = pre.change_totals
        return pre

    # -- 2. directories ------------------------------------------------------
    async def directories(self, pre: Preflight) -> None:
        fetched = {e.name: await directory_records(self.client, pre, e) for e in DIRECTORIES}
        webhook_user = to_int(pre.user.get("ID"))
        known = self.store.scalar("SELECT timezone FROM portals WHERE portal = ?", [self.portal])
        zone = self.timezone or portal_timezone(
            pre.user, fetched["users"], pre.date_start, known=known
        )
        with self.store.transaction():
            for entity in DIRECTORIES:
                rows = to_rows(entity, self.portal, fetched[entity.name])
                before = int(
                    self.store.scalar(
                        f"SELECT count(*) FROM {entity.table} WHERE portal = ?",  # noqa: S608
                        [self.portal],
                    )
                    or 0
                )
                if entity.name == "users":
                    for row in rows:
                        row["is_admin"] = pre.is_admin and row["id"] == webhook_user
                # Directories carry no modification time: a row counts as
                # updated only if its content differs from the stored one.
                kept, changed = compare_rows(self.store, entity.table, rows)
                self.store.execute(
                    f"DELETE FROM {entity.table} WHERE portal = ?",  # noqa: S608
                    [self.portal],
                )
                written = self.store.upsert(entity.table, rows)
                tally = self.tallies.setdefault(entity.name, Tally())
                tally.added = written - kept
                tally.deleted = before - kept
                tally.updated = changed
                self._report(entity.name, written, written)
            self.store.upsert(
                "portals",
                [
                    {
                        "portal": self.portal,
                        "url": self.hook.origin,
                        "timezone": zone,
                        "base_currency": pre.base_currency,
                        "webhook_user_id": webhook_user,
                        "updated_at": utcnow(),
                        # The portal's clock so far; the run's end moves it on.
                        "clock": self.client.portal_clock or utcnow(),
                    }
                ],
            )

    # -- 3. big entities -----------------------------------------------------
    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run store work on the one writer thread, so the event loop keeps
        fetching the next batch meanwhile (and the connection sees one thread
        at a time)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, functools.partial(fn, *args))

    def _commit(
        self, entity: Entity, records: list[Record], state: EntityState | None, last_id: int
    ) -> None:
        """Rows and (for keyset passes) the ID watermark, in one transaction."""
        tally = self.tallies.setdefault(entity.name, Tally())
        with self.store.transaction():
            write_records(self.store, entity, self.portal, records, tally)
            if state is not None:
                state.id_watermark = last_id
                save_state(self.store, self.portal, entity.name, state)
        # A first copy fills tables analysed while empty: the next batches'
        # comparison (rop.bitrix.sync_write.compare_rows) plans from statistics of
        # its first rows (PostgreSQL: once per table, else a catalogue read;
        # rop.store.pg_stats). The facts' refresh takes them all again as it starts.
        self.store.analyze(first=True)

    def _save(self, name: str, state: EntityState) -> None:
        with self.store.transaction():
            save_state(self.store, self.portal, name, state)

    async def _drain(
        self,
        entity: Entity,
        chain: Chain,
        state: EntityState | None,
        first: list[Record] | None,
        total: int | None,
        done: int = 0,
        quiet: bool = False,
    ) -> None:
        """Walk ``chain`` to its end, committing batch by batch.

        The next batch is requested while the current one is written; its
        rows are committed (with the watermark) only after this one's.
        """
        if not quiet:
            self._report(entity.name, done, total)
        # A batch is 2,500 parsed records (4-7 MB of Python objects): hold none
        # longer than its write, or every entity keeps its last one while it
        # waits its turn at the rate limit (eight entities: ~40 MB).
        records, first = first, None
        held = False  # whether ``records`` holds one of the shared slots
        while True:
            if records is None:
                if chain.done:
                    return
                records, held = await self._fetch(chain), True
            last_id = chain.last_id
            ahead = None if chain.done else asyncio.ensure_future(self._fetch(chain))
            try:
                await self._db(self._commit, entity, records, state, last_id)
            except BaseException:
                if ahead is not None:
                    ahead.cancel()
                    got = await asyncio.gather(ahead, return_exceptions=True)
                    if not isinstance(got[0], BaseException):
                        self._slots.release()
                raise
            finally:
                if held:
                    self._slots.release()
            held = ahead is not None
            done += len(records)
            records = None
            if not quiet:
                self._report(entity.name, done, total)
            records = await ahead if ahead is not None else None
            if records is None:
                return

    async def _fetch(self, chain: Chain) -> list[Record]:
        """The chain's next batch, once a slot is free; the caller releases the
        slot when the batch is written.

        Every entity fetches its next batch while its current one waits for
        the one writer thread; when the writer is the slower side (a large
        store on a busy machine) each of the eight entities would hold two
        parsed batches (2,500 records, 4-7 MB of Python objects each) at once.
        """
        await self._slots.acquire()
        try:
            return await step(self.client, chain)
        except BaseException:
            self._slots.release()
            raise

    def _changes_filter(self, entity: Entity, state: EntityState) -> dict[str, Any] | None:
        """The filter for records changed since the watermark; None: nothing to ask."""
        if state.modified_watermark is None:
            return {}
        since = state.modified_watermark - OVERLAP
        return {f">={entity.modified_field}": since.isoformat(timespec="seconds") + "+00:00"}

    def incremental_chains(self) -> dict[str, Chain]:
        """Per entity whose first copy is done: the walk over what changed since."""
        chains: dict[str, Chain] = {}
        if self.full:
            return chains
        for entity in BIG:
            state = load_state(self.store, self.portal, entity.name)
            if not state.full_done:
                continue
            if entity.modified_field:
                flt = self._changes_filter(entity, state) or {}
                chains[entity.name] = Chain(entity, 0, flt)
                if entity.new_by_id:
                    # Records created since carry no modification time yet:
                    # every ID after the last one copied, in the same batches.
                    chains[_new(entity)] = Chain(entity, state.id_watermark or 0)
            else:
                chains[entity.name] = Chain(entity, state.id_watermark or 0)
        return chains

    async def big_entities(self, pre: Preflight) -> None:
        states = {e.name: load_state(self.store, self.portal, e.name) for e in BIG}
        # Incremental chains start together: the preflight counted each one's
        # changes, so one batch usually carries every entity's pages.
        packed: list[tuple[str, Chain, int]] = []
        used = 0
        for name, chain in sorted(self.chains.items(), key=lambda kv: kv[1].pages_wanted()):
            pages = chain.pages_wanted()
            if used + pages > BATCH_MAX_COMMANDS:
                break
            packed.append((name, chain, pages))
            used += pages
        first: dict[str, list[Record]] = {}
        if packed:
            got = await step_chains(self.client, [(c, pages) for _, c, pages in packed])
            first = {name: rows for (name, _, _), rows in zip(packed, got, strict=True)}
        await _all_first([self._entity(e, states[e.name], pre.probes[e.name], first) for e in BIG])
        if self.catch_ups:
            catch = {
                name: Chain(entity, 0, self._changes_filter(entity, state) or {})
                for name, (entity, state, _) in self.catch_ups.items()
            }
            pages = max(1, BATCH_MAX_COMMANDS // len(catch))
            got = await step_chains(self.client, [(c, pages) for c in catch.values()])
            await _all_first(
                [
                    self._catch_up(name, chain, rows)
                    for (name, chain), rows in zip(catch.items(), got, strict=True)
                ]
            )

    async def _catch_up(self, name: str, chain: Chain, first: list[Record]) -> None:
        entity, state, probe = self.catch_ups[name]
        await self._drain(entity, chain, None, first, None, quiet=True)
        if probe.high is not None:
            state.modified_watermark = probe.high
            await self._db(self._save, name, state)

    async def _entity(
        self,
        entity: Entity,
        state: EntityState,
        probe: Probe,
        first: dict[str, list[Record]],
    ) -> None:
        chains = self.chains
        name = entity.name
        self.tallies.setdefault(name, Tally())
        if entity.modified_field is None:
            # Append-only (history, calls): everything after the last committed ID.
            already = await self._db(
                store_count, self.store, entity, self.portal, 0, state.id_watermark or 0
            )
            left = None if probe.total is None else probe.total - already
            chain = chains.get(name) or Chain(entity, state.id_watermark or 0, expected=left)
            if name in chains or probe.total != 0:
                await self._drain(entity, chain, state, first.get(name), probe.total, already)
            if not state.full_done:
                state.full_done = True
                await self._db(self._save, name, state)
            return
        if not state.full_done:
            if state.id_watermark is None:
                # A full copy starts now: changes from here on are caught by
                # the change pass that follows it (and by later runs).
                state.modified_watermark = probe.high
            already = await self._db(
                store_count, self.store, entity, self.portal, 0, state.id_watermark or 0
            )
            left = None if probe.total is None else probe.total - already
            chain = Chain(entity, state.id_watermark or 0, expected=left)
            if probe.total != 0:
                await self._drain(entity, chain, state, None, probe.total, already)
            state.full_done = True
            await self._db(self._save, name, state)
            if state.modified_watermark is None or probe.total == 0:
                # None at preflight: whatever appeared since carries a
                # modification time after the watermark, for the next run.
                return
            # Records changed while the copy ran: read after every entity's
            # copy, all in one batch (see big_entities).
            self.catch_ups[name] = (entity, state, probe)
            return
        else:
            total = self.change_totals.get(name)
            await self._drain(entity, chains[name], None, first.get(name), total)
            fresh = chains.get(_new(entity))
            if fresh is not None:
                # The ID watermark moves on with what this walk commits.
                await self._drain(entity, fresh, state, first.get(_new(entity)), None, quiet=True)
        if probe.high is not None:
            state.modified_watermark = probe.high
            await self._db(self._save, name, state)

    # -- 4. deletions --------------------------------------------------------
    async def _reconcile(self, entity: Entity, probe: Probe) -> None:
        tally = self.tallies.setdefault(entity.name, Tally())

        def listed(records: list[Record]) -> None:
            with self.store.transaction():
                write_records(self.store, entity, self.portal, records, Tally())

        def finished(lo: int, hi: int, seen: set[int]) -> None:
            gone = [i for i in store_ids(self.store, entity, self.portal, lo, hi) if i not in seen]
            with self.store.transaction():
                delete_records(self.store, entity, self.portal, gone, tally)

        count = lambda lo, hi: store_count(self.store, entity, self.portal, lo, hi)  # noqa: E731
        await reconcile(
            self.client, entity, (0, probe.max_id, probe.total), count, listed, finished
        )
        # Rows above the portal's highest ID at preflight were created since
        # (the change pass read them) or deleted since: list that short range.
        top = self.store.scalar(
            f"SELECT max(id) FROM {entity.table} WHERE portal = ?",  # noqa: S608
            [self.portal],
        )
        if top is not None and int(top) > probe.max_id:
            await reconcile(
                self.client, entity, (probe.max_id, int(top), None), count, listed, finished
            )

    async def deletions(self, pre: Preflight) -> None:
        owners = [e for e in BIG if e.table not in HISTORY_OF.values()]
        histories = [e for e in BIG if e.table in HISTORY_OF.values()]
        await _all_first([self._reconcile(e, pre.probes[e.name]) for e in owners])
        await _all_first([self._reconcile(e, pre.probes[e.name]) for e in histories])


async def sync_portal(
    store: Store,
    webhook_url: str,
    *,
    full: bool = False,
    rate_per_second: float = 2.0,
    rate_burst: int = 50,
    timezone: str | None = None,
    progress: ProgressCallback | None = None,
    token_provider: TokenProvider | None = None,
    retry: RetryPolicy | None = None,
    alone: bool = False,
) -> SyncResult:
    """The async engine behind :func:`run_sync` (same arguments)."""
    hook = _webhook(webhook_url, token_provider)
    # Server mode: row-level security lets this handle touch only this portal.
    store.use_portal(hook.portal)
    if alone:
        # Process-wide: a server's other threads (reports) are not measured with it.
        tune_malloc()
    async with _client(hook, token_provider, rate_per_second, rate_burst, retry) as client:
        # PostgreSQL: one sync of a portal at a time, whoever runs it (its lock,
        # on this handle's connection, before the first request spends its limit).
        with held(store, hook.portal, client.bucket):
            return await _copy(
                store, client, hook, full=full, timezone=timezone, progress=progress, alone=alone
            )


async def _copy(
    store: Store,
    client: BitrixClient,
    hook: Webhook,
    *,
    full: bool,
    timezone: str | None,
    progress: ProgressCallback | None,
    alone: bool,
) -> SyncResult:
    """sync_portal's run, under the portal's lock."""
    engine = _Engine(store, client, hook, full=full, timezone=timezone, progress=progress)
    try:
        pre = await engine.preflight()
    except BitrixError as exc:
        raise SyncError(str(exc)) from None
    except (TypeError, KeyError, ValueError, IndexError) as exc:
        raise SyncError(f"unexpected answer from {hook.portal}: {exc!r}") from None
    started = utcnow()
    try:
        if full:
            with store.transaction():
                reset_state(store, hook.portal)
        done_before = all(load_state(store, hook.portal, e.name).full_done for e in BIG)
        kind = "incremental" if done_before else "full"
        run_id = start_run(store, hook.portal, kind, started)
    except StoreError as exc:
        raise SyncError(str(exc)) from None
    outcome, message = "failed", None
    try:
        # A first copy (or facts of another version) ends in a whole rebuild
        # of the stored facts: marking each written record would only make
        # millions of marks for that rebuild to delete.
        whole = rebuilds_whole(store, hook.portal)
        unmarked = store.unmarked() if whole else contextlib.nullcontext()
        with unmarked, store.narrowed(COPY_SHARE if alone else 1.0):
            await engine.directories(pre)
            await engine.big_entities(pre)
            await engine.deletions(pre)
        stamp_clock(store, hook.portal, client.portal_clock)
        if alone:
            # What the copy left in DuckDB beside its pool (its allocator's
            # reserves) goes with the connection, before the refresh fills
            # the whole bound (a first copy's whole rebuild: the peak).
            await engine._db(store.reopen)
        give_back_memory()
        # The stored facts of the records this run wrote (rop.store.facts).
        await engine._db(functools.partial(refresh_facts, store, hook.portal, full=whole))
        outcome = "ok"
    except BitrixError as exc:
        message = str(exc)
        raise SyncError(message) from None
    except StoreError as exc:
        message = str(exc)
        raise SyncError(message) from None
    except (TypeError, KeyError, ValueError, IndexError) as exc:
        message = f"unexpected answer from {hook.portal}: {exc!r}"
        raise SyncError(message) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        outcome, message = "interrupted", "stopped by the user"
        raise
    except BaseException as exc:
        message = f"stopped: {exc!r}"
        raise
    finally:
        # Let a commit still running on the writer thread finish first.
        engine.close()
        counts = {k: t.as_dict() for k, t in engine.tallies.items()}
        # The run's own error matters more than a failure to log it.
        with contextlib.suppress(Exception):
            finish_run(
                store,
                hook.portal,
                run_id,
                outcome=outcome,
                message=message,
                requests=client.requests,
                counts=counts,
            )
    return SyncResult(
        portal=hook.portal,
        kind=kind,
        run_id=run_id,
        started_at=started,
        finished_at=utcnow(),
        requests=client.requests,
        counts=counts,
    )


def run_sync(
    store: Store,
    webhook_url: str,
    *,
    full: bool = False,
    rate_per_second: float = 2.0,
    rate_burst: int = 50,
    timezone: str | None = None,
    progress: ProgressCallback | None = None,
    token_provider: TokenProvider | None = None,
    retry: RetryPolicy | None = None,
    alone: bool = False,
) -> SyncResult:
    """Copy the portal behind ``webhook_url`` into ``store``; raise SyncError on failure.

    Synchronous: runs the async engine with ``asyncio.run``, so call it from a
    thread with no running event loop (a web server's worker thread).
    ``progress(entity, done, total)`` is called from that same thread.
    ``alone``: the process and the store's handle are this sync's alone
    (`rop sync`): the copy runs under :data:`COPY_SHARE` of the store's
    memory bound (``Store.bound``), the store is reopened before the
    facts' refresh, which gets the whole bound, and glibc's malloc is tuned
    (:func:`tune_malloc`). A server's bound is its readers' too, its handle
    theirs, its allocator everyone's: not there.
    """
    return asyncio.run(
        sync_portal(
            store,
            webhook_url,
            full=full,
            rate_per_second=rate_per_second,
            rate_burst=rate_burst,
            timezone=timezone,
            progress=progress,
            token_provider=token_provider,
            retry=retry,
            alone=alone,
        )
    )


__all__ = ["SyncError", "SyncResult", "run_sync", "sync_portal", "guess_timezone"]
