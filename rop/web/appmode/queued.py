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
