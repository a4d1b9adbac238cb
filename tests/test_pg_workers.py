"""Server mode's sync workers on real PostgreSQL: real `rop worker` processes, real emulators.

The multi-portal test (issue 11): 20 emulated portals, each its own emulator
server on a free port with Bitrix24's leaky bucket on, 19 small ones and a
larger one, synced by 3 worker subprocesses sharing one queue. One worker is
killed with SIGKILL while it syncs the larger portal; in the end every
portal's store equals its portal field by field, and no emulator refused a
request for going over its rate limit. CI keeps the larger portal at a few
thousand deals; bench/bench_workers.py runs the same scene at 100k.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rop.bitrix.changes import Changes
from rop.store.db import open_store
from tests.conftest import migrated_database
from tests.pg import APP, OWNER, Cluster
from tests.sync_portal import make_portal
from tests.test_sync import Emulated, assert_store_equals_portal, emulate

pytest.importorskip("procrastinate")

KEY = "worker-test-key"
# The emulators' limit, and the client's a little under it: a worker's bucket
# and the portal's must agree, or the portal refuses (and the test sees it).
PORTAL_RATE = {"rate_per_second": 10.0, "burst": 10}
CLIENT_RATE = {"ROP_RATE_PER_SECOND": "9", "ROP_RATE_BURST": "9"}
STALLED = 3  # seconds of heartbeat silence before a killed worker's job is retried
# The larger portal's deals: 2,500 in CI. ROP_WORKERS_DEALS=100000 runs the issue's
# full scene by hand; its waits grow with it (1 s per 100 deals above CI's size:
# at 100k the scene did not end within CI's 400 s on a loaded 2-core box).
LARGE_DEALS = int(os.environ.get("ROP_WORKERS_DEALS", 2500))
EXTRA_WAIT = max(0, LARGE_DEALS - 2500) // 100


def queue_database(cluster: Cluster) -> str:
    """A migrated database with the workers' queue, as `rop migrate --app-role` leaves it."""
    import psycopg

    from rop.jobs.queue_schema import install_queue

    url = migrated_database(cluster)
    owner = url.replace(f"{APP}@", f"{OWNER}@", 1)
    with psycopg.connect(owner, autocommit=True) as conn:
        install_queue(conn, APP)
    return url


def keys() -> Any:
    from rop.jobs.sources import Keys
    from rop.store.vault import Vault

    return Keys(Vault([KEY]))


def env(url: str, **extra: str) -> dict[str, str]:
    out = dict(os.environ, ROP_DB=url, ROP_APP_SECRET_KEY=KEY, ROP_LOG_FORMAT="json")
    return {**out, **CLIENT_RATE, **extra}


@contextlib.contextmanager
def workers(
    url: str, folder: Path, count: int, **extra: str
) -> Iterator[list[tuple[subprocess.Popen, Path]]]:
    """``count`` `rop worker` processes; each one's JSON log in its own file."""
    started = []
    try:
        for n in range(count):
            log = folder / f"worker{n}.log"
            proc = subprocess.Popen(
                [sys.executable, "-m", "rop.cli", "worker", "--concurrency", "4"]
                + ["--stalled-seconds", str(STALLED), "--rescan-minutes", "0"],
                env=env(url, **extra),
                stdout=subprocess.DEVNULL,
                stderr=log.open("w"),
            )
            started.append((proc, log))
        yield started
    finally:
        for proc, _ in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # a graceful stop
        for proc, _ in started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def job_lines(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("event") == "job":
                out.append(record)
    return out


def jobs(url: str, task: str = "rop.sync") -> list[tuple[str, str, int]]:
    """(portal, status, attempts) of every job of ``task``."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT args->>'portal', status::text, attempts FROM procrastinate_jobs "
            "WHERE task_name = %s ORDER BY id",
            [task],
        ).fetchall()
    return [(str(p), str(s), int(a)) for p, s, a in rows]


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def assert_exact(url: str, emu: Emulated, portal_dir: Path) -> None:
    with open_store(url) as store:
        store.use_portal(emu.key)
        assert_store_equals_portal(store, emu, portal_dir)


@pytest.fixture(scope="module")
def portal_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("portals")
    return {
        "small": make_portal(root / "small", deals=40, seed=1),
        "large": make_portal(root / "large", deals=LARGE_DEALS),
    }


@pytest.mark.slow
@pytest.mark.timeout(600 + EXTRA_WAIT)
def test_twenty_portals_by_three_workers_one_killed_mid_job(
    tmp_path: Path, pg_cluster: Cluster, portal_dirs: dict[str, Path]
) -> None:
    from rop.jobs.defer import deferrer, queue_sync
    from rop.jobs.sources import Sources

    url = queue_database(pg_cluster)
    with contextlib.ExitStack() as stack:
        emus = [stack.enter_context(emulate(portal_dirs["large"], **PORTAL_RATE))]
        emus += [
            stack.enter_context(emulate(portal_dirs["small"], **PORTAL_RATE)) for _ in range(19)
        ]
        large = emus[0]
        # 19 portals registered and queued through the library, one through the CLI.
        with open_store(url) as store:
            sources = Sources(store, keys())
            app = deferrer(url)
            try:
                for emu in emus[:-1]:
                    assert queue_sync(app, sources.add_webhook(emu.webhook))
                # A second request while the first waits merges into it.
                assert not queue_sync(app, large.key)
            finally:
                app.close()
        cli = subprocess.run(
            [sys.executable, "-m", "rop.cli", "sync", "--queue", "--webhook", emus[-1].webhook],
            env=env(url),
            capture_output=True,
            text=True,
        )
        assert cli.returncode == 0, cli.stderr
        assert "queued for the workers" in cli.stdout
        assert len(jobs(url)) == 20

        with workers(url, tmp_path, 3) as procs:

            def large_started() -> tuple[subprocess.Popen, Path] | None:
                for proc, log in procs:
                    if any(
                        r.get("portal") == large.key and r["state"] == "started"
                        for r in job_lines(log)
                    ):
                        return proc, log
                return None

            wait_until(lambda: large_started() is not None, 60, "the large portal's sync")
            victim, victim_log = large_started()  # type: ignore[misc]
            time.sleep(1.5)  # mid-job: some batches committed, more to come
            assert (large.key, "doing", 0) in jobs(url), "the large sync ended too soon to kill"
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            assert not any(
                r.get("portal") == large.key and r["state"] != "started"
                for r in job_lines(victim_log)
            ), "the killed worker finished its job: nothing was interrupted"

            def all_done() -> bool:
                return all(s == "succeeded" for _, s, _ in jobs(url)) and len(jobs(url)) >= 20

            wait_until(all_done, 400 + EXTRA_WAIT, "every portal synced")
            survivors = [log for proc, log in procs if proc is not victim]
            finished = [
                r for log in survivors for r in job_lines(log)
                if r.get("portal") == large.key and r["state"] == "done"
            ]  # fmt: skip
            assert finished, "the large portal's job was not retried by another worker"
            # Each portal synced once (the large one twice: the killed try and its retry).
            by_portal: dict[str, list[tuple[str, str, int]]] = {}
            for job in jobs(url):
                by_portal.setdefault(job[0], []).append(job)
            assert sorted(by_portal) == sorted(e.key for e in emus)
            assert by_portal[large.key][0][2] >= 1  # retried: the attempt counted

        for emu in emus:
            assert_exact(url, emu, portal_dirs["large" if emu is large else "small"])
            bucket = emu.app.state.engine.bucket
            assert bucket.refused == 0, f"{emu.key} refused {bucket.refused} requests"
            assert bucket.peak <= PORTAL_RATE["burst"]
        # One job at a time per portal: no two of a portal's runs overlap.
        with open_store(url) as store:
            for emu in emus:
                store.use_portal(emu.key)
                runs = store.query(
                    "SELECT started_at, finished_at FROM sync_runs WHERE portal = ? "
                    "ORDER BY started_at",
                    [emu.key],
                )
                for (_, end), (start, _) in zip(runs, runs[1:], strict=False):
                    assert end is None or end <= start, f"overlapping runs of {emu.key}"


def test_a_burst_of_events_is_one_job_and_a_worker_reads_every_record(
    tmp_path: Path, pg_cluster: Cluster, portal_dirs: dict[str, Path]
) -> None:
    from rop.jobs.defer import deferrer, queue_changes, queue_sync
    from rop.jobs.sources import Sources

    url = queue_database(pg_cluster)
    with emulate(portal_dirs["small"], **PORTAL_RATE) as emu:
        with open_store(url) as store:
            portal = Sources(store, keys()).add_webhook(emu.webhook)
            app = deferrer(url)
            try:
                queue_sync(app, portal)
                with workers(url, tmp_path, 1):
                    wait_until(
                        lambda: [s for _, s, _ in jobs(url)] == ["succeeded"], 60, "the first sync"
                    )
                # Records change; their events arrive in a burst while no worker runs.
                p = emu.portal
                new = p.add("deal", {"TITLE": "Новая", "STAGE_ID": "NEW", "CATEGORY_ID": "0"})
                p.update("deal", 5, {"TITLE": "Изменена"})
                p.delete("deal", 7)
                p.update("lead", 3, {"STATUS_ID": "JUNK"})
                burst = [("deals", new, False), ("deals", 5, False), ("deals", 7, True)]
                burst += [("leads", 3, False), ("deals", 5, False)]
                queued = []
                for entity, rid, gone in burst:
                    changes = Changes()
                    (changes.delete if gone else changes.change)(entity, rid)
                    with contextlib.closing(store.cursor()) as cursor:
                        queued.append(queue_changes(app, cursor, portal, changes))
            finally:
                app.close()
        assert queued == [True, False, False, False, False]  # merged into one job
        assert len(jobs(url, "rop.sync_changes")) == 1
        with workers(url, tmp_path, 1):
            wait_until(
                lambda: [s for _, s, _ in jobs(url, "rop.sync_changes")] == ["succeeded"],
                60,
                "the event job",
            )
        assert_exact(url, emu, portal_dirs["small"])
        with open_store(url) as store:
            store.use_portal(portal)
            assert store.query("SELECT count(*) FROM sync_pending") == [(0,)]
            kinds = store.query("SELECT kind FROM sync_runs ORDER BY id")
        assert [k for (k,) in kinds] == ["full", "events"]


def test_pending_rows_survive_a_failed_job_and_newer_events(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    """done() forgets only what the sync read: an event renewed meanwhile stays."""
    from rop.jobs import pending

    url = queue_database(pg_cluster)
    with open_store(url) as store:
        store.use_portal("p.example")
        first = Changes()
        first.change("deals", 1)
        first.change("deals", 2)
        pending.put(store, "p.example", first)
        changes, taken = pending.take(store, "p.example")
        assert changes.changed == {"deals": {1, 2}}
        time.sleep(0.01)
        again = Changes()
        again.change("deals", 2)  # a newer event for deal 2 during the job
        pending.put(store, "p.example", again)
        pending.done(store, "p.example", taken)
        left, _ = pending.take(store, "p.example")
        assert left.changed == {"deals": {2}}
        # Another portal's session sees none of it, even asking for it by name (RLS).
        store.use_portal("q.example")
        assert store.query("SELECT count(*) FROM sync_pending") == [(0,)]
        assert not pending.take(store, "p.example")[0]


def test_worker_refuses_a_file_store_and_a_missing_key(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rop.cli import cli

    out = CliRunner().invoke(cli, ["worker", "--db", str(tmp_path / "x.duckdb")])
    assert out.exit_code == 2 and "postgresql://" in out.output
    out = CliRunner(env={"ROP_APP_SECRET_KEY": "", "ROP_APP_CLIENT_SECRET": ""}).invoke(
        cli, ["worker", "--db", "postgresql://nobody@127.0.0.1:1/x"]
    )
    assert out.exit_code == 2 and "ROP_APP_SECRET_KEY" in out.output


def test_app_mode_on_postgres_install_and_events_become_worker_jobs(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    """An installed portal in server mode: the install queues a full sync, an event in
    the portal becomes a by-ID job, a `rop worker` runs both; the web process syncs nothing."""
    from tests.app_portal import CLIENT_ID, CLIENT_SECRET, app_rigs

    url = queue_database(pg_cluster)
    with app_rigs(tmp_path, 1, deals=60, db=url) as (rig,):
        assert rig.app.state.appmode.queued is not None
        rig.emu("POST", "/_emulator/app/install", {"user_id": 1})
        page = rig.post_frame("/app/install", 1)
        assert page.status_code == 200, page.text
        rig.emu("POST", "/_emulator/app/finish")
        assert [(t, s) for _, s, _ in jobs(url) for t in ["rop.sync"]] == [("rop.sync", "todo")]
        # The worker has the app's settings, as every web process does.
        app_env = {
            "ROP_APP_CLIENT_ID": CLIENT_ID,
            "ROP_APP_CLIENT_SECRET": CLIENT_SECRET,
            "ROP_APP_SECRET_KEY": "",
        }
        with open_store(url) as store:
            portal = store.query("SELECT portal FROM app_portals")[0][0]
        with workers(url, tmp_path, 1, **app_env):
            wait_until(lambda: jobs(url)[0][1] == "succeeded", 60, "the install's full sync")
            with open_store(url) as store:
                store.use_portal(portal)
                deal = store.query(
                    "SELECT id FROM deals WHERE portal = ? AND stage_id = 'NEW' LIMIT 1",
                    [portal],
                )[0][0]

                def stage() -> str:
                    return str(
                        store.query(
                            "SELECT stage_id FROM deals WHERE portal = ? AND id = ?",
                            [portal, deal],
                        )[0][0]
                    )

                rig.emu(
                    "POST", "/_emulator/deal/update", {"id": deal, "fields": {"STAGE_ID": "WON"}}
                )
                wait_until(lambda: stage() == "WON", 30, "the event's change in the store")
                kinds = {k for (k,) in store.query("SELECT kind FROM sync_runs")}
        assert "events" in kinds, kinds
        assert [s for _, s, _ in jobs(url, "rop.sync_changes")] == ["succeeded"]
        # The web process ran no sync of its own: every run came from the worker's jobs.
        assert rig.app.state.appmode.queue is None
        # Uninstalled with CLEAN=1: every row of the portal goes (row-level security on).
        rig.emu("POST", "/_emulator/app/uninstall", {"clean": True})
        with open_store(url) as store:
            wait_until(lambda: not store.query("SELECT * FROM app_portals"), 10, "the uninstall")
            store.use_portal(portal)
            for table in ("deals", "leads", "users", "sync_runs", "sync_state", "sync_pending"):
                assert store.query(f"SELECT count(*) FROM {table}") == [(0,)], table


def test_migrate_creates_the_job_queue_once_and_a_worker_needs_it(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    from click.testing import CliRunner

    from rop.cli import cli

    bare = migrated_database(pg_cluster)  # migrated, but without the queue
    runner = CliRunner(env={"ROP_APP_SECRET_KEY": KEY})
    out = runner.invoke(cli, ["worker", "--db", bare])
    assert out.exit_code == 2 and "has no job queue" in out.output and "rop migrate" in out.output
    owner = bare.replace(f"{APP}@", f"{OWNER}@", 1)
    first = runner.invoke(cli, ["migrate", "--db", owner, "--app-role", APP])
    assert first.exit_code == 0, first.output
    assert "job queue was created" in first.output
    again = runner.invoke(cli, ["migrate", "--db", owner, "--app-role", APP])
    assert again.exit_code == 0 and "job queue" not in again.output
    # The application role may queue work now (grants on the queue's tables).
    out = runner.invoke(
        cli, ["sync", "--queue", "--db", bare, "--webhook", "https://a.example/rest/1/tok/"]
    )
    assert out.exit_code == 0, out.output
    assert jobs(bare) == [("a.example", "todo", 0)]


def test_a_rescan_queues_every_portal_once(pg_cluster: Cluster) -> None:
    from rop.jobs.defer import deferrer
    from rop.jobs.queue import Runtime, Worker, rescan_cron
    from rop.jobs.sources import Sources

    url = queue_database(pg_cluster)
    with open_store(url) as store:
        for host in ("a.example", "b.example"):
            Sources(store, keys()).add_webhook(f"https://{host}/rest/1/tok/")
    worker = Worker(Runtime(db=url, keys=keys(), rescan_minutes=15))
    app = deferrer(url)
    try:
        assert worker.rescan(app) == 2
        assert worker.rescan(app) == 0  # both still waiting: merged
    finally:
        app.close()
        worker.close()
    assert sorted(jobs(url)) == [("a.example", "todo", 0), ("b.example", "todo", 0)]
    assert rescan_cron(15) == "*/15 * * * *" and rescan_cron(120) == "0 */2 * * *"
