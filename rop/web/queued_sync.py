"""Server mode's sync button for a webhook portal: a job for `rop worker`, not a thread here.

On a PostgreSQL store the web tier is stateless and may run in many
processes behind a proxy; a sync started inside one of them would hold that
process (and Bitrix24's per-portal limit) outside the workers' per-portal
lock. So the page's button, ``POST /api/sync`` included, registers the
settings' webhook for the workers (sealed in ``sync_sources``, as ``rop sync
--queue`` does) and queues the portal's sync (rop.jobs.defer: a second press
while one waits merges into it); the page follows the job through
rop.jobs.status, which any web process reads alike. This object wears the
single-process job's face (rop.web.sync.SyncJob: available, portal, status,
start, wait) so the routes and the page need no other case.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from rop.store.db import Store


class QueueProblem(Exception):
    """The sync cannot be queued; ``key`` names the page's text (rop.web.i18n) that says
    what to set or run."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class QueuedWebhookSync:
    def __init__(self, url: str, store: Store, webhook: str | None, secret: str | None) -> None:
        self.url = url
        self.store = store
        self.webhook = webhook
        self._secret = secret
        self._app: Any = None
        self._lock = threading.Lock()
        self._has_queue = False  # remembered once true: a queue is never dropped
        self.on_finish: Any = None  # unused: the report cache follows the data's version

    @property
    def available(self) -> bool:
        return bool(self.webhook)

    @property
    def portal(self) -> str | None:
        from rop.bitrix.client import parse_webhook

        try:
            return parse_webhook(self.webhook).portal if self.webhook else None
        except ValueError:
            return None

    def _queue_ready(self, cursor: Store) -> bool:
        if not self._has_queue:
            self._has_queue = bool(
                cursor.scalar("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
            )
        return self._has_queue

    def status(self) -> dict[str, Any]:
        portal = self.portal
        from rop.jobs.status import idle_status, sync_status

        if portal is None:
            return idle_status(available=False)

        with contextlib.closing(self.store.cursor()) as cursor:
            if not self._queue_ready(cursor):
                return idle_status()  # pressing the button says what is missing
            return sync_status(cursor, portal)

    def _deferrer(self) -> Any:
        with self._lock:
            if self._app is None:
                from rop.jobs.defer import deferrer

                self._app = deferrer(self.url)
            return self._app

    def _register(self, cursor: Store, portal: str) -> None:
        """Seal the webhook for the workers; without the key, `rop sync --queue` must have."""
        from rop.jobs.sources import Keys, Sources
        from rop.store.vault import Vault

        if self._secret:
            assert self.webhook
            Sources(cursor, Keys(Vault(self._secret.split(",")))).add_webhook(self.webhook)
            return
        if not cursor.query("SELECT 1 FROM sync_sources WHERE portal = ?", [portal]):
            raise QueueProblem("sync_queue_no_key")

    def start(self, full: bool = False) -> bool:
        """Queue the portal's sync; False when one of its kind already waits."""
        from rop.jobs.defer import queue_sync

        portal = self.portal
        if portal is None:
            return False
        try:
            import procrastinate  # noqa: F401
        except ImportError:
            raise QueueProblem("sync_queue_no_procrastinate") from None
        with contextlib.closing(self.store.cursor()) as cursor:
            if not self._queue_ready(cursor):
                raise QueueProblem("sync_queue_missing")
            self._register(cursor, portal)
        return queue_sync(self._deferrer(), portal, full=full)

    def wait(self, timeout: float | None = None) -> None:
        """Until no job of the portal runs or waits (or ``timeout`` seconds)."""
        from rop.jobs.status import wait_settled

        wait_settled(self.status, timeout)

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                with contextlib.suppress(Exception):
                    self._app.close()
                self._app = None
