"""An installed portal's life: live events, token refresh, update, uninstall."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.app_portal import app_rig, until

pytestmark = pytest.mark.timeout(300)


def test_a_change_in_the_portal_reaches_the_store_within_ten_seconds(tmp_path):
    with app_rig(tmp_path) as rig:
        portal = rig.query("SELECT portal FROM app_portals")[0][0]
        deal = rig.query(
            "SELECT id FROM deals WHERE portal = ? AND stage_id = 'NEW' LIMIT 1", [portal]
        )[0][0]
        started = time.monotonic()
        rig.emu("POST", "/_emulator/deal/update", {"id": deal, "fields": {"STAGE_ID": "WON"}})
        stage = "SELECT stage_id FROM deals WHERE portal = ? AND id = ?"
        assert until(
            lambda: rig.query(stage, [portal, deal])[0][0] == "WON",
            10.0,
        ), "the event did not bring the change within 10 s"
        print(f"change -> store: {time.monotonic() - started:.2f} s")
        # By ID, through the event queue, not a whole incremental re-scan.
        kinds = {k for (k,) in rig.query("SELECT kind FROM sync_runs WHERE portal = ?", [portal])}
        assert "events" in kinds, kinds


def test_refresh_on_expired_token_is_persisted_and_a_refused_grant_needs_attention(tmp_path):
    with app_rig(tmp_path) as rig:
        mode = rig.app.state.appmode
        member = rig.state()["member_id"]
        installs = mode.installs(rig.app.state.store)
        before = installs.tokens(member)
        rig.emu("POST", "/_emulator/oauth/expire", {"access_token": before.access_token})
        url = rig.open_as(1)
        sync = url.split("/report")[0] + "/api/sync?vt=" + url.split("vt=")[1].split("&")[0]
        assert (
            httpx.post(
                sync, json={"wait": True}, headers={"origin": rig.rop}, timeout=60
            ).status_code
            == 200
        )
        after = installs.tokens(member)
        assert after.access_token != before.access_token
        assert after.refresh_token != before.refresh_token
        # The old refresh token is spent; a refused grant marks the portal.
        from rop.bitrix.installs import Tokens

        installs.save_tokens(member, Tokens(after.access_token, before.refresh_token, None))
        rig.emu("POST", "/_emulator/oauth/expire", {"access_token": after.access_token})
        reply = httpx.post(sync, json={"wait": True}, headers={"origin": rig.rop}, timeout=60)
        assert reply.status_code == 502
        assert installs.get(member).state == "attention"
        status = httpx.get(rig.rop + "/app/status", params={"vt": sync.split("vt=")[1]}, timeout=10)
        assert "invalid_grant" in status.text


def test_update_stores_the_new_token_and_binds_again(tmp_path):
    with app_rig(tmp_path) as rig:
        old = rig.state()["application_token"]
        rig.emu("POST", "/_emulator/app/update", {"version": 2})
        assert until(lambda: len(rig.state()["bindings"]) > 2, 10.0), rig.state()
        state = rig.state()
        assert state["application_token"] != old
        assert rig.post_frame("/app", 1).status_code == 303  # the new token is ours now
        assert rig.post_frame("/app", 1, APPLICATION_TOKEN=old).status_code == 403


def test_uninstall_with_clean_deletes_the_portals_data(tmp_path):
    with app_rig(tmp_path) as rig:
        url = rig.open_as(1)
        portal = rig.query("SELECT portal FROM app_portals")[0][0]
        assert rig.query("SELECT count(*) FROM deals WHERE portal = ?", [portal])[0][0] > 0
        rig.emu("POST", "/_emulator/app/uninstall", {"clean": True})
        assert until(lambda: not rig.query("SELECT * FROM app_portals"), 10.0)
        tables = rig.query(
            "SELECT DISTINCT table_name FROM information_schema.columns "
            "WHERE column_name = 'portal' AND table_schema = 'main'",
        )
        for (table,) in tables:
            left = rig.query(f"SELECT count(*) FROM {table} WHERE portal = ?", [portal])  # noqa: S608
            assert left[0][0] == 0, table
        assert httpx.get(url, timeout=10).status_code == 403


def test_uninstall_without_clean_forgets_tokens_keeps_data(tmp_path):
    with app_rig(tmp_path) as rig:
        portal = rig.query("SELECT portal FROM app_portals")[0][0]
        rig.emu("POST", "/_emulator/app/uninstall", {"clean": False})
        assert until(
            lambda: rig.query("SELECT state FROM app_portals")[0][0] == "uninstalled", 10.0
        )
        row = rig.query("SELECT access_token, refresh_token, application_token FROM app_portals")
        assert row == [(None, None, None)]
        assert rig.query("SELECT count(*) FROM deals WHERE portal = ?", [portal])[0][0] > 0


def test_onappinstall_event_records_the_portal_when_proven(tmp_path):
    from tests.app_portal import app_rigs

    with app_rigs(tmp_path) as (rig,):
        rig.emu("POST", "/_emulator/app/install", {"user_id": 1})
        issued = rig.tokens(1)
        state = rig.state()
        body = {
            "event": "ONAPPINSTALL",
            "ts": str(int(time.time())),
            "data[VERSION]": "1",
            "auth[access_token]": issued["access_token"],
            "auth[refresh_token]": issued["refresh_token"],
            "auth[expires_in]": "3600",
            "auth[domain]": rig.domain,
            "auth[server_endpoint]": rig.emulator + "/oauth/rest/",
            "auth[client_endpoint]": rig.emulator + "/rest/",
            "auth[member_id]": state["member_id"],
            "auth[application_token]": state["application_token"] or "tok",
            "auth[user_id]": "1",
        }
        forged = dict(body, **{"auth[access_token]": "made-up"})
        assert httpx.post(rig.rop + "/app/events", data=forged, timeout=10).status_code == 403
        assert not rig.query("SELECT * FROM app_portals")
        reply = httpx.post(rig.rop + "/app/events", data=body, timeout=10)
        assert reply.status_code == 200, reply.text
        tokens = rig.app.state.appmode.installs(rig.app.state.store).tokens(state["member_id"])
        assert tokens is not None and tokens.refresh_token == issued["refresh_token"]
        again = httpx.post(rig.rop + "/app/events", data=body, timeout=10)
        assert again.status_code == 403
