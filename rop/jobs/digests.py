"""Server mode's digests: a worker's periodic task sends what is due, every minute.

The portals are the workers' own (rop.jobs.sources): each installed app's
portal (chat on the installer's tokens, links into Bitrix24) and each
webhook portal registered by ``rop sync --queue``. Sending is
rop.digests.targets.due_digests, the same the web server's scheduler calls;
each slot is claimed once in the store, so several workers, and a web server
still sending (``ROP_DIGESTS=true``), never send a slot twice.
"""

from __future__ import annotations

from datetime import datetime

from rop.digests.run import Outcome
from rop.digests.targets import AppKeys, DigestConfig, due_digests
from rop.jobs.sources import Keys, Sources
from rop.store.db import Store

DIGESTS_TASK = "rop.digests"
DIGESTS_CRON = "* * * * *"  # every minute: a slot is at most a minute late


def send_digests(
    store: Store, keys: Keys, config: DigestConfig, now: datetime | None = None
) -> list[Outcome]:
    """Send every digest due now on every portal the workers serve."""
    cursor = store.cursor()
    try:
        sources = Sources(cursor, keys)
        hooks = []
        for (portal,) in cursor.query("SELECT portal FROM sync_sources ORDER BY portal"):
            source = sources.get(str(portal))
            if source is not None:
                hooks.append(source.endpoint)
    finally:
        cursor.close()
    app = None
    if keys.client_id and keys.client_secret:
        app = AppKeys(keys.vault, keys.client_id, keys.client_secret)
    return due_digests(store, config, app=app, webhooks=hooks, now=now)
