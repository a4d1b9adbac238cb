"""Offline events in server mode: the workers poll each installed portal's queue.

With ``ROP_APP_OFFLINE_EVENTS`` the CRM events wait in each portal's offline
queue (docs/APP.md). The single-process server polls it from a thread of its
own (rop.web.appmode.offline_poll); in server mode the web tier is stateless,
so the workers do it: every ``ROP_APP_OFFLINE_POLL_SECONDS`` the periodic task
``rop.offline_poll`` (deferred once per tick whatever the number of workers)
queues one ``rop.offline`` job per installed portal. That job holds the
portal's lock like a sync (one job at a time per portal keeps its rate
limit) and merges with one already waiting (its queueing lock); it drains the
queue (rop.bitrix.offline: ``event.offline.get`` with ``clear=0``, the by-ID
sync, ``event.offline.clear``), queues the incremental sync for entries that
name no record, and refreshes the report facts when records changed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rop.bitrix.installs import INSTALLED, Installs
from rop.bitrix.offline import OfflineResult, run_drain_offline
from rop.jobs.defer import portal_lock, queue_sync
from rop.jobs.sources import Sources

if TYPE_CHECKING:
    import procrastinate

    from rop.jobs.queue import Worker

log = logging.getLogger("rop.jobs")

OFFLINE_TASK = "rop.offline"
POLL_TASK = "rop.offline_poll"


def poll_cron(seconds: float) -> str:
    """A cron line for "every ``seconds``" (a sixth field is seconds, as croniter reads it)."""
    step = max(1, round(seconds))
    if step < 60:
        return f"* * * * * */{step}"
    return f"*/{max(1, min(59, round(step / 60)))} * * * *"


def queue_offline(app: procrastinate.App, portal: str) -> bool:
    """Queue the drain of ``portal``'s offline queue; False when one already waits."""
    from procrastinate.exceptions import AlreadyEnqueued

    try:
        app.configure_task(
            OFFLINE_TASK, lock=portal_lock(portal), queueing_lock=f"offline:{portal}"
        ).defer(portal=portal)
    except AlreadyEnqueued:
        return False
    return True


def poll_round(worker: Worker, app: procrastinate.App) -> int:
    """Queue a drain for every installed portal (not those needing attention)."""
    with worker.cursor() as cursor:
        installs = Installs(cursor, worker.runtime.keys.vault).all()
    portals = sorted({i.portal for i in installs if i.state == INSTALLED})
    return sum(queue_offline(app, p) for p in portals)


def drain(worker: Worker, app: procrastinate.App, portal: str) -> OfflineResult | None:
    """Drain one portal's offline queue; None when it is no installed app portal."""
    with worker.logged("offline", portal), worker.locked(portal) as cursor:
        source = Sources(cursor, worker.runtime.keys).get(portal)
        if source is None or source.member_id is None:
            return None
        cursor.use_portal(portal)
        result = run_drain_offline(
            cursor,
            source.endpoint,
            portal=portal,
            token_provider=source.tokens,
            rate_per_second=worker.runtime.rate_per_second,
            rate_burst=worker.runtime.rate_burst,
        )
        if result.unknown:
            # Entries naming no record: the incremental sync reads every change.
            queue_sync(app, portal)
        if result.events:
            worker.after_sync(cursor, portal)
        return result


def register(app: procrastinate.App, worker: Worker, poll_seconds: float) -> None:
    """The drain task, and with ``poll_seconds`` > 0 the periodic round."""

    @app.task(name=OFFLINE_TASK)
    def drain_portal(portal: str) -> None:
        drain(worker, app, portal)

    if poll_seconds > 0:

        @app.periodic(cron=poll_cron(poll_seconds))
        @app.task(name=POLL_TASK, queueing_lock=POLL_TASK)
        def poll(timestamp: int) -> None:
            poll_round(worker, app)
