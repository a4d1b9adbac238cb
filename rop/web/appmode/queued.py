"""Server mode (a PostgreSQL store): installed portals' syncs go to the workers' queue.

In one process (DuckDB) the app mode syncs in threads of its own
(rop.bitrix.event_queue, PortalJobs). With a postgresql:// store the web tier
is stateless and may run in many processes, so an event or an install
queues a job for `rop worker` instead (rop.jobs.defer): the records an event
names wait in ``sync_pending``, and a burst of them for one portal is one
job. The periodic re-scans are the workers' too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from rop.bitrix.changes import Changes
from rop.bitrix.installs import Installs
from rop.store.db import Store
from rop.store.vault import Vault

log = logging.getLogger("rop.web.appmode")


class QueuedSyncs:
    def __init__(self, url: str, store: Store, vault: Vault) -> None:
        self.url = url
        self.store = store
        self.vault = vault
        self._app: Any = None
        self._lock = threading.Lock()

    def _queue(self) -> Any:
        with self._lock:
            if self._app is None:
                from rop.jobs.defer import deferrer

                self._app = deferrer(self.url)
            return self._app

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                with contextlib.suppress(Exception):
                    self._app.close()
                self._app = None

    def _portal(self, cursor: Store, member_id: str) -> str | None:
        install = Installs(cursor, self.vault).get(member_id)
        return install.portal if install is not None and install.active else None

    def sync(self, member_id: str, full: bool = False) -> bool:
        """Queue a sync of the member's portal; False if none is installed or one waits."""
        from rop.jobs.defer import queue_sync

        with contextlib.closing(self.store.cursor()) as cursor:
            portal = self._portal(cursor, member_id)
        if portal is None:
            return False
        return queue_sync(self._queue(), portal, full=full)

    def changes(self, member_id: str, changes: Changes) -> bool:
        """Record what an event named and queue the by-ID sync (merged while one waits)."""
        from rop.jobs.defer import queue_changes

        with contextlib.closing(self.store.cursor()) as cursor:
            portal = self._portal(cursor, member_id)
            if portal is None:
                return False
            return queue_changes(self._queue(), cursor, portal, changes)


class QueuedJob:
    """An installed portal's sync as the workers run it (rop.jobs.status), with
    the single-process job's face (rop.web.sync.SyncJob) for the pages and
    ``/api/sync``: this web process syncs nothing itself, any other process may
    have queued the job and any worker may be running it."""

    def __init__(self, queued: QueuedSyncs, member_id: str) -> None:
        self.queued = queued
        self.member_id = member_id
        with contextlib.closing(queued.store.cursor()) as cursor:
            self.portal = queued._portal(cursor, member_id)

    @property
    def available(self) -> bool:
        return self.portal is not None

    def status(self) -> dict[str, Any]:
        from rop.jobs.status import idle_status, sync_status

        if self.portal is None:
            return idle_status(available=False)
        with contextlib.closing(self.queued.store.cursor()) as cursor:
            return sync_status(cursor, self.portal)

    def start(self, full: bool = False) -> bool:
        """Queue a sync; False when one of its kind already waits."""
        return self.queued.sync(self.member_id, full=full)

    def wait(self, timeout: float | None = None) -> None:
        """Until no job of the portal runs or waits (or ``timeout`` seconds)."""
        from rop.jobs.status import wait_settled

        wait_settled(self.status, timeout)
