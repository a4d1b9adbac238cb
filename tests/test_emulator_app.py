"""The emulator as an application host: auth server, install, placements, events.

Real HTTP both ways: the emulator on a free port, and a stand-in app server (a
tiny Starlette app) that records what the portal POSTs to it, so every payload is
checked as the wire carries it (PHP bracket keys, form-encoded).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.emulator.config import AppSettings
from tests.emulator_portal import write_portal

CLIENT_ID = "local.test123.app"
SECRET = "s3cret"


@dataclass
class Received:
    path: str
    query: dict[str, str]
    form: dict[str, str]


@dataclass
class StandIn:
    base: str
    received: list[Received] = field(default_factory=list)

    def events(self, name: str, path: str = "/events") -> list[dict[str, str]]:
        return [r.form for r in self.received if r.path == path and r.form.get("event") == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 15.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r.form for r in self.received if r.form.get("event") == name]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"{name} x{count} never arrived: {[r.form for r in self.received]}")


@pytest.fixture
def standin() -> Iterator[StandIn]:
    received: list[Received] = []

    async def record(request: Request) -> Response:
        form = await request.form()
        received.append(
            Received(
                request.url.path,
                dict(request.query_params),
                {k: str(v) for k, v in form.multi_items()},
            )
        )
        if request.url.path == "/fail":
            return PlainTextResponse("boom", status_code=500)
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/{path:path}", record, methods=["GET", "POST"])],
    )
    with serve_in_thread(app) as base:
        yield StandIn(base, received)


@dataclass
class Portal:
    base: str
    app: Any

    @property
    def host(self) -> Any:
        return self.app.state.engine.host

    def rest(self, method: str, token: str, **params: Any) -> httpx.Response:
        return httpx.post(f"{self.base}/rest/{method}", json={**params, "auth": token})

    def test_api(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(f"{self.base}/_emulator/{path}", json=body or {})


@pytest.fixture
def portal(tmp_path: Path, standin: StandIn) -> Iterator[Portal]:
    folder = write_portal(tmp_path / "portal", deals=20)
    settings = AppSettings(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        handler=f"{standin.base}/app",
        install_url=f"{standin.base}/install",
    )
    app = create_app(folder, EmulatorConfig(rate_limit=False, test_api=True, app=settings))
    with serve_in_thread(app) as base:
        yield Portal(base, app)


def install(portal: Portal, finish: bool = True) -> dict[str, Any]:
    """Install as admin 1; tokens of the installer, as the install page gets them."""
    assert portal.test_api("app/install", {"user_id": 1}).json()["state"] == "installing"
    tokens = portal.host.issue(1)
    if finish:
        assert portal.test_api("app/finish").status_code == 200
    return tokens


# -- the auth server ------------------------------------------------------------------------


def test_app_info_on_the_auth_server_names_the_portal_and_the_user(portal: Portal) -> None:
    install(portal)
    manager = portal.host.issue(3)
    assert manager["server_endpoint"] == f"{portal.base}/oauth/rest/"
    assert manager["client_endpoint"] == f"{portal.base}/rest/"
    reply = httpx.get(
        f"{manager['server_endpoint']}app.info", params={"auth": manager["access_token"]}
    )
    assert reply.status_code == 200
    result = reply.json()["result"]
    assert result["client_id"] == CLIENT_ID and result["user_id"] == 3
    assert result["scope"] == "crm,user,department,telephony,placement,im"
    install_info = result["install"]
    assert install_info["installed"] is True
    assert install_info["member_id"] == manager["member_id"]
    assert len(install_info["member_id"]) == 32
    assert install_info["domain"] == portal.base.split("://")[1]
    assert install_info["client_endpoint"] == f"{portal.base}/rest/"
    # b24pysdk's path spelling (trailing slash) answers too
    assert (
        httpx.get(
            f"{portal.base}/oauth/rest/app.info/", params={"auth": manager["access_token"]}
        ).status_code
        == 200
    )
    bad = httpx.get(f"{portal.base}/oauth/rest/app.info", params={"auth": "forged"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
    portal.host.tokens.expire(manager["access_token"])
    old = httpx.get(f"{portal.base}/oauth/rest/app.info", params={"auth": manager["access_token"]})
    assert old.status_code == 401 and old.json()["error"] == "expired_token"


def test_refresh_on_the_auth_server_rotates_the_refresh_token(portal: Portal) -> None:
    install(portal)
    issued = portal.host.issue(2)
    token_url = issued["server_endpoint"].removesuffix("rest/") + "oauth/token/"
    form = {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "refresh_token": issued["refresh_token"],
    }
    fresh = httpx.post(token_url, data=form)  # b24jssdk posts a form body
    assert fresh.status_code == 200, fresh.text
    pair = fresh.json()
    assert pair["user_id"] == 2 and pair["refresh_token"] != issued["refresh_token"]
    assert pair["member_id"] == issued["member_id"]
    reused = httpx.get(token_url, params=form)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    wrong = httpx.get(
        token_url, params={**form, "refresh_token": pair["refresh_token"], "client_secret": "no"}
    )
    assert wrong.json()["error"] == "invalid_client"
    assert portal.rest("profile", pair["access_token"]).json()["result"]["ID"] == "2"


def test_profile_user_admin_and_portal_app_info_follow_the_viewer(portal: Portal) -> None:
    admin = install(portal, finish=False)
    info = portal.rest("app.info", admin["access_token"]).json()["result"]
    assert info["INSTALLED"] is False and info["CODE"] == CLIENT_ID
    portal.test_api("app/finish")
    assert portal.rest("app.info", admin["access_token"]).json()["result"]["INSTALLED"] is True
    manager = portal.host.issue(4)
    me = portal.rest("profile", manager["access_token"]).json()["result"]
    assert (me["ID"], me["ADMIN"], me["NAME"], me["LAST_NAME"]) == ("4", False, "User4", "Last4")
    assert portal.rest("user.admin", manager["access_token"]).json()["result"] is False
    assert portal.rest("user.admin", admin["access_token"]).json()["result"] is True
    fired = portal.host.issue(6)
    assert portal.rest("profile", fired["access_token"]).json()["result"] == {}


# -- placements --------------------------------------------------------------------------------


def test_placement_bind_needs_the_app_context_and_an_admin(
    portal: Portal, standin: StandIn
) -> None:
    admin = install(portal)
    hook = f"{portal.base}/rest/1/testtoken123/placement.bind"
    by_hook = httpx.post(hook, json={"PLACEMENT": "LEFT_MENU", "HANDLER": f"{standin.base}/app"})
    assert by_hook.status_code == 403 and by_hook.json()["error"] == "WRONG_AUTH_TYPE"
    manager = portal.host.issue(3)
    denied = portal.rest(
        "placement.bind",
        manager["access_token"],
        PLACEMENT="LEFT_MENU",
        HANDLER=f"{standin.base}/app",
    )
    assert denied.status_code == 403 and denied.json()["error"] == "ACCESS_DENIED"
    empty = portal.rest("placement.bind", admin["access_token"], HANDLER=f"{standin.base}/app")
    assert empty.status_code == 400
    assert empty.json() == {
        "error": "ERROR_ARGUMENT",
        "error_description": "Argument 'PLACEMENT' is null or empty",
        "argument": "PLACEMENT",
    }
    for code in ("LEFT_MENU", "CRM_ANALYTICS_MENU"):
        ok = portal.rest(
            "placement.bind",
            admin["access_token"],
            PLACEMENT=code,
            HANDLER=f"{standin.base}/app",
            TITLE="ROP",
        )
        assert ok.json()["result"] is True
    again = portal.rest(
        "placement.bind",
        admin["access_token"],
        PLACEMENT="LEFT_MENU",
        HANDLER=f"{standin.base}/app",
    )
    assert again.status_code == 400
    listed = portal.rest("placement.get", admin["access_token"]).json()["result"]
    assert [(p["placement"], p["title"]) for p in listed] == [
        ("LEFT_MENU", "ROP"),
        ("CRM_ANALYTICS_MENU", "ROP"),
    ]
    gone = portal.rest("placement.unbind", admin["access_token"], PLACEMENT="LEFT_MENU").json()[
        "result"
    ]
    assert gone == {"count": 2}
    assert [
        p["placement"] for p in portal.rest("placement.get", admin["access_token"]).json()["result"]
    ] == ["CRM_ANALYTICS_MENU"]


# -- events --------------------------------------------------------------------------------------


def bind(portal: Portal, token: str, event: str, handler: str, **more: Any) -> httpx.Response:
    return portal.rest("event.bind", token, event=event, handler=handler, **more)


def test_events_wait_for_install_finish_then_arrive_in_bitrix24s_shape(
    portal: Portal, standin: StandIn
) -> None:
    admin = install(portal, finish=False)
    handler = f"{standin.base}/events"
    assert bind(portal, admin["access_token"], "ONAPPINSTALL", handler).json()["result"] is True
    assert bind(portal, admin["access_token"], "ONCRMDEALUPDATE", handler).json()["result"] is True
    unknown = bind(portal, admin["access_token"], "ONSOMETHING", handler)
    assert unknown.status_code == 400 and unknown.json()["error"] == "ERROR_EVENT_NOT_FOUND"
    twice = bind(portal, admin["access_token"], "ONCRMDEALUPDATE", handler)
    assert twice.status_code == 400
    # Before installFinish nothing is delivered.
    portal.test_api("deal/update", {"id": 1, "fields": {"TITLE": "early"}})
    assert portal.host.events.wait_idle()
    assert standin.received == []

    portal.test_api("app/finish")
    installed = standin.wait_for("ONAPPINSTALL")[0]
    token = portal.host.app.application_token
    assert installed["auth[application_token]"] == token
    assert installed["auth[refresh_token]"] and installed["auth[access_token]"]
    assert installed["auth[member_id]"] == admin["member_id"]
    assert installed["data[VERSION]"] == "1" and installed["data[INSTALLED]"] == "Y"
    assert installed["auth[user_id]"] == "1"

    portal.test_api("deal/update", {"id": 5, "fields": {"STAGE_ID": "WON"}, "user_id": 3})
    update = standin.wait_for("ONCRMDEALUPDATE")[0]
    assert update["data[FIELDS][ID]"] == "5"
    assert update["auth[application_token]"] == token
    assert update["auth[domain]"] == portal.base.split("://")[1]
    assert update["auth[client_endpoint]"] == f"{portal.base}/rest/"
    assert update["auth[server_endpoint]"] == f"{portal.base}/oauth/rest/"
    assert update["auth[scope]"] == "crm" and update["ts"].isdigit()
    assert update["event_handler_id"].isdigit()
    assert "auth[refresh_token]" not in update
    # The token is the acting user's.
    assert portal.rest("profile", update["auth[access_token]"]).json()["result"]["ID"] == "3"


def test_crm_changes_fire_the_matching_events(portal: Portal, standin: StandIn) -> None:
    admin = install(portal)
    handler = f"{standin.base}/events"
    for event in (
        "ONCRMDEALADD",
        "ONCRMDEALUPDATE",
        "ONCRMDEALDELETE",
        "ONCRMDEALMOVETOCATEGORY",
        "ONCRMLEADADD",
        "ONCRMCOMPANYUPDATE",
        "ONCRMCONTACTADD",
        "ONVOXIMPLANTCALLEND",
    ):
        assert bind(portal, admin["access_token"], event, handler).json()["result"] is True
    new_id = portal.test_api(
        "deal/add", {"fields": {"TITLE": "New", "ASSIGNED_BY_ID": "3"}}
    ).json()["result"]
    portal.test_api(
        "deal/update", {"id": new_id, "fields": {"CATEGORY_ID": "1", "STAGE_ID": "C1:NEW"}}
    )
    portal.test_api("deal/delete", {"id": new_id})
    portal.test_api("lead/add", {"fields": {"TITLE": "Lead"}})
    portal.test_api("company/update", {"id": 2, "fields": {"TITLE": "Renamed"}})
    portal.test_api("contact/add", {"fields": {"NAME": "Ann"}})
    portal.test_api(
        "call/add",
        {
            "fields": {
                "CALL_ID": "c-99",
                "PORTAL_USER_ID": "3",
                "CALL_DURATION": "42",
                "CALL_TYPE": "1",
                "CALL_FAILED_CODE": "200",
            }
        },
    )
    assert portal.host.events.wait_idle()
    names = [r.form["event"] for r in standin.received]
    assert names == [
        "ONCRMDEALADD",
        "ONCRMDEALMOVETOCATEGORY",  # a pipeline move: no ONCRMDEALUPDATE
        "ONCRMDEALDELETE",
        "ONCRMLEADADD",
        "ONCRMCOMPANYUPDATE",
        "ONCRMCONTACTADD",
        "ONVOXIMPLANTCALLEND",
    ]
    move = standin.received[1].form
    assert (
        move["data[FIELDS][ID]"],
        move["data[FIELDS][CATEGORY_ID]"],
        move["data[FIELDS][STAGE_ID]"],
    ) == (str(new_id), "1", "C1:NEW")
    call = standin.received[-1].form
    assert call["data[CALL_ID]"] == "c-99" and call["data[CALL_DURATION]"] == "42"
    assert call["auth[scope]"] == "telephony"


def test_a_failed_delivery_is_not_retried(portal: Portal, standin: StandIn) -> None:
    admin = install(portal)
    bind(portal, admin["access_token"], "ONCRMDEALUPDATE", f"{standin.base}/fail")
    portal.test_api("deal/update", {"id": 2, "fields": {"TITLE": "x"}})
    assert portal.host.events.wait_idle()
    time.sleep(0.3)
    assert [r.path for r in standin.received] == ["/fail"]
    deliveries = httpx.get(f"{portal.base}/_emulator/stats").json()["deliveries"]
    assert [(d["event"], d["status"], d["error"]) for d in deliveries] == [
        ("ONCRMDEALUPDATE", 500, "HTTP 500")
    ]


def test_a_robot_change_carries_no_tokens(portal: Portal, standin: StandIn) -> None:
    admin = install(portal)
    bind(portal, admin["access_token"], "ONCRMDEALUPDATE", f"{standin.base}/events")
    portal.test_api("deal/update", {"id": 2, "fields": {"TITLE": "x"}, "user_id": None})
    form = standin.wait_for("ONCRMDEALUPDATE")[0]
    assert "auth[access_token]" not in form and form["auth[application_token]"]


def test_offline_queue_keeps_the_latest_state_and_reserves_by_process(portal: Portal) -> None:
    admin = install(portal)
    token = admin["access_token"]
    manager = portal.host.issue(3)
    refused = bind(portal, manager["access_token"], "ONCRMDEALUPDATE", "", event_type="offline")
    assert refused.status_code == 403
    assert bind(portal, token, "ONCRMDEALUPDATE", "", event_type="offline").json()["result"] is True
    assert bind(portal, token, "ONCRMDEALADD", "", event_type="offline").json()["result"] is True
    for title in ("a", "b", "c"):
        portal.test_api("deal/update", {"id": 7, "fields": {"TITLE": title}})
    portal.test_api("deal/update", {"id": 8, "fields": {"TITLE": "z"}})
    portal.test_api("deal/add", {"fields": {"TITLE": "new"}})
    listed = portal.rest("event.offline.list", token).json()
    assert listed["total"] == 3  # three edits of deal 7 are one record
    first = portal.rest("event.offline.get", token, clear=0, limit=2).json()["result"]
    assert first["process_id"] and len(first["events"]) == 2
    assert [e["EVENT_NAME"] for e in first["events"]] == ["ONCRMDEALUPDATE", "ONCRMDEALUPDATE"]
    assert sorted(e["EVENT_DATA"]["FIELDS"]["ID"] for e in first["events"]) == ["7", "8"]
    # A parallel reader gets the rest only.
    second = portal.rest("event.offline.get", token, clear=0).json()["result"]
    assert [e["EVENT_NAME"] for e in second["events"]] == ["ONCRMDEALADD"]
    # While reserved, a new edit of deal 7 makes a new record.
    portal.test_api("deal/update", {"id": 7, "fields": {"TITLE": "d"}})
    done = [first["events"][0]["MESSAGE_ID"]]
    failed = [first["events"][1]["MESSAGE_ID"]]
    assert (
        portal.rest(
            "event.offline.clear", token, process_id=first["process_id"], message_id=done
        ).json()["result"]
        is True
    )
    assert (
        portal.rest(
            "event.offline.error", token, process_id=first["process_id"], message_id=failed
        ).json()["result"]
        is True
    )
    rows = portal.rest("event.offline.list", token).json()["result"]
    assert sorted((r["EVENT_DATA"]["FIELDS"]["ID"], r["ERROR"]) for r in rows) == sorted(
        [
            (first["events"][1]["EVENT_DATA"]["FIELDS"]["ID"], "1"),
            (second["events"][0]["EVENT_DATA"]["FIELDS"]["ID"], "0"),
            ("7", "0"),
        ]
    )
    plain = portal.rest("event.offline.get", token).json()["result"]  # clear=1: taken and gone
    assert [e["EVENT_DATA"]["FIELDS"]["ID"] for e in plain["events"]] == ["7"]
    with_errors = portal.rest("event.offline.get", token, error=1).json()["result"]
    assert [e["MESSAGE_ID"] for e in with_errors["events"]] == failed
    no_pid = portal.rest("event.offline.clear", token)
    assert no_pid.status_code == 400 and no_pid.json()["argument"] == "process_id"


def test_uninstall_and_update_fire_their_events(portal: Portal, standin: StandIn) -> None:
    admin = install(portal)
    handler = f"{standin.base}/events"
    bind(portal, admin["access_token"], "ONAPPUPDATE", handler)
    old_token = portal.host.app.application_token
    portal.test_api("app/update", {"version": 2})
    updated = standin.wait_for("ONAPPUPDATE")[0]
    assert updated["data[VERSION]"] == "2" and updated["data[PREVIOUS_VERSION]"] == "1"
    assert updated["auth[refresh_token]"] and updated["auth[user_id]"] == "1"
    assert updated["auth[application_token]"] not in ("", old_token)
    assert updated["auth[application_token]"] == portal.host.app.application_token
    # The update removed the handlers: the app binds again.
    assert portal.rest("event.get", admin["access_token"]).json()["result"] == []
    bind(portal, admin["access_token"], "ONAPPUNINSTALL", handler)
    current = portal.host.app.application_token
    portal.test_api("app/uninstall", {"clean": True})
    gone = standin.wait_for("ONAPPUNINSTALL")[0]
    assert gone["data[CLEAN]"] == "1"
    assert gone["auth[application_token]"] == current
    assert "auth[access_token]" not in gone and "auth[refresh_token]" not in gone
    assert gone["auth[member_id]"] == admin["member_id"]
    dead = portal.rest("profile", admin["access_token"])
    assert dead.status_code == 401


def test_rest_answers_cors_for_the_frame_sdk(portal: Portal) -> None:
    admin = install(portal)
    pre = httpx.options(
        f"{portal.base}/rest/profile.json",
        headers={
            "Origin": "http://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-request-id",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in pre.headers["access-control-allow-headers"]
    reply = portal.rest("profile.json", admin["access_token"])
    assert reply.headers["access-control-allow-origin"] == "*"


# -- the CLI ---------------------------------------------------------------------------------------


def test_rop_emulate_registers_the_application(tmp_path: Path) -> None:
    folder = write_portal(tmp_path / "portal", deals=5)
    command = [sys.executable, "-c", "from rop.cli import main; main()"]
    bad = subprocess.run(
        [*command, "emulate", "--portal", str(folder), "--app-handler", "ftp://x/app"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--app-handler must be an http(s) URL" in bad.stderr
    assert "Traceback" not in bad.stderr
    proc = subprocess.Popen(
        [
            *command,
            "emulate",
            "--portal",
            str(folder),
            "--port",
            "0",
            "--test-api",
            "--app-handler",
            "https://app.example/app",
            "--app-client-id",
            "local.cli.app",
            "--app-scopes",
            "crm,user",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        webhook = proc.stdout.readline().strip()
        base = webhook.split("/rest/")[0]
        state = httpx.get(f"{base}/_emulator/app", timeout=10).json()
        assert state["registered"] is True and state["state"] == "absent"
        httpx.post(f"{base}/_emulator/app/install", json={"user_id": 1}, timeout=10)
        page = httpx.get(f"{base}/marketplace/app/1/?as=1", timeout=10).text
        assert 'action="https://app.example/app?DOMAIN=' in page
        assert 'name="APPLICATION_SCOPE" value="crm,user"' in page
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_authorize_needs_the_app_installed_and_bad_test_api_input_is_a_400(
    portal: Portal, standin: StandIn
) -> None:
    query = {"client_id": CLIENT_ID, "state": "s", "user_id": 2}
    early = httpx.get(f"{portal.base}/oauth/authorize/", params=query)
    assert early.status_code == 400 and early.json()["error"] == "NOT_INSTALLED"
    for body in ({"user_id": "x"}, {"user_id": 3}):
        refused = portal.test_api("app/install", body)
        assert refused.status_code in (400, 403) and "Traceback" not in refused.text
    assert portal.host.app.state == "absent"
    bad = portal.test_api("app", {"handler": "javascript:alert(1)"})
    assert bad.status_code == 400 and "handler must be an http(s) URL" in bad.text
    install(portal)
    later = httpx.get(f"{portal.base}/oauth/authorize/", params=query)
    assert later.status_code == 302
    assert httpx.URL(later.headers["location"]).path == "/app"
    assert portal.test_api("app/update", {"version": "two"}).status_code == 400


def test_history_true_writes_the_stage_history_row_bitrix24_would(portal: Portal) -> None:
    hook = f"{portal.base}/rest/1/testtoken123/crm.stagehistory.list"

    def rows(type_id: int, owner: int) -> list[dict[str, Any]]:
        reply = httpx.post(hook, json={"entityTypeId": type_id, "filter": {"OWNER_ID": owner}})
        return reply.json()["result"]["items"]

    before = len(rows(2, 5))
    portal.test_api("deal/update", {"id": 5, "fields": {"TITLE": "same stage"}, "history": True})
    assert len(rows(2, 5)) == before  # no stage change, no row
    portal.test_api("deal/update", {"id": 5, "fields": {"STAGE_ID": "WON"}, "history": True})
    won = rows(2, 5)[-1]
    assert (won["TYPE_ID"], won["STAGE_ID"], won["STAGE_SEMANTIC_ID"], won["CATEGORY_ID"]) == (
        3,
        "WON",
        "S",
        0,
    )
    portal.test_api(
        "deal/update",
        {"id": 5, "fields": {"CATEGORY_ID": "1", "STAGE_ID": "C1:NEW"}, "history": True},
    )
    assert rows(2, 5)[-1]["TYPE_ID"] == 5 and rows(2, 5)[-1]["CATEGORY_ID"] == 1
    lead = portal.test_api(
        "lead/add", {"fields": {"TITLE": "L", "STATUS_ID": "NEW"}, "history": True}
    ).json()["result"]
    created = rows(1, lead)
    assert [(r["TYPE_ID"], r["STATUS_ID"], r["STATUS_SEMANTIC_ID"]) for r in created] == [
        (1, "NEW", "P")
    ]
    portal.test_api("deal/update", {"id": 6, "fields": {"STAGE_ID": "WON"}})  # not asked
    assert all(r["STAGE_ID"] != "WON" for r in rows(2, 6))


def test_an_app_token_carries_the_apps_scopes(tmp_path: Path) -> None:
    folder = write_portal(tmp_path / "portal", deals=5)
    settings = AppSettings(handler="https://app.example/app", scopes=("user", "department"))
    app = create_app(folder, EmulatorConfig(rate_limit=False, test_api=True, app=settings))
    with serve_in_thread(app) as base:
        host = app.state.engine.host
        host.install(1)
        auth = host.issue(1)["access_token"]
        deals = httpx.post(f"{base}/rest/crm.deal.list", json={"auth": auth})
        assert deals.status_code == 401 and deals.json()["error"] == "insufficient_scope"
        bind = httpx.post(
            f"{base}/rest/placement.bind",
            json={"auth": auth, "PLACEMENT": "LEFT_MENU", "HANDLER": "https://app.example/a"},
        )
        assert bind.json()["error"] == "insufficient_scope"
        assert httpx.post(f"{base}/rest/user.current", json={"auth": auth}).status_code == 200
        assert httpx.post(f"{base}/rest/profile", json={"auth": auth}).status_code == 200


def test_the_portal_keeps_one_address_and_pages_go_there(portal: Portal) -> None:
    install(portal)
    other = portal.base.replace("127.0.0.1", "localhost")
    moved = httpx.get(f"{other}/marketplace/app/1/?as=3")
    assert moved.status_code == 302
    assert moved.headers["location"] == f"{portal.base}/marketplace/app/1/?as=3"
    # REST through another name does not change DOMAIN or the endpoints events carry.
    auth = portal.host.issue(1)["access_token"]
    assert httpx.post(f"{other}/rest/profile", json={"auth": auth}).status_code == 200
    assert portal.host.domain == portal.base.split("://")[1]
    assert portal.host.issue(2)["client_endpoint"] == f"{portal.base}/rest/"


def test_offline_doorbell_and_a_queue_per_connector(portal: Portal, standin: StandIn) -> None:
    admin = install(portal)
    token = admin["access_token"]
    bind(portal, token, "ONOFFLINEEVENT", f"{standin.base}/events")
    bind(portal, token, "ONCRMLEADADD", "", event_type="offline")
    bind(portal, token, "ONCRMLEADADD", "", event_type="offline", auth_connector="sync")
    portal.test_api("lead/add", {"fields": {"TITLE": "L"}})
    bell = standin.wait_for("ONOFFLINEEVENT")[0]
    assert bell["auth[application_token]"] == portal.host.app.application_token
    assert bell["auth[refresh_token]"] and bell["auth[access_token]"]
    assert not any(k.startswith("data[") for k in bell)
    plain = portal.rest("event.offline.get", token).json()["result"]["events"]
    tagged = portal.rest("event.offline.get", token, auth_connector="sync").json()["result"]
    assert len(plain) == 1 and len(tagged["events"]) == 1
    assert portal.rest("event.offline.get", token).json()["result"]["events"] == []
