"""Queueing work for the workers, from any process (the CLI, a web process).

Each job names its portal; ``lock`` = the portal, so one job at a time runs
per portal whichever worker takes it (Bitrix24's rate limit is per portal
and the client's leaky bucket assumes it is alone; a job retried from a late
worker still running it waits on rop.store.portal_lock); ``queueing_lock`` = the
kind of job and the portal, so a burst asks once: a second request while one
is waiting is answered "already queued" and merges into it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rop.bitrix.changes import Changes
from rop.jobs import pending
from rop.store.db import Store

if TYPE_CHECKING:
    import procrastinate

SYNC_TASK = "rop.sync"
CHANGES_TASK = "rop.sync_changes"


def portal_lock(portal: str) -> str:
    """One running job per portal: every job of a portal takes this lock."""
    return f"portal:{portal}"


def deferrer(url: str) -> procrastinate.App:
    """An opened app that only defers (no tasks of its own): close it when done."""
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(conninfo=url, min_size=1, max_size=4)
    )
    app.open()
    return app


def queue_sync(app: procrastinate.App, portal: str, full: bool = False) -> bool:
    """Queue a sync of ``portal``; False when one of the same kind is already waiting."""
    from procrastinate.exceptions import AlreadyEnqueued

    kind = "full" if full else "sync"
    try:
        app.configure_task(
            SYNC_TASK, lock=portal_lock(portal), queueing_lock=f"{kind}:{portal}"
        ).defer(portal=portal, full=full)
    except AlreadyEnqueued:
        return False
    return True


def queue_changes(app: procrastinate.App, store: Store, portal: str, changes: Changes) -> bool:
    """Record what events named and queue the by-ID sync (merged while one waits)."""
    from procrastinate.exceptions import AlreadyEnqueued

    if not changes:
        return False
    store.use_portal(portal)  # sync_pending is the portal's (row-level security)
    pending.put(store, portal, changes)
    try:
        app.configure_task(
            CHANGES_TASK, lock=portal_lock(portal), queueing_lock=f"changes:{portal}"
        ).defer(portal=portal)
    except AlreadyEnqueued:
        return False
    return True
