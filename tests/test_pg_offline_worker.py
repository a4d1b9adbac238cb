"""Server mode: the workers poll installed portals' offline events (a periodic task).

The web process on PostgreSQL starts no poller of its own; a `rop worker`
with ``ROP_APP_OFFLINE_EVENTS`` queues a drain per installed portal every
``ROP_APP_OFFLINE_POLL_SECONDS`` and a change made in the portal reaches the
store with no event ever delivered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rop.store.db import open_store
from tests.pg import Cluster
from tests.test_pg_workers import jobs, queue_database, wait_until, workers

pytest.importorskip("procrastinate")
pytestmark = pytest.mark.timeout(300)


def test_poll_cron():
    from rop.jobs.offline import poll_cron

    assert poll_cron(10) == "* * * * * */10"
    assert poll_cron(120) == "*/2 * * * *"


def test_a_worker_polls_offline_events_into_the_store(tmp_path: Path, pg_cluster: Cluster):
    from tests.app_portal import CLIENT_ID, CLIENT_SECRET, app_rigs

    url = queue_database(pg_cluster)
    with app_rigs(tmp_path, 1, deals=60, db=url, app_offline_events=True) as (rig,):
        mode = rig.app.state.appmode
        rig.emu("POST", "/_emulator/app/install", {"user_id": 1})
        assert rig.post_frame("/app/install", 1).status_code == 200
        rig.emu("POST", "/_emulator/app/finish")
        crm = [b for b in rig.state()["bindings"] if b["event"].startswith("ONCRM")]
        assert crm and all(b["offline"] == 1 and not b["handler"] for b in crm), crm
        delivered = len(rig.emu("GET", "/_emulator/stats")["deliveries"])
        app_env = {
            "ROP_APP_CLIENT_ID": CLIENT_ID,
            "ROP_APP_CLIENT_SECRET": CLIENT_SECRET,
            "ROP_APP_SECRET_KEY": "",
            "ROP_APP_OFFLINE_EVENTS": "1",
            "ROP_APP_OFFLINE_POLL_SECONDS": "2",
        }
        with open_store(url) as store:
            portal = store.query("SELECT portal FROM app_portals")[0][0]
        with workers(url, tmp_path, 2, **app_env), open_store(url) as store:
            wait_until(lambda: jobs(url)[0][1] == "succeeded", 60, "the install's full sync")
            store.use_portal(portal)
            stage = "SELECT stage_id FROM deals WHERE portal = ? AND id = ?"
            deal = store.query(
                "SELECT id FROM deals WHERE portal = ? AND stage_id = 'NEW' LIMIT 1", [portal]
            )[0][0]
            rig.emu("POST", "/_emulator/deal/update", {"id": deal, "fields": {"STAGE_ID": "WON"}})
            wait_until(
                lambda: store.query(stage, [portal, deal])[0][0] == "WON",
                30,
                "the offline change in the store",
            )
            kinds = {k for (k,) in store.query("SELECT kind FROM sync_runs")}
            # Several rounds ran, from either worker, one drain per portal per round.
            wait_until(lambda: len(jobs(url, "rop.offline")) >= 2, 20, "a second round")
        assert "events" in kinds, kinds  # the by-ID sync, not a re-scan
        drains = jobs(url, "rop.offline")
        assert {p for p, _, _ in drains} == {portal}
        assert all(s in ("succeeded", "todo", "doing") for _, s, _ in drains), drains
        assert len(jobs(url, "rop.offline_poll")) >= 2
        # Nothing was delivered online, and the web process polled nothing itself.
        assert len(rig.emu("GET", "/_emulator/stats")["deliveries"]) == delivered
        assert mode.offline is None and mode.queue is None
        # The portal's queue was cleared after the by-ID sync: nothing left to serve again.
        assert rig.emu_app.state.engine.host.events.offline == []
