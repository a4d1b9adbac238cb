"""Offline events: a server Bitrix24 cannot reach polls the portal's queue itself."""

from __future__ import annotations

import time

import pytest

from rop.web.appmode.offline_poll import poll_offline_events
from tests.app_portal import app_rig, won_deals

pytestmark = pytest.mark.timeout(300)


def test_a_change_reaches_the_report_through_the_offline_queue(tmp_path):
    with app_rig(tmp_path, app_offline_events=True, app_offline_poll_seconds=1) as rig:
        bindings = rig.state()["bindings"]
        crm = [b for b in bindings if b["event"].startswith("ONCRM")]
        assert crm and all(b["offline"] == 1 and not b["handler"] for b in crm), crm
        # No CRM event is delivered online: the server never hears of the change.
        delivered = len(rig.emu("GET", "/_emulator/stats")["deliveries"])

        report = rig.open_as(1) + "&period=this_year"
        portal = rig.query("SELECT portal FROM app_portals")[0][0]
        deal = rig.query(
            "SELECT id FROM deals WHERE portal = ? AND stage_id = 'NEW' LIMIT 1", [portal]
        )[0][0]
        won_before = won_deals(report, timeout=60)
        won = {"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S"}
        rig.emu("POST", "/_emulator/deal/update", {"id": deal, "fields": won, "history": True})
        started = time.monotonic()
        while time.monotonic() - started < 10 and won_deals(report, timeout=60) == won_before:
            time.sleep(0.2)
        assert won_deals(report, timeout=60) == won_before + 1, (
            "the change did not reach the report in 10 s"
        )
        print(f"change -> report (offline, 1 s poll): {time.monotonic() - started:.2f} s")
        assert len(rig.emu("GET", "/_emulator/stats")["deliveries"]) == delivered
        # The by-ID sync, not a re-scan; and the queue was cleared after it.
        kinds = {k for (k,) in rig.query("SELECT kind FROM sync_runs WHERE portal = ?", [portal])}
        assert "events" in kinds, kinds
        mode = rig.app.state.appmode
        mode.offline.stop()
        assert poll_offline_events(mode)[rig.state()["member_id"]].events == 0


def test_the_poll_is_one_call_for_a_scheduler_of_its_own(tmp_path):
    # A round on demand (what the poller's thread calls each time); here the
    # server's own poller waits an hour, so only the direct call can bring it.
    with app_rig(tmp_path, app_offline_events=True, app_offline_poll_seconds=3600) as rig:
        mode = rig.app.state.appmode
        member = rig.state()["member_id"]
        portal = rig.query("SELECT portal FROM app_portals")[0][0]
        deal = rig.query(
            "SELECT id FROM deals WHERE portal = ? AND stage_id = 'NEW' LIMIT 1", [portal]
        )[0][0]
        rig.emu("POST", "/_emulator/deal/update", {"id": deal, "fields": {"STAGE_ID": "WON"}})
        time.sleep(1)
        stage = "SELECT stage_id FROM deals WHERE portal = ? AND id = ?"
        assert rig.query(stage, [portal, deal])[0][0] == "NEW"
        generation = rig.app.state.cache.generation
        assert poll_offline_events(mode, "no-such-member") == {}
        done = poll_offline_events(mode)
        assert list(done) == [member] and done[member].events == 1, done
        assert rig.query(stage, [portal, deal])[0][0] == "WON"
        assert rig.app.state.cache.generation > generation  # cached reports dropped
        assert poll_offline_events(mode)[member].events == 0  # cleared, not served twice
