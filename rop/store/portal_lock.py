"""One writer per portal on PostgreSQL: a session-level advisory lock per portal.

Server mode's workers run one job at a time per portal through procrastinate's
job lock, but that lock is a job's status: a worker alive yet late with its
heartbeat (a loaded box, a long pause, a paused VM) has its running job put
back in the queue (rop.jobs.queue's stalled-job retry) and another worker
takes it, while the first one goes on. Two syncs of one portal then spend its
Bitrix24 rate limit twice and interleave its batches and watermarks.

This lock does not depend on heartbeats: ``pg_advisory_lock`` on a key of the
portal, held by the session (connection) that writes the sync's rows, for the
whole job. It lives exactly as long as that session: a process killed or a
machine lost closes it (for a lost machine the server notices through TCP
keepalives, set short on the session here), a process only slow keeps it. And
since the lock and the writes share one connection, a writer whose session
died (its lock gone to another) cannot commit anything more either.

Re-entrant: the same handle may take it again inside (a worker's job around
the library's sync); each ``with`` releases its own hold. DuckDB: nothing to
do (one process writes a file; inside it, the server runs one sync at a time).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator

from rop.store.db import Store, StoreError

log = logging.getLogger("rop.store.portal_lock")

# How long a job waits for another's sync of the same portal before it gives
# up (and its queue tries again later). The holder is a live process: a sync of
# a large portal takes minutes; an incremental one after it is cheap.
LOCK_WAIT_SECONDS = 600.0
# The server side of a held lock's connection: a machine that vanished (no FIN)
# is noticed after idle + interval * count seconds, not the OS's two hours.
KEEPALIVE = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}


class PortalBusy(StoreError):
    """Another session held the portal's lock for longer than the wait."""


def lock_key(portal: str) -> int:
    """A stable signed 64-bit key of ``portal`` (the same in every process)."""
    digest = hashlib.sha256(b"rop.portal\0" + portal.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def holders(store: Store, portal: str) -> list[int]:
    """Backend pids of the sessions holding ``portal``'s lock (none on DuckDB)."""
    if store.dialect.name != "postgres":
        return []
    key = lock_key(portal) & 0xFFFFFFFFFFFFFFFF
    rows = store.conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
        [key >> 32, key & 0xFFFFFFFF],
    ).fetchall()
    return sorted({int(pid) for (pid,) in rows})


@contextlib.contextmanager
def portal_lock(
    store: Store, portal: str, wait: float | None = None, evict: bool = False
) -> Iterator[None]:
    """Hold ``portal``'s lock on ``store``'s connection for the block.

    Waits up to ``wait`` seconds (default :data:`LOCK_WAIT_SECONDS`) for
    another holder, then raises PortalBusy.
    ``evict``: end the holder's session first (its work is unwanted: an
    uninstall that wipes the portal), which also stops its writes.
    """
    if store.dialect.name != "postgres":
        yield
        return
    _take(store, portal, LOCK_WAIT_SECONDS if wait is None else wait, evict)
    try:
        yield
    finally:
        _release(store, portal)


@contextlib.contextmanager
def if_free(store: Store, portal: str) -> Iterator[bool]:
    """Hold ``portal``'s lock for the block if no one holds it (True), else False."""
    if store.dialect.name != "postgres":
        yield True
        return
    try:
        _take(store, portal, 0, False)
    except PortalBusy:
        yield False
        return
    try:
        yield True
    finally:
        _release(store, portal)


def _release(store: Store, portal: str) -> None:
    # A dead connection took its lock with it; the pool drops it.
    with contextlib.suppress(Exception):
        store.conn.execute("SELECT pg_advisory_unlock(%s)", [lock_key(portal)])


def _take(store: Store, portal: str, wait: float, evict: bool) -> None:
    import psycopg

    key = lock_key(portal)
    conn = store.conn
    settings = ", ".join(f"set_config('{k}', '{v}', false)" for k, v in KEEPALIVE.items())
    try:
        row = conn.execute(f"SELECT pg_try_advisory_lock(%s), {settings}", [key]).fetchone()
        if row and row[0]:
            return
        if wait <= 0:
            raise PortalBusy(f"another sync of {portal} holds its lock")
        others = holders(store, portal)
        if evict and others:
            log.warning(
                "ending the sessions %s that hold the lock of %s",
                others,
                portal,
                extra={"event": "lock", "portal": portal, "state": "evicting", "holders": others},
            )
            try:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [others]
                )
            except psycopg.errors.InsufficientPrivilege:
                # Another role's session (`rop sync` as the owner): wait for it instead.
                log.warning("may not end the sessions %s: waiting for them", others)
        else:
            log.info(
                "waiting for the lock of %s (held by session %s)",
                portal,
                others,
                extra={"event": "lock", "portal": portal, "state": "waiting", "holders": others},
            )
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false)", [f"{max(1, int(wait * 1000))}ms"]
        )
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", [key])
        finally:
            conn.execute("RESET lock_timeout")
    except psycopg.errors.LockNotAvailable:
        raise PortalBusy(
            f"another sync of {portal} holds its lock: waited {wait:g} s, try again later"
        ) from None
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"the store {store.path} failed: {first}") from None
    log.info(
        "took the lock of %s",
        portal,
        extra={"event": "lock", "portal": portal, "state": "taken"},
    )
