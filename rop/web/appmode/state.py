"""What application mode holds while the server runs: keys, installed
portals' sync jobs, and where events go."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rop.bitrix.client import BitrixClient
from rop.bitrix.installs import Installs
from rop.bitrix.oauth import PortalTokens
from rop.config import Settings
from rop.store.db import Store, is_url
from rop.store.vault import Vault
from rop.web.appmode.queued import QueuedJob, QueuedSyncs
from rop.web.appmode.viewer_token import ViewerTokens
from rop.web.sync import SyncCancelled, SyncJob

log = logging.getLogger("rop.web.appmode")


@dataclass(frozen=True)
class AppViewer:
    """Who is looking, set on the request by the gate from a valid viewer token."""

    member_id: str
    portal: str
    user_id: int
    admin: bool


class PortalJobs:
    """One sync job per installed portal; one sync runs at a time in the process.

    Every writer of a portal's rows in this process (its sync, the event
    queue's by-ID sync, the offline drain, an uninstall's purge) holds
    ``gate``; a portal uninstalled (``uninstall``) is ``gone``: its running sync
    is cancelled at its next batch and nothing syncs it again, which each
    writer checks once it holds the gate, so a CLEAN=1 purge that takes the
    gate after them is the portal's last write.
    """

    def __init__(self, mode: AppMode, store: Store, on_finish: Callable[[], None]) -> None:
        self.mode = mode
        self.store = store
        self.on_finish = on_finish
        self._jobs: dict[str, SyncJob] = {}
        self._again: set[str] = set()
        self._gone: set[str] = set()  # uninstalled since the process started (or reinstalled)
        self._purges: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.gate = threading.Lock()  # DuckDB: one writer at a time is the simple, safe choice

    def job(self, member_id: str) -> SyncJob | QueuedJob:
        if self.mode.queued is not None:
            # Server mode: what the workers do, read from the queue and the store.
            return QueuedJob(self.mode.queued, member_id)
        with self._lock:
            job = self._jobs.get(member_id)
            if job is None:
                cursor = self.store.cursor()
                try:
                    install = Installs(cursor, self.mode.vault).get(member_id)
                finally:
                    cursor.close()
                live = install is not None and install.active and member_id not in self._gone
                endpoint = install.client_endpoint if install and live else None
                job = SyncJob(self.store, endpoint, runner=self._runner(member_id))
                job.on_finish = lambda: self._finished(member_id)
                self._jobs[member_id] = job
            return job

    def forget(self, member_id: str) -> None:
        """(Re)installed: drop a job made before, with no endpoint; the portal syncs again."""
        with self._lock:
            self._gone.discard(member_id)
            job = self._jobs.pop(member_id, None)
        if job is not None:
            job.webhook = None  # no new runs; a running one ends on its own

    def gone(self, member_id: str) -> bool:
        """Uninstalled: nothing may sync the portal (checked under ``gate``)."""
        with self._lock:
            return member_id in self._gone

    def uninstall(self, member_id: str, purge: Callable[[], Any] | None = None) -> None:
        """The portal is uninstalled: from now no sync of it starts (an event, a
        re-scan, the page) and the running one is cancelled at its next batch.
        ``purge`` (CLEAN=1) then runs under ``gate`` in a thread of its own, once
        the sync has stopped, so the event's answer does not wait for it."""
        with self._lock:
            self._gone.add(member_id)
            self._again.discard(member_id)
            # Kept (not popped): wait_all waits for it, the page sees it stopped.
            job = self._jobs.get(member_id)
        if job is not None:
            job.webhook = None
            job.cancel()
        if purge is None:
            return
        thread = threading.Thread(
            target=self._purge, args=(member_id, purge), name="rop-app-purge", daemon=True
        )
        with self._lock:
            self._purges = [t for t in self._purges if t.is_alive()] + [thread]
        thread.start()

    def _purge(self, member_id: str, purge: Callable[[], Any]) -> None:
        with self.gate:  # after the cancelled sync (or an event's) has stopped
            if not self.gone(member_id):
                log.info("member %s installed again before its purge: kept", member_id)
                return
            try:
                removed = purge()
            except Exception:  # logged; the server stays up
                log.exception("purge of member %s failed", member_id)
                return
        log.info("uninstalled with CLEAN=1 from member %s: %s", member_id, removed)

    def start(self, member_id: str, full: bool = False) -> bool:
        if self.mode.queued is not None:  # server mode: a job for the workers
            return self.mode.queued.sync(member_id, full=full)
        return self.job(member_id).start(full=full)

    def nudge(self, member_id: str) -> None:
        """A change arrived: sync now, or once more after the running sync."""
        if self.mode.queued is not None:
            self.mode.queued.sync(member_id)
            return
        job = self.job(member_id)
        if not job.available:
            return
        if not job.start(full=False) and not self.gone(member_id):
            with self._lock:
                self._again.add(member_id)

    def _finished(self, member_id: str) -> None:
        self.on_finish()
        with self._lock:
            again = member_id in self._again and member_id not in self._gone
            self._again.discard(member_id)
        if again:
            self.job(member_id).start(full=False)

    def _runner(self, member_id: str) -> Callable[..., Any]:
        mode = self.mode

        def run(store: Store, endpoint: str, *, full: bool = False, progress: Any = None) -> Any:
            from rop.bitrix.sync import run_sync

            with self.gate:
                if self.gone(member_id):  # uninstalled while this run waited for the gate
                    raise SyncCancelled("the portal was uninstalled")
                return run_sync(
                    store,
                    endpoint,
                    full=full,
                    progress=progress,
                    rate_per_second=mode.settings.rate_per_second,
                    rate_burst=mode.settings.rate_burst,
                    token_provider=mode.token_provider(member_id),
                )

        return run

    def wait_all(self, timeout: float) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
            purges = list(self._purges)
        for job in jobs:
            job.wait(timeout)
        for thread in purges:
            thread.join(timeout)


EventSink = Callable[[str, str, dict[str, Any]], None]


class AppMode:
    """Application mode's parts, built by ``create_app`` when the app settings are set."""

    def __init__(self, settings: Settings, store: Store, on_change: Callable[[], None]) -> None:
        assert settings.app_client_id and settings.app_client_secret and settings.app_public_url
        self.settings = settings
        self.client_id = settings.app_client_id
        self._client_secret = settings.app_client_secret
        self.public_url = settings.app_public_url
        keys = (settings.app_secret_key or settings.app_client_secret).split(",")
        self.vault = Vault(keys)
        self.viewers = ViewerTokens(keys, settings.app_viewer_token_minutes * 60)
        self.auth_hosts = {
            h.strip().lower() for h in settings.app_auth_servers.split(",") if h.strip()
        }
        self.store = store
        self.jobs = PortalJobs(self, store, on_change)
        # Checked events go here (member_id, event name, data): records an
        # event names are re-read by ID through the per-portal queue
        # (rop.bitrix.event_queue); anything else starts an incremental sync.
        self.events: EventSink = self._default_events
        self._on_change = on_change
        self.queue: Any = None
        # Server mode (a postgresql:// store): syncs are jobs for `rop worker`.
        self.queued: QueuedSyncs | None = None
        if is_url(settings.db):
            self.queued = QueuedSyncs(str(settings.db), store, self.vault)
        self.offline: Any = None  # the offline-event poller (ROP_APP_OFFLINE_EVENTS)
        # The viewer's rights come from Bitrix24 with the viewer's own token
        # (rop.bitrix.viewer_rights): the frame's AUTH_ID, kept in memory
        # only (never stored), for the first work-out and background refreshes.
        # So only the process a frame was posted to can refresh that viewer's
        # grant; any other serves the stored grant as it is (docs/SERVER.md).
        self._frame_auth: dict[tuple[str, int], tuple[str, str]] = {}
        self._grant_lock = threading.Lock()
        from rop.bitrix.viewer_rights import GrantCache

        self.grants = GrantCache(store, self._refresh_grant, ready=self._knows_viewer)
        self._stopping = threading.Event()

    def start(self) -> None:
        if self.queued is not None:
            return  # the workers sync, merge events and re-scan (rop.jobs)
        from rop.bitrix.event_queue import EventQueue

        self.queue = EventQueue(
            self._sync_changes,
            on_synced=lambda _member, _result: self._on_change(),
            lock=self.jobs.gate,
        )
        self.queue.start()
        if self.settings.app_offline_events:
            from rop.web.appmode.offline_poll import OfflinePoller

            self.offline = OfflinePoller(self, self.settings.app_offline_poll_seconds)
            self.offline.start()
        # Bitrix24 never retries an event: the periodic incremental sync of
        # every installed portal stays the safety net (ROP_SYNC_INTERVAL_MINUTES).
        minutes = self.settings.sync_interval_minutes
        if minutes > 0:
            self._rescan = threading.Thread(
                target=self._rescan_loop, args=(minutes * 60.0,), name="rop-app-rescan", daemon=True
            )
            self._rescan.start()

    def _rescan_loop(self, seconds: float) -> None:
        while not self._stopping.wait(seconds):
            cursor = self.store.cursor()
            try:
                members = [i.member_id for i in self.installs(cursor).all() if i.active]
            finally:
                cursor.close()
            for member_id in members:
                self.jobs.nudge(member_id)

    def stop(self) -> None:
        self._stopping.set()
        if self.queued is not None:
            self.queued.close()
        if self.offline is not None:
            self.offline.stop()
        if self.queue is not None:
            self.queue.stop()
        self.jobs.wait_all(timeout=30)

    def _sync_changes(self, member_id: str, changes: Any) -> Any:
        from rop.bitrix.sync_ids import run_sync_changes

        cursor = self.store.cursor()
        try:
            install = self.installs(cursor).get(member_id)
            # The event queue holds the gate here: an uninstall's purge waits for us.
            if install is None or not install.active or self.jobs.gone(member_id):
                return None
            return run_sync_changes(
                cursor,
                install.client_endpoint,
                changes,
                portal=install.portal,
                token_provider=self.token_provider(member_id),
                rate_per_second=self.settings.rate_per_second,
                rate_burst=self.settings.rate_burst,
            )
        finally:
            cursor.close()

    def purge(self, member_id: str) -> dict[str, int]:
        """CLEAN=1: every row of the portal (``Installs.purge``), on a cursor of its own."""
        cursor = self.store.cursor()
        try:
            return self.installs(cursor).purge(member_id)
        finally:
            cursor.close()

    def changed(self) -> None:
        """A portal's data changed outside a sync job: drop the cached reports."""
        self._on_change()

    def __repr__(self) -> str:  # never show the secret, whatever prints us
        return f"AppMode(client_id={self.client_id!r}, public_url={self.public_url!r})"

    def installs(self, store: Store) -> Installs:
        return Installs(store, self.vault)

    def trusted_auth_server(self, server_endpoint: str) -> bool:
        parts = urlsplit(server_endpoint)
        host = parts.netloc.lower()
        if host not in self.auth_hosts:
            return False
        # Loopback auth servers may speak plain http (the emulator, tests).
        return parts.scheme == "https" or (
            parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        )

    def token_provider(self, member_id: str) -> PortalTokens:
        return PortalTokens(self.store, self.vault, member_id, self.client_id, self._client_secret)

    def portal_client(self, client_endpoint: str, member_id: str) -> BitrixClient:
        """A REST client on the installer's stored tokens (refreshed and persisted as needed)."""
        return BitrixClient(
            client_endpoint,
            rate_per_second=self.settings.rate_per_second,
            burst=self.settings.rate_burst,
            token_provider=self.token_provider(member_id),
        )

    def remember_viewer(self, member_id: str, portal: str, viewer: int, auth: str) -> None:
        with self._grant_lock:
            self._frame_auth[(portal, viewer)] = (member_id, auth)

    def _knows_viewer(self, portal: str, viewer: int) -> bool:
        with self._grant_lock:
            return (portal, viewer) in self._frame_auth

    def ensure_grant(self, portal: str, viewer: int) -> bool:
        """The viewer's grant exists (worked out now if it did not); False when it
        cannot be worked out (no frame token known: the viewer must open the app
        again). A stale grant is refreshed in the background."""
        return self.grants.ensure(portal, viewer) != "missing"

    def _refresh_grant(self, portal: str, viewer: int) -> None:
        from rop.bitrix.viewer_rights import refresh_grant

        with self._grant_lock:
            member_id, auth = self._frame_auth[(portal, viewer)]

        async def frame_token(_refresh: bool) -> str:
            return auth

        cursor = self.store.cursor()
        try:
            install = self.installs(cursor).get(member_id)
            if install is None or not install.active:
                return
            refresh_grant(
                cursor,
                install.client_endpoint,
                portal,
                viewer,
                frame_token,
                rate_per_second=self.settings.rate_per_second,
                rate_burst=self.settings.rate_burst,
            )
        finally:
            cursor.close()
        self._on_change()  # cached reports of the old scope go

    def frame_ancestors(self) -> list[str]:
        """Origins allowed to frame our pages (CSP frame-ancestors): installed portals."""
        cursor = self.store.cursor()
        try:
            return sorted({i.origin for i in self.installs(cursor).all() if i.active})
        finally:
            cursor.close()

    def url(self, path: str) -> str:
        return self.public_url + path

    def _default_events(self, member_id: str, event: str, body: dict[str, Any]) -> None:
        from rop.bitrix.events import EventRejected, parse_event

        try:
            parsed = parse_event(body)
        except EventRejected:
            parsed = None
        if parsed is not None and parsed.supported and self.queued is not None:
            self.queued.changes(member_id, parsed.changes())
        elif parsed is not None and parsed.supported and self.queue is not None:
            self.queue.put(member_id, parsed.changes())
        elif event.startswith(("ONCRM", "ONVOXIMPLANT")):
            self.jobs.nudge(member_id)
