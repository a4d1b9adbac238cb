"""Forged or stale requests change nothing and get a clear 401/403 (issue 10)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.app_portal import Rig, app_rig

pytestmark = pytest.mark.timeout(300)


def _snapshot(rig: Rig) -> tuple:
    store = rig.app.state.store.cursor()
    try:
        return (
            store.query("SELECT * FROM app_portals ORDER BY member_id"),
            store.scalar("SELECT count(*) FROM deals"),
            store.scalar("SELECT count(*) FROM app_events_seen"),
        )
    finally:
        store.close()


def _event(
    rig: Rig,
    name: str,
    token: str | None = None,
    member: str | None = None,
    ts: int | None = None,
    **data: str,
) -> dict[str, str]:
    state = rig.state()
    body = {
        "event": name,
        "event_handler_id": "1",
        "ts": str(int(time.time()) if ts is None else ts),
        "auth[domain]": rig.domain,
        "auth[client_endpoint]": rig.emulator + "/rest/",
        "auth[server_endpoint]": rig.emulator + "/oauth/rest/",
        "auth[member_id]": member or state["member_id"],
        "auth[application_token]": state["application_token"] if token is None else token,
    }
    body.update({f"data[{k}]": v for k, v in data.items()})
    return body


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    with app_rig(tmp_path_factory.mktemp("forged")) as rig:
        yield rig


def test_frames_that_do_not_check_out(rig):
    before = _snapshot(rig)
    cases = {
        "wrong application_token": (rig.post_frame("/app", 1, APPLICATION_TOKEN="forged"), 403),
        "another member_id": (rig.post_frame("/app", 1, member_id="0" * 32), 403),
        "another domain": (rig.post_frame("/app", 1, DOMAIN="evil.bitrix24.ru"), 403),
        "untrusted auth server": (
            rig.post_frame("/app", 1, SERVER_ENDPOINT="https://evil.example/rest/"),
            403,
        ),
        "made-up AUTH_ID": (rig.post_frame("/app", 1, AUTH_ID="nope"), 401),
        "no frame at all": (httpx.post(rig.rop + "/app", data={"x": "1"}), 401),
    }
    expired = rig.tokens(3)["access_token"]
    rig.emu("POST", "/_emulator/oauth/expire", {"access_token": expired})
    cases["expired AUTH_ID"] = (rig.post_frame("/app", 3, AUTH_ID=expired), 401)
    for name, (reply, status) in cases.items():
        assert reply.status_code == status, (name, reply.status_code, reply.text[:200])
        assert "<p>" in reply.text and "Traceback" not in reply.text, name
    assert _snapshot(rig) == before


def test_report_routes_need_a_valid_viewer_token(rig):
    url = rig.open_as(3)
    good = httpx.get(url, timeout=60)
    assert good.status_code == 200
    base = url.split("?")[0]
    assert httpx.get(base, timeout=10).status_code == 401
    assert httpx.get(base + "?vt=forged.token.x", timeout=10).status_code == 401
    token = url.split("vt=")[1].split("&")[0]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert httpx.get(base + "?vt=" + tampered, timeout=10).status_code == 401
    assert httpx.get(rig.rop + "/report.json", timeout=10).status_code == 401
    assert httpx.get(rig.rop + "/drill.csv?figure=deals_new", timeout=10).status_code == 401
    own = {"origin": rig.rop}
    reply = httpx.post(rig.rop + "/api/sync", json={"wait": False}, headers=own, timeout=10)
    assert reply.status_code == 401


def test_cross_site_post_with_a_valid_token_is_refused(rig):
    url = rig.open_as(1)
    sync = rig.rop + "/api/sync?vt=" + url.split("vt=")[1].split("&")[0]
    runs = rig.app.state.appmode.jobs.job(rig.state()["member_id"]).runs
    evil = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    reply = httpx.post(sync, json={"wait": False}, headers=evil, timeout=10)
    assert reply.status_code == 403
    assert rig.app.state.appmode.jobs.job(rig.state()["member_id"]).runs == runs
    # The same request from the page itself is accepted.
    mine = httpx.post(sync, json={"wait": True}, headers={"origin": rig.rop}, timeout=60)
    assert mine.status_code == 200, mine.text


def test_expired_viewer_token_is_refused(rig):
    from rop.web.appmode.viewer_token import ViewerClaim, ViewerTokens

    mode = rig.app.state.appmode
    keys = [mode.settings.app_secret_key or mode.settings.app_client_secret]
    old = ViewerTokens(keys, 60).issue(ViewerClaim(rig.state()["member_id"], 1, True))
    real = mode.viewers
    mode.viewers = ViewerTokens(keys, 0)
    try:
        time.sleep(1.1)
        reply = httpx.get(rig.rop + "/report.json", params={"vt": old}, timeout=10)
    finally:
        mode.viewers = real
    assert reply.status_code == 401
    assert reply.json()["error"] == "expired"


def test_events_that_do_not_check_out(rig):
    before = _snapshot(rig)
    cases = {
        "portal not installed": (_event(rig, "ONCRMDEALUPDATE", member="f" * 32), 403),
        "wrong application_token": (_event(rig, "ONCRMDEALUPDATE", token="forged"), 403),
        "old event": (_event(rig, "ONCRMDEALUPDATE", ts=int(time.time()) - 3600), 403),
        "uninstall with a wrong token": (_event(rig, "ONAPPUNINSTALL", token="x", CLEAN="1"), 403),
        "install without proof": (_event(rig, "ONAPPINSTALL", member="e" * 32), 403),
        "no name": (_event(rig, ""), 400),
    }
    for name, (body, status) in cases.items():
        reply = httpx.post(rig.rop + "/app/events", data=body, timeout=10)
        assert reply.status_code == status, (name, reply.status_code, reply.text)
        assert reply.json()["message"], name
    assert _snapshot(rig) == before


def test_a_replayed_event_is_refused(rig):
    body = _event(rig, "ONCRMDEALUPDATE", **{"FIELDS][ID": "5"})
    first = httpx.post(rig.rop + "/app/events", data=body, timeout=10)
    assert first.status_code == 200, first.text
    again = httpx.post(rig.rop + "/app/events", data=body, timeout=10)
    assert again.status_code == 403
    assert again.json()["error"] == "replayed_event"
