"""Offline events, polled: for a server Bitrix24's servers cannot reach.

With ``ROP_APP_OFFLINE_EVENTS`` the CRM events are bound ``event_type=offline``
(rop.bitrix.app_platform.bind_app) and wait in each portal's queue. Every
``ROP_APP_OFFLINE_POLL_SECONDS`` the single-process server drains each
installed portal's queue (rop.bitrix.offline: ``event.offline.get`` with
``clear=0``, the by-ID sync of the named records, ``event.offline.clear``)
under the server's one-writer lock, then drops the cached reports so the next
page shows the change. An entry naming no record starts the incremental sync.

:func:`poll_offline_events` runs one round over every installed portal, or
one portal. Server mode polls from the workers instead (rop.jobs.offline: a
periodic task queues one drain job per portal, under the portal's lock).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from rop.bitrix.installs import INSTALLED
from rop.bitrix.offline import OfflineResult, run_drain_offline

if TYPE_CHECKING:
    from rop.web.appmode.state import AppMode

log = logging.getLogger("rop.web.appmode.offline")


def poll_portal(mode: AppMode, member_id: str) -> OfflineResult | None:
    """Drain one installed portal's offline queue; None when it is not installed."""
    cursor = mode.store.cursor()
    try:
        install = mode.installs(cursor).get(member_id)
    finally:
        cursor.close()
    if install is None or install.state != INSTALLED:
        return None  # gone, or needing attention (its page says why): nothing to ask
    with mode.jobs.gate:
        if mode.jobs.gone(member_id):  # uninstalled meanwhile: its purge waits for the gate
            return None
        result = run_drain_offline(
            mode.store,
            install.client_endpoint,
            portal=install.portal,
            token_provider=mode.token_provider(member_id),
            rate_per_second=mode.settings.rate_per_second,
            rate_burst=mode.settings.rate_burst,
        )
    if result.unknown:
        # Entries whose data names no record: the incremental sync reads every change.
        mode.jobs.nudge(member_id)
    return result


def poll_offline_events(mode: AppMode, member_id: str | None = None) -> dict[str, OfflineResult]:
    """One round: every installed portal's queue (or ``member_id``'s), each drained.

    A portal that fails (tokens refused, the portal down) is logged and
    skipped; the others are polled. Cached reports are dropped when any
    record changed.
    """
    cursor = mode.store.cursor()
    try:
        members = [i.member_id for i in mode.installs(cursor).all() if i.active]
    finally:
        cursor.close()
    if member_id is not None:
        members = [m for m in members if m == member_id]
    done: dict[str, OfflineResult] = {}
    for member in members:
        try:
            result = poll_portal(mode, member)
        except Exception as exc:  # one portal's trouble must not stop the others'
            log.warning("offline events of member %s not polled: %s", member, exc)
            continue
        if result is not None:
            done[member] = result
    if any(r.events for r in done.values()):
        mode.changed()
    return done


class OfflinePoller:
    """The single-process server's schedule: a round every ``seconds``."""

    def __init__(self, mode: AppMode, seconds: float) -> None:
        self.mode = mode
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rop-offline-poll", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            poll_offline_events(self.mode)
            self.rounds += 1

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
