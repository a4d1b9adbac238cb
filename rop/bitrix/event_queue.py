"""The queue between the event handler and the by-ID sync: merged per portal, one worker.

The handler puts an event's :class:`~rop.bitrix.changes.Changes` and answers
at once (Bitrix24 never retries a slow or failed delivery). One worker thread
takes a portal's pending changes after a short settle time, so a burst (a
mass edit fires one event per record) becomes one small sync; each ID once,
a deletion over an update. After the sync, ``on_synced(portal, result)``
lets the server refresh that portal's report cache; a failed sync is logged
and left to the periodic re-scan (today's incremental sync), which is the
safety net for every lost event anyway.

The sync itself is a callable the server supplies, ``sync(portal, changes)``
(it knows the portal's tokens); ``lock`` is the server's one-writer lock,
so an event sync never overlaps a full or incremental run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from rop.bitrix.changes import Changes

log = logging.getLogger("rop.bitrix.events")

SyncFn = Callable[[str, Changes], Any]


class EventQueue:
    def __init__(
        self,
        sync: SyncFn,
        *,
        on_synced: Callable[[str, Any], None] | None = None,
        on_failed: Callable[[str, Changes, BaseException], None] | None = None,
        settle_seconds: float = 0.3,
        lock: threading.Lock | None = None,
    ) -> None:
        self._sync = sync
        self.on_synced = on_synced
        self.on_failed = on_failed
        self.settle = settle_seconds
        self._write_lock = lock
        self._pending: dict[str, Changes] = {}
        self._since: dict[str, float] = {}  # portal -> when its first pending change came
        self._cond = threading.Condition()
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self.synced = 0  # runs done (tests, benchmarks)
        self.failed = 0

    # -- producer side -------------------------------------------------------
    def put(self, portal: str, changes: Changes) -> None:
        if not changes:
            return
        with self._cond:
            pending = self._pending.setdefault(portal, Changes())
            pending.merge(changes)
            self._since.setdefault(portal, time.monotonic())
            self._cond.notify_all()

    def pending(self, portal: str) -> int:
        with self._cond:
            return len(self._pending.get(portal) or ())

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="rop-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Until nothing is pending or running (tests, benchmarks); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # -- worker ------------------------------------------------------------------
    def _next(self) -> tuple[str, Changes] | None:
        """The portal whose changes waited longest, once settled; None when stopping."""
        with self._cond:
            while True:
                if self._stop:
                    return None
                if self._pending:
                    portal = min(self._since, key=self._since.__getitem__)
                    ready = self._since[portal] + self.settle - time.monotonic()
                    if ready <= 0:
                        self._since.pop(portal)
                        self._busy = True
                        return portal, self._pending.pop(portal)
                    self._cond.wait(ready)
                else:
                    self._cond.wait()

    def _loop(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            portal, changes = job
            try:
                with self._write_lock or contextlib.nullcontext():
                    result = self._sync(portal, changes)
                self.synced += 1
                if self.on_synced is not None:
                    self.on_synced(portal, result)
            except Exception as exc:  # the re-scan catches up; the worker stays up
                self.failed += 1
                log.warning("event sync of %s failed: %s", portal, exc)
                if self.on_failed is not None:
                    with contextlib.suppress(Exception):
                        self.on_failed(portal, changes, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
