"""An uninstall with CLEAN=1 while the server syncs the portal (DuckDB, app mode).

The emulator answers every REST request slowly, so the full sync started over
HTTP is mid-way when the portal sends its uninstall: whatever the sync had in
flight, no row of the portal may be left once the server is idle, and nothing
after the uninstall starts a new sync of it.
"""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from rop.emulator.config import FaultConfig
from rop.emulator.faults import Faults
from tests.app_portal import Rig, app_rig, until

pytestmark = pytest.mark.timeout(300)

SLOW_SECONDS = 0.25  # every REST reply: a full sync of the small portal takes seconds


def _slow_emulator(rig: Rig, seconds: float) -> None:
    """Every REST reply of the emulator waits ``seconds`` (its slow fault, always)."""
    engine = rig.emu_app.state.engine
    faults = FaultConfig(slow_rate=1.0, slow_seconds=seconds)
    engine.config = dataclasses.replace(engine.config, faults=faults)
    engine.faults = Faults(faults)


def _uninstall(rig: Rig, member: str) -> dict[str, str]:
    """ONAPPUNINSTALL with CLEAN=1 as Bitrix24 posts it (BITRIX24_APP.md: no tokens in
    auth, the application_token saved at install). Sent by the test rather than by
    the emulator's uninstall, which also revokes the tokens: the sync must stop
    because the server stops it, not because the portal refuses it."""
    return {
        "event": "ONAPPUNINSTALL",
        "ts": str(int(time.time())),
        "data[LANGUAGE_ID]": "ru",
        "data[CLEAN]": "1",
        "auth[domain]": rig.domain,
        "auth[member_id]": member,
        "auth[application_token]": rig.state()["application_token"],
    }


def test_uninstall_with_clean_mid_sync_leaves_no_row_of_the_portal(tmp_path):
    with app_rig(tmp_path, deals=300) as rig:
        mode = rig.app.state.appmode
        member = rig.state()["member_id"]
        portal = rig.query("SELECT portal FROM app_portals")[0][0]
        url = rig.open_as(1)
        vt = url.split("vt=")[1].split("&")[0]
        sync = url.split("/report")[0] + "/api/sync?vt=" + vt
        _slow_emulator(rig, SLOW_SECONDS)
        reply = httpx.post(
            sync, json={"full": True, "wait": False}, headers={"origin": rig.rop}, timeout=30
        )
        assert reply.status_code in (200, 202), reply.text
        job = mode.jobs.job(member)
        # Mid-way: the full copy has committed batches and has more to fetch.
        assert until(
            lambda: (job.status()["progress"] or {}).get("entity") not in (None, "users"),
            30.0,
            0.05,
        )
        assert job.status()["state"] == "running"
        started = time.monotonic()
        reply = httpx.post(rig.rop + "/app/events", data=_uninstall(rig, member), timeout=30)
        assert reply.status_code == 200, reply.text
        # The event's answer does not wait for the sync (Bitrix24 drops slow handlers).
        assert time.monotonic() - started < 3.0
        # Anything arriving after the uninstall starts no sync of the portal: a
        # CRM event (refused: the portal is not installed), a re-scan's nudge
        # (it may have read the installs just before), a start.
        event = dict(_uninstall(rig, member), event="ONCRMDEALUPDATE", **{"data[FIELDS][ID]": "1"})
        del event["data[CLEAN]"]
        assert httpx.post(rig.rop + "/app/events", data=event, timeout=30).status_code == 403
        mode.jobs.nudge(member)
        assert not mode.jobs.start(member)
        # The server idle: the running sync ended, the purge done.
        job.wait(60)
        mode.jobs.wait_all(60)
        assert until(lambda: not rig.query("SELECT * FROM app_portals"), 30.0, 0.05)
        # Stopped by the server at a batch, not run to its end.
        assert "SyncCancelled" in job.status()["message"], job.status()
        print(f"uninstall -> idle: {time.monotonic() - started:.2f} s")
        tables = rig.query(
            "SELECT DISTINCT table_name FROM information_schema.columns "
            "WHERE column_name = 'portal' AND table_schema = 'main'",
        )
        assert len(tables) > 10
        left = {}
        for (table,) in tables:
            count = rig.query(f"SELECT count(*) FROM {table} WHERE portal = ?", [portal])[0][0]  # noqa: S608
            if count:
                left[table] = count
        assert left == {}, f"rows of the uninstalled portal left: {left}"
        assert mode.jobs.job(member).status()["state"] != "running"
        assert httpx.get(url, timeout=10).status_code == 403
