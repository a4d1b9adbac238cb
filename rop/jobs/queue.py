"""The workers' procrastinate app: the sync tasks, the periodic re-scans, stalled jobs.

``rop worker`` runs :func:`build_app`'s worker; any number of them, on any
machines, share the queue in PostgreSQL. Every job of a portal holds the
portal's job lock (rop.jobs.defer) and, for its whole run, the portal's
advisory lock on the connection it writes through (rop.store.portal_lock), so
one job at a time runs per portal even when a late heartbeat gets a live
worker's job retried.

A worker killed mid-job (SIGKILL, a lost machine) stops sending heartbeats;
every live worker watches for such workers and puts their running jobs back
in the queue (procrastinate's stalled jobs). A sync is safe to run again: each
batch commits with the watermark it earns, so the retry resumes and the store
ends exact, as a killed ``rop sync`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rop.jobs import pending
from rop.jobs.defer import CHANGES_TASK, SYNC_TASK, queue_sync
from rop.jobs.sources import Keys, Sources
from rop.store.db import Store

if TYPE_CHECKING:
    import procrastinate

    from rop.digests.targets import DigestConfig

log = logging.getLogger("rop.jobs")

RESCAN_TASK = "rop.rescan"


@dataclass(frozen=True)
class Runtime:
    """What a worker needs, from the settings (built by the CLI, handed down)."""

    db: str  # postgresql:// URL (the application role)
    keys: Keys
    rate_per_second: float = 2.0
    rate_burst: int = 50
    rescan_minutes: int = 0  # 0: no periodic re-scan
    stalled_seconds: int = 30  # heartbeat silence after which a running job is retried
    digests: DigestConfig | None = None  # send the due digests every minute (rop.jobs.digests)
    offline_poll_seconds: float = 0  # installed portals' offline events: 0, not polled


def rescan_cron(minutes: int) -> str:
    """A cron line for "every ``minutes`` minutes" (procrastinate's periodic tasks)."""
    if minutes < 60:
        return f"*/{minutes} * * * *"
    return f"0 */{max(1, minutes // 60)} * * *"


def refresh_facts(store: Store, portal: str) -> None:
    """After a sync: what the first page still computes, so it is fast.

    The stored facts (deal, lead and call facts) are already current: the
    sync itself ends with rop.store.facts.refresh_facts for the changed
    records. What is left is the per-process metrics cache (stage visits,
    drill-down texts), warmed here; the one place a worker does it.
    """
    from rop.report.context import warm_cache

    warm_cache(store, portal)


class Worker:
    """The tasks' shared state: one store (a pool) per worker process, opened lazily."""

    def __init__(self, runtime: Runtime, opener: Callable[[str], Store] | None = None) -> None:
        self.runtime = runtime
        self._opener = opener
        self._store: Store | None = None
        self._lock = threading.Lock()

    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                if self._opener is not None:
                    self._store = self._opener(self.runtime.db)
                else:
                    from rop.store.postgres import open_pg_store

                    self._store = open_pg_store(self.runtime.db, migrate=False)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @contextmanager
    def cursor(self) -> Iterator[Store]:
        cursor = self.store().cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def locked(self, portal: str) -> Iterator[Store]:
        """A handle holding ``portal``'s lock (rop.store.portal_lock) for a whole job.

        procrastinate's job lock alone is not enough: a live worker late with
        its heartbeat has its job retried by another (_retry_stalled) while it
        still runs it. The retried job waits here for the first one to end,
        then runs (an incremental sync after a finished one is cheap). Taken
        before the job reads its source or pending rows, and its writes go
        through the same connection, which the library's sync locks again.
        """
        from rop.store.portal_lock import portal_lock

        with self.cursor() as cursor, portal_lock(cursor, portal):
            yield cursor

    @contextmanager
    def logged(self, job: str, portal: str, **fields: Any) -> Iterator[None]:
        """One JSON line as a job starts and one as it ends (ROP_LOG_FORMAT=json)."""
        extra = {"event": "job", "job": job, "portal": portal, "pid": os.getpid(), **fields}
        log.info("%s %s started", job, portal, extra={**extra, "state": "started"})
        started = time.monotonic()
        state = "failed"
        try:
            yield
            state = "done"
        finally:
            ms = round((time.monotonic() - started) * 1000, 1)
            log.info("%s %s %s", job, portal, state, extra={**extra, "state": state, "ms": ms})

    def sync(self, portal: str, full: bool) -> None:
        from rop.bitrix.sync import run_sync

        with self.logged("sync", portal, full=full), self.locked(portal) as cursor:
            source = Sources(cursor, self.runtime.keys).get(portal)
            if source is None:
                log.warning("no webhook or installed app for %s: nothing to sync", portal)
                return
            run_sync(
                cursor,
                source.endpoint,
                full=full,
                rate_per_second=self.runtime.rate_per_second,
                rate_burst=self.runtime.rate_burst,
                token_provider=source.tokens,
            )
            self.after_sync(cursor, portal)

    def sync_changes(self, portal: str) -> None:
        from rop.bitrix.sync_ids import run_sync_changes

        with self.logged("changes", portal), self.locked(portal) as cursor:
            source = Sources(cursor, self.runtime.keys).get(portal)
            cursor.use_portal(portal)
            changes, taken = pending.take(cursor, portal)
            if source is None or not changes:
                return
            run_sync_changes(
                cursor,
                source.endpoint,
                changes,
                portal=portal,
                token_provider=source.tokens,
                rate_per_second=self.runtime.rate_per_second,
                rate_burst=self.runtime.rate_burst,
            )
            pending.done(cursor, portal, taken)
            self.after_sync(cursor, portal)

    def after_sync(self, cursor: Store, portal: str) -> None:
        try:
            refresh_facts(cursor, portal)
        except Exception:  # the data is stored; a report computes what is missing
            log.warning("refreshing the report facts of %s failed", portal, exc_info=True)

    def rescan(self, app: procrastinate.App) -> int:
        """Queue an incremental sync of every portal (the safety net for lost events)."""
        with self.cursor() as cursor:
            portals = Sources(cursor, self.runtime.keys).portals()
        return sum(queue_sync(app, p) for p in portals)


def build_app(runtime: Runtime, worker: Worker | None = None) -> procrastinate.App:
    """The procrastinate app with every task of ours registered."""
    import procrastinate
    from procrastinate import RetryStrategy

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=runtime.db, min_size=1, max_size=8)
    )
    state = worker or Worker(runtime)
    # A sync that failed (the portal down, a refused token) is tried again
    # later; a lasting failure is logged per try and left to the next re-scan.
    retry = RetryStrategy(max_attempts=3, exponential_wait=5)

    @app.task(name=SYNC_TASK, retry=retry)
    def sync_portal(portal: str, full: bool = False) -> None:
        state.sync(portal, full)

    @app.task(name=CHANGES_TASK, retry=retry)
    def sync_changes(portal: str) -> None:
        state.sync_changes(portal)

    if runtime.rescan_minutes > 0:

        @app.periodic(cron=rescan_cron(runtime.rescan_minutes))
        @app.task(name=RESCAN_TASK, queueing_lock=RESCAN_TASK)
        def rescan(timestamp: int) -> None:
            state.rescan(app)

    if runtime.digests is not None:
        register_digests(app, state, runtime.digests)
    from rop.jobs.offline import register as register_offline

    register_offline(app, state, runtime.offline_poll_seconds)
    return app


def register_digests(app: procrastinate.App, state: Worker, config: DigestConfig) -> None:
    """The periodic digests task (rop.jobs.digests): what is due, every minute."""
    from rop.jobs.digests import DIGESTS_CRON, DIGESTS_TASK, send_digests

    @app.periodic(cron=DIGESTS_CRON)
    @app.task(name=DIGESTS_TASK, queueing_lock=DIGESTS_TASK)
    def digests(timestamp: int) -> None:
        with state.logged("digests", "*"):
            send_digests(state.store(), state.runtime.keys, config)


def run_worker(runtime: Runtime, concurrency: int = 4) -> None:
    """Run one worker until SIGINT/SIGTERM: jobs, heartbeats, and the stalled-job watch."""
    app = build_app(runtime)

    async def main() -> None:
        async with app.open_async():
            watch = asyncio.create_task(_watch_stalled(app, runtime.stalled_seconds))
            try:
                await app.run_worker_async(
                    concurrency=concurrency,
                    update_heartbeat_interval=max(1.0, runtime.stalled_seconds / 4),
                    stalled_worker_timeout=float(runtime.stalled_seconds),
                )
            finally:
                watch.cancel()

    asyncio.run(main())


async def _watch_stalled(app: procrastinate.App, seconds: float) -> None:
    """Every worker looks for dead workers' jobs beside its own jobs.

    Not a queued task: a task would wait behind long syncs for a free slot
    while the dead worker's portal stays locked. Often enough that a killed
    worker's job waits about ``seconds`` plus half of it.
    """
    while True:
        await asyncio.sleep(max(0.5, seconds / 2))
        try:
            await _retry_stalled(app, seconds)
        except Exception:  # the database blinked: the next round tries again
            log.warning("looking for stalled jobs failed", exc_info=True)


async def _retry_stalled(app: procrastinate.App, seconds: float) -> None:
    """Put the running jobs of workers silent for ``seconds`` back in the queue."""
    from procrastinate.exceptions import ConnectorException
    from procrastinate.jobs import Status

    manager = app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
        if job.id is None:
            continue
        try:
            await manager.retry_job(job)
            log.info(
                "retrying job %s of a stalled worker",
                job.id,
                extra={"event": "job", "job": "retry", "state": "requeued", "job_id": job.id},
            )
        except ConnectorException:
            # Another worker retried it first, or the same work is already
            # waiting (its queueing lock): then this copy can go.
            with contextlib.suppress(ConnectorException):
                if await manager.get_job_status_async(job.id) == Status.DOING:
                    await manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
