"""Sync from the page: one background job at a time, with live progress.

DuckDB lets one process write, so while the server runs it is the one that
syncs; ``rop sync`` finds the server through ``<db>.server.json`` and asks it
(``POST /api/sync``). The job runs ``rop.bitrix.sync.run_sync`` on its own
cursor in a thread; the page polls ``GET /api/sync``.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from rop.store.db import Store

log = logging.getLogger("rop.web.sync")

Runner = Callable[..., Any]


def _default_runner() -> Runner:
    from rop.bitrix.sync import run_sync

    return run_sync


class SyncCancelled(Exception):
    """The job was cancelled (``SyncJob.cancel``): raised at the sync's next batch."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "__dict__"):
        return {k: _jsonable(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


class SyncJob:
    """The server's one sync job; thread-safe state for the progress endpoint."""

    def __init__(
        self,
        store: Store,
        webhook: str | None,
        runner: Runner | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.webhook = webhook
        self._runner = runner
        self._options = dict(options or {})
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.state = "idle"  # idle | running | done | failed
        self.full = False
        self.progress: Any = None
        self.message = ""
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self.runs = 0
        self.on_finish: Callable[[], None] | None = None
        # Set by cancel(): the running sync stops at its next batch, none starts.
        self._cancelled = threading.Event()

    @property
    def available(self) -> bool:
        return bool(self.webhook)

    @property
    def portal(self) -> str | None:
        """The portal this server syncs (its webhook's host), or None."""
        from rop.bitrix.client import parse_webhook

        try:
            return parse_webhook(self.webhook).portal if self.webhook else None
        except ValueError:
            return None

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "available": self.available,
                "state": self.state,
                "full": self.full,
                "progress": _jsonable(self.progress),
                "message": self.message,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "runs": self.runs,
            }

    def start(self, full: bool = False) -> bool:
        """Start a sync unless one is running (or the job was cancelled); returns
        False if none starts."""
        with self._lock:
            if self.state == "running" or self._cancelled.is_set():
                return False
            self.state = "running"
            self.full = full
            self.progress = None
            self.message = ""
            self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
            self.finished_at = None
            self._thread = threading.Thread(
                target=self._run, args=(full,), name="rop-sync", daemon=True
            )
            self._thread.start()
        return True

    def cancel(self) -> None:
        """No sync starts from now; a running one raises :class:`SyncCancelled` at
        its next progress report (after a batch's commit, before the next one)."""
        self._cancelled.set()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _progress(self, *args: Any, **kwargs: Any) -> None:
        # run_sync calls progress(entity, done, total); keep any other shape as is.
        if self._cancelled.is_set():
            raise SyncCancelled("the sync was cancelled")
        with self._lock:
            if len(args) == 3 and not kwargs:
                self.progress = {"entity": args[0], "done": args[1], "total": args[2]}
            else:
                self.progress = kwargs or (args[0] if len(args) == 1 else list(args))

    def _run(self, full: bool) -> None:
        runner = self._runner or _default_runner()
        started = time.monotonic()
        cursor = self.store.cursor()
        try:
            kwargs: dict[str, Any] = {"progress": self._progress, "full": full}
            try:
                accepted = set(inspect.signature(runner).parameters)
            except (TypeError, ValueError):
                accepted = set()
            # Rate limits and time zone come from the settings when the runner takes them.
            kwargs.update({k: v for k, v in self._options.items() if k in accepted})
            result = runner(cursor, self.webhook, **kwargs)
            with self._lock:
                self.state = "done"
                self.message = "" if result is None else str(_jsonable(result))[:500]
        except SyncCancelled as exc:
            log.info("sync cancelled")
            with self._lock:
                self.state = "failed"
                self.message = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # the page shows the reason; the server stays up
            log.exception("sync failed")
            with self._lock:
                self.state = "failed"
                self.message = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self.runs += 1
                self.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
            # One structured line per job (ROP_LOG_FORMAT=json makes it JSON).
            logging.getLogger("rop.jobs").info(
                "sync %s",
                self.state,
                extra={
                    "event": "job",
                    "job": "sync",
                    "full": full,
                    "state": self.state,
                    "portal": cursor.portal,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
            if self.on_finish is not None:
                self.on_finish()


class Startable(Protocol):
    """What the timer needs of a job: SyncJob here, rop.web.queued_sync in server mode."""

    @property
    def available(self) -> bool: ...

    def start(self, full: bool = False) -> bool: ...


class Scheduler:
    """Starts the sync every ``minutes`` minutes (settings.sync_interval_minutes)."""

    def __init__(self, job: Startable, minutes: int) -> None:
        self.job = job
        self.seconds = minutes * 60
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.seconds <= 0 or not self.job.available:
            return
        self._thread = threading.Thread(target=self._loop, name="rop-sync-timer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        next_at = time.monotonic() + self.seconds
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.job.start(full=False)
            next_at = time.monotonic() + self.seconds

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
