"""Server mode: the app's status page and ``/api/sync`` show what the workers do.

The web process syncs nothing itself on PostgreSQL; its own job object stays
idle forever, so the page must read the queue (procrastinate_jobs) and the
store's sync log instead: waiting, running with progress, done.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.pg import Cluster
from tests.test_pg_workers import jobs, queue_database, workers

pytest.importorskip("procrastinate")


def test_the_status_page_follows_the_workers_job(tmp_path: Path, pg_cluster: Cluster) -> None:
    from tests.app_portal import CLIENT_ID, CLIENT_SECRET, _attr, app_rigs

    url = queue_database(pg_cluster)
    with app_rigs(tmp_path, 1, deals=300, db=url) as (rig,):
        rig.emu("POST", "/_emulator/app/install", {"user_id": 1})
        page = rig.post_frame("/app/install", 1)
        assert page.status_code == 200, page.text
        rig.emu("POST", "/_emulator/app/finish")
        assert [s for _, s, _ in jobs(url)] == ["todo"]
        # No worker yet: the install's job waits, and the page says a copy is under way.
        assert 'data-state="running"' in page.text
        sync_url = rig.rop + _attr(page.text, "data-sync-url")
        waiting = httpx.get(sync_url, timeout=30).json()
        assert waiting["state"] == "running" and waiting["queued"] is True
        assert waiting["full"] is True and waiting["runs"] == 0
        # Asking again while it waits merges into the waiting job.
        again = httpx.post(
            sync_url, json={"full": True, "wait": False}, headers={"origin": rig.rop}, timeout=30
        )
        assert again.status_code == 409 and again.json()["state"] == "running"
        assert len(jobs(url)) == 1

        app_env = {
            "ROP_APP_CLIENT_ID": CLIENT_ID,
            "ROP_APP_CLIENT_SECRET": CLIENT_SECRET,
            "ROP_APP_SECRET_KEY": "",
            # Slow enough that the copy can be watched while it runs.
            "ROP_RATE_PER_SECOND": "3",
            "ROP_RATE_BURST": "2",
        }
        seen = []
        with workers(url, tmp_path, 1, **app_env):
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                status = httpx.get(sync_url, timeout=30).json()
                seen.append(status)
                if status["state"] != "running":
                    break
                time.sleep(0.1)
        running = [s for s in seen if s["state"] == "running" and not s["queued"] and s["progress"]]
        assert running, seen[-3:]
        # The progress is the store's: an entity of the copy and its rows so far.
        assert {s["progress"]["entity"] for s in running} & {"deals", "leads", "calls", "users"}
        assert all(s["progress"]["done"] >= 0 for s in running)
        final = seen[-1]
        assert final["state"] == "done", final
        assert final["runs"] == 1 and final["finished_at"] is not None
        assert [s for _, s, _ in jobs(url)] == ["succeeded"]
        # The web process ran nothing of its own.
        assert rig.app.state.appmode.queue is None
