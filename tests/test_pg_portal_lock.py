"""One sync at a time per portal on PostgreSQL, whatever the heartbeats say (issue 11).

procrastinate's job lock is a job's status, and the stalled-job retry puts a
live but late worker's running job back in the queue: a second worker then
syncs the portal beside the first. rop.store.portal_lock holds a session-level
advisory lock per portal on the connection that writes the sync, so the
retried job waits for the first to end. The scene with real `rop worker`
processes: the worker syncing a portal is stopped (SIGSTOP) past the stalled
timeout, its job is retried by the other, it is continued (SIGCONT); no two
of the portal's runs overlap, the emulator's bucket never refused, the store
ends exact. Then the lock itself on a real cluster: it is a session's, a
killed process frees it, a stopped one keeps it, a pooled connection never
carries it to its next user, `rop sync`'s library path waits for it, and an
uninstall with CLEAN=1 ends a running sync's session before it purges.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rop.store.db import open_store
from tests.conftest import migrated_database
from tests.pg import Cluster
from tests.sync_portal import make_portal
from tests.test_pg_workers import (
    assert_exact,
    jobs,
    keys,
    queue_database,
    wait_until,
    workers,
)
from tests.test_sync import emulate

pytest.importorskip("procrastinate")

# A slow portal, so a first sync of a small one lasts a few seconds (about 11
# requests): long enough to stop its worker in the middle, short for a test.
PORTAL_RATE = {"rate_per_second": 2.0, "burst": 2}
CLIENT_RATE = {"ROP_RATE_PER_SECOND": "1.8", "ROP_RATE_BURST": "2"}


def log_lines(log: Path, portal: str) -> list[dict[str, Any]]:
    """The JSON log lines of ``portal`` a worker wrote (jobs and lock waits)."""
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("portal") == portal:
                out.append(record)
    return out


def has(log: Path, portal: str, event: str, state: str) -> bool:
    return any(r.get("event") == event and r.get("state") == state for r in log_lines(log, portal))


def runs(url: str, portal: str) -> list[tuple[Any, ...]]:
    with open_store(url) as store:
        store.use_portal(portal)
        return store.query(
            "SELECT kind, started_at, finished_at, outcome FROM sync_runs WHERE portal = ? "
            "ORDER BY started_at",
            [portal],
        )


@pytest.mark.timeout(240)
def test_a_worker_late_with_its_heartbeat_never_syncs_beside_its_retried_job(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    from rop.jobs.defer import deferrer, queue_sync
    from rop.jobs.sources import Sources

    url = queue_database(pg_cluster)
    portal_dir = make_portal(tmp_path / "portal", deals=60, seed=3)
    with emulate(portal_dir, **PORTAL_RATE) as emu:
        with open_store(url) as store:
            portal = Sources(store, keys()).add_webhook(emu.webhook)
        app = deferrer(url)
        try:
            assert queue_sync(app, portal)
        finally:
            app.close()
        with workers(url, tmp_path, 2, **CLIENT_RATE) as procs:

            def running() -> bool:
                return any(r[3] == "running" for r in runs(url, portal))

            wait_until(running, 60, "the first sync's run")
            (first, first_log), (second, second_log) = sorted(
                procs, key=lambda p: not has(p[1], portal, "job", "started")
            )
            assert has(first_log, portal, "job", "started")
            first.send_signal(signal.SIGSTOP)  # alive, silent: its heartbeat stops
            try:
                assert running(), "the first sync ended before its worker was stopped"
                # Past the stalled timeout the other worker retries the job ...
                wait_until(lambda: has(second_log, portal, "job", "started"), 60, "the retried job")
                # ... and would sync beside the stopped one now, or waits for its lock.
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not has(
                    second_log, portal, "lock", "waiting"
                ):
                    time.sleep(0.1)
            finally:
                first.send_signal(signal.SIGCONT)  # the late worker goes on

            def both_ended() -> bool:
                return all(
                    has(log, portal, "job", "done") or has(log, portal, "job", "failed")
                    for log in (first_log, second_log)
                )

            wait_until(both_ended, 90, "both workers' ends of the job")
            wait_until(lambda: [s for _, s, _ in jobs(url)] == ["succeeded"], 30, "the job")

        # One sync of the portal at a time: no two of its runs overlap.
        logged = runs(url, portal)
        assert len(logged) == 2, logged
        for (_, _, end, _), (_, start, _, _) in zip(logged, logged[1:], strict=False):
            assert end is not None and end <= start, f"overlapping runs of {portal}: {logged}"
        assert [(kind, outcome) for kind, _, _, outcome in logged] == [
            ("full", "ok"),
            ("incremental", "ok"),
        ]
        # The retried job met the lock (the scene played as told), both jobs ended well.
        assert has(second_log, portal, "lock", "waiting")
        assert has(first_log, portal, "job", "done") and has(second_log, portal, "job", "done")
        bucket = emu.app.state.engine.bucket
        assert bucket.refused == 0, f"the portal refused {bucket.refused} requests"
        assert bucket.peak <= PORTAL_RATE["burst"]
        assert_exact(url, emu, portal_dir)


HOLDER = """
import sys, time
from rop.store.db import open_store
from rop.store.portal_lock import portal_lock
with open_store(sys.argv[1]) as store, portal_lock(store, sys.argv[2]):
    print(store.conn.info.backend_pid, flush=True)
    time.sleep(600)
"""


@contextlib.contextmanager
def holder(url: str, portal: str) -> Iterator[tuple[subprocess.Popen, int]]:
    """Another process holding ``portal``'s lock: (the process, its session's pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, portal], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip().isdigit(), f"the holder did not take the lock: {line!r}"
        yield proc, int(line)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)


def test_the_lock_is_a_sessions_a_killed_process_frees_it_a_stopped_one_keeps_it(
    pg_cluster: Cluster,
) -> None:
    from rop.store.portal_lock import PortalBusy, holders, lock_key, portal_lock

    url = migrated_database(pg_cluster)
    assert lock_key("a.example") == lock_key("a.example") != lock_key("b.example")
    with open_store(url) as store, contextlib.closing(store.cursor()) as mine:
        with holder(url, "a.example") as (proc, pid):
            assert holders(mine, "a.example") == [pid]
            with pytest.raises(PortalBusy, match="a.example"), portal_lock(mine, "a.example", 0.3):
                pass
            with portal_lock(mine, "b.example", wait=0.3):  # another portal: free
                pass
            # Stopped past any heartbeat timeout, the holder is alive: it keeps the lock.
            proc.send_signal(signal.SIGSTOP)
            time.sleep(1.0)
            with pytest.raises(PortalBusy), portal_lock(mine, "a.example", wait=0.5):
                pass
            # Killed, its session ends and the lock with it: the waiter takes it.
            proc.kill()
            started = time.monotonic()
            with portal_lock(mine, "a.example", wait=10):
                assert holders(store, "a.example") == [mine.conn.info.backend_pid]
                with portal_lock(mine, "a.example", wait=0):  # re-entrant on its session
                    pass
                assert holders(store, "a.example") == [mine.conn.info.backend_pid]
            assert time.monotonic() - started < 5
        assert holders(store, "a.example") == []
        # A pooled connection handed back holding a lock (a path that forgot to
        # unlock) holds nothing for its next user (the pool's reset).
        forgetful = store.cursor()
        forgetful.conn.execute("SELECT pg_advisory_lock(%s)", [lock_key("c.example")])
        forgetful.close()
        with portal_lock(mine, "c.example", wait=2):
            pass


def test_a_sync_waits_for_the_lock_before_its_first_request_and_facts_skip_a_busy_portal(
    tmp_path: Path, pg_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rop sync --db postgresql://` beside a worker's sync: it spends none of the
    portal's limit and logs no run until the lock is free, then syncs."""
    from rop.bitrix.sync import SyncError, run_sync
    from rop.store import portal_lock
    from rop.store.facts import ensure_facts

    url = migrated_database(pg_cluster)
    portal_dir = make_portal(tmp_path / "portal", deals=20, seed=4)
    with emulate(portal_dir, rate_per_second=50.0, burst=50) as emu:
        with holder(url, emu.key), open_store(url) as store:
            monkeypatch.setattr(portal_lock, "LOCK_WAIT_SECONDS", 0.5)
            with pytest.raises(SyncError, match=f"another sync of {emu.key}"):
                run_sync(store, emu.webhook, rate_per_second=40, rate_burst=40)
            assert emu.app.state.engine.bucket.peak == 0  # not one request
            store.use_portal(emu.key)
            assert store.query("SELECT count(*) FROM sync_runs") == [(0,)]
        with open_store(url) as store:
            result = run_sync(store, emu.webhook, rate_per_second=40, rate_burst=40)
            assert result.kind == "full"
            assert_exact(url, emu, portal_dir)
            # `rop migrate` and `rop sync` rebuild lagging facts: never beside a sync of
            # the portal (that sync's own refresh does it), and no waiting for it either.
            store.use_portal(emu.key)
            store.execute("DELETE FROM facts_state WHERE portal = ?", [emu.key])
            with holder(url, emu.key):
                assert ensure_facts(store) == []
            assert ensure_facts(store) == [emu.key]


def test_an_uninstall_with_clean_ends_the_running_syncs_session_then_purges(
    pg_cluster: Cluster,
) -> None:
    from rop.bitrix.installs import Installs
    from rop.store.portal_lock import holders

    url = migrated_database(pg_cluster)
    with open_store(url) as store:
        installs = Installs(store, keys().vault)
        installs.record(
            member_id="m1",
            domain="p.example",
            client_endpoint="https://p.example/rest/",
            server_endpoint="https://oauth.example/rest/",
            application_token="t",
            tokens=None,
            installer_id=1,
        )
        portal = installs.get("m1").portal  # type: ignore[union-attr]
        store.use_portal(portal)
        store.upsert("users", [{"portal": portal, "id": 1, "name": "Анна"}])
        with holder(url, portal) as (proc, pid):
            removed = installs.purge("m1")
            # Its session was ended under it (the process itself sleeps on).
            assert proc.poll() is None
            assert store.query("SELECT count(*) FROM pg_stat_activity WHERE pid = ?", [pid]) == [
                (0,)
            ]
            assert holders(store, portal) == []
        assert removed["users"] == 1
        store.use_portal(portal)
        assert store.query("SELECT count(*) FROM users") == [(0,)]
        assert store.query("SELECT count(*) FROM app_portals") == [(0,)]
