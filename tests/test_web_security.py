"""The server against other sites, other host names and nosy viewers: the
same-origin guard, trusted hosts, security headers, and the sync's counts
shown to report administrators only (docs/WEB.md, Security)."""

from __future__ import annotations

import json
import os
import re
import stat

import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.routing import Route

from rop.config import Settings, load_settings
from rop.web import create_app, serve_in_thread
from tests.test_web_support import PERIOD, tiny_store
from tests.web_client import TestClient, page_client

WEBHOOK = "http://127.0.0.1:1/rest/1/x/"
LOCAL = "local-token-" + "x" * 32


class Runner:
    """A sync that only counts its runs and reports whole-portal counts."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, cur, url, *, full=False, progress=None):
        self.runs += 1
        progress("deals", 7, 1234)
        return {"deals": 1234, "leads": 567}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = tiny_store(tmp_path_factory.mktemp("web_security"))
    yield s
    s.close()


def app_with(store, runner=None, **settings):
    settings.setdefault("webhook", WEBHOOK)
    return create_app(Settings(db=store.path, **settings), store, runner or Runner())


def raw_client(app) -> TestClient:
    """A client that adds nothing: no Origin, no Sec-Fetch-Site, no token."""
    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)


# -- cross-site requests --------------------------------------------------------


def test_another_site_cannot_start_a_sync(store):
    runner = Runner()
    web = raw_client(app_with(store, runner))
    attempts = [
        # A plain HTML form on evil.example posting to us.
        dict(
            data={"full": "true"},
            headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        ),
        # fetch(..., {mode: "no-cors", body: '{"full": true}'}): text/plain, no preflight.
        dict(
            content=b'{"full": true, "wait": false}',
            headers={"content-type": "text/plain", "origin": "http://evil.example"},
        ),
        # A sandboxed frame or a data: page sends Origin: null.
        dict(json={"full": True, "wait": False}, headers={"origin": "null"}),
        # A sibling site on the same machine (another port is another origin).
        dict(
            json={"full": True, "wait": False},
            headers={"sec-fetch-site": "same-site", "origin": "http://127.0.0.1:9999"},
        ),
        # A non-browser client without the server's token.
        dict(json={"full": True, "wait": False}),
        dict(json={"full": True, "wait": False}, headers={"x-rop-token": "guess"}),
        dict(json={"full": True, "wait": False}, headers={"x-rop-local-token": "guess"}),
    ]
    for attempt in attempts:
        resp = web.post("/api/sync", **attempt)
        assert resp.status_code == 403, (attempt, resp.text)
        assert resp.json()["error"]["message"]
    assert runner.runs == 0
    assert web.get("/api/sync").json()["state"] == "idle"


def test_own_pages_and_the_token_holder_may_sync(store):
    runner = Runner()
    app = app_with(store, runner)
    app.state.local_token = LOCAL  # what `serve` writes into <db>.server.json
    web = raw_client(app)
    body = {"full": False}
    ok = [
        {"sec-fetch-site": "same-origin"},
        # An older browser: Origin only, equal to the host asked for.
        {"origin": "http://127.0.0.1"},
        # A browser with neither: the page's token (app.js sends it).
        {"x-rop-token": app.state.token},
        # `rop sync` forwarding: neither header, the token from the server file.
        {"x-rop-local-token": LOCAL},
    ]
    for headers in ok:
        resp = web.post("/api/sync", json=body, headers=headers)
        assert resp.status_code == 200, (headers, resp.text)
    assert runner.runs == 4


def test_state_changes_must_be_json(store):
    runner = Runner()
    web = page_client(app_with(store, runner), raise_server_exceptions=False)
    for kwargs in (
        dict(data={"full": "false"}),  # application/x-www-form-urlencoded
        dict(content=b'{"full": false}', headers={"content-type": "text/plain"}),
        dict(files={"f": ("a.json", b"{}")}),  # multipart/form-data
        dict(content=b'{"full": false}'),  # no content type at all
    ):
        resp = web.post("/api/sync", **kwargs)
        assert resp.status_code == 415, (kwargs, resp.text)
        assert "application/json" in resp.json()["error"]["message"]
    assert runner.runs == 0


def test_a_route_marked_cross_site_takes_other_sites(store):
    """The app mode's install and event handlers (Bitrix24 posts forms to them
    from the portal's origin) are exempt; the mark is on the route."""
    from rop.web.security import cross_site

    @cross_site
    async def event(request):
        form = await request.form()
        return JSONResponse({"event": form.get("event")})

    async def other(request):
        return JSONResponse({})

    app = app_with(store)
    app.router.routes.insert(0, Route("/app/event", event, methods=["POST"]))
    app.router.routes.insert(0, Route("/app/other", other, methods=["POST"]))
    web = raw_client(app)
    headers = {"origin": "https://example.bitrix24.ru", "sec-fetch-site": "cross-site"}
    resp = web.post("/app/event", data={"event": "ONAPPINSTALL"}, headers=headers)
    assert resp.status_code == 200 and resp.json() == {"event": "ONAPPINSTALL"}
    assert web.post("/app/other", data={"x": "1"}, headers=headers).status_code == 403
    # The body cap holds for exempt routes too.
    big = {"event": "x" * (70 * 1024)}
    assert web.post("/app/event", data=big, headers=headers).status_code == 413


def test_bodies_are_capped(store):
    web = page_client(app_with(store, max_body_bytes=1000), raise_server_exceptions=False)
    resp = web.post("/api/sync", content=b'{"full": false, "pad": "' + b"x" * 2000 + b'"}',
                    headers={"content-type": "application/json"})  # fmt: skip
    assert resp.status_code == 413
    assert "ROP_MAX_BODY_BYTES" in resp.json()["error"]["message"]

    # A chunked body (no Content-Length) is cut off once it passes the cap.
    def chunks():
        yield b'{"full": false, "pad": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    resp = web.post("/api/sync", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413


# -- host names -------------------------------------------------------------------


def test_only_configured_host_names_are_served(store):
    app = app_with(store)
    for host in ("127.0.0.1", "localhost", "127.0.0.1:8000", "LOCALHOST:1", "[::1]:8000"):
        resp = raw_client(app).get("/report.json", params=PERIOD, headers={"host": host})
        assert resp.status_code == 200, host
    # A DNS-rebinding page reaches 127.0.0.1 under its own name.
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
        resp = raw_client(app).get("/report.json", params=PERIOD, headers={"host": host})
        assert resp.status_code == 400, host
        assert "ROP_ALLOWED_HOSTS" in resp.json()["error"]["message"]
        assert "report" not in resp.json()

    named = app_with(store, allowed_hosts="rop.example.com,*.sales.example")
    web = raw_client(named)
    assert web.get("/report.json", headers={"host": "rop.example.com"}).status_code == 200
    assert web.get("/report.json", headers={"host": "a.sales.example"}).status_code == 200
    assert web.get("/report.json", headers={"host": "127.0.0.1"}).status_code == 400


def test_allowed_hosts_default_to_the_bound_host_and_loopback(monkeypatch):
    monkeypatch.delenv("ROP_ALLOWED_HOSTS", raising=False)
    assert load_settings(host="10.1.2.3").host_names() == [
        "10.1.2.3",
        "localhost",
        "127.0.0.1",
        "[::1]",
    ]
    monkeypatch.setenv("ROP_ALLOWED_HOSTS", "rop.example.com, ::1")
    assert load_settings().host_names() == ["rop.example.com", "[::1]"]
    from rop.config import SettingsError

    for bad in ("http://rop.example.com", "rop.example.com:8000", "*rop.example.com", " , "):
        monkeypatch.setenv("ROP_ALLOWED_HOSTS", bad)
        with pytest.raises(SettingsError, match="ROP_ALLOWED_HOSTS"):
            load_settings()


# -- headers and the policy ------------------------------------------------------------


def test_security_headers_on_every_answer(store):
    web = raw_client(app_with(store))
    answers = [
        web.get("/report", params=PERIOD),
        web.get("/report.json", params=PERIOD),
        web.get("/drill", params={**PERIOD, "figure": "deals_new"}),
        web.get("/static/app.js"),
        web.get("/no-such-page"),
        web.post("/api/sync", json={}),  # refused: headers all the same
        web.get("/report.json", headers={"host": "evil.example"}),
    ]
    for resp in answers:
        csp = resp.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "'unsafe-eval'" not in csp, resp.url
        assert "frame-ancestors 'self'" in csp and "object-src 'none'" in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "same-origin"
        script = re.search(r"script-src ([^;]*)", csp)
        assert script and "unsafe-inline" not in script.group(1)


def test_frame_ancestors_admit_what_the_app_mode_says(store):
    app = app_with(store)
    portals = ["https://example.bitrix24.ru"]
    app.state.frame_ancestors = lambda: list(portals)
    web = raw_client(app)
    csp = web.get("/report", params=PERIOD).headers["content-security-policy"]
    assert "frame-ancestors 'self' https://example.bitrix24.ru" in csp
    # A portal installed later is admitted on the next answer; junk never
    # reaches the policy (no way to add a source or a directive).
    portals += ["https://b.bitrix24.kz:8443/path", "javascript:alert(1)", "https://x; script-src *"]
    csp = web.get("/report", params=PERIOD).headers["content-security-policy"]
    ancestors = re.search(r"frame-ancestors ([^;]*)", csp).group(1).split()
    assert ancestors == ["'self'", "https://example.bitrix24.ru", "https://b.bitrix24.kz:8443"]
    assert csp.count("script-src ") == 1


def test_pages_have_no_inline_script(store):
    """What the policy forbids is not in the pages: every script is a file or
    inert JSON data, no on* handler attributes, no <style> elements."""
    web = raw_client(app_with(store))
    pages = [
        web.get("/report", params=PERIOD).text,
        web.get("/drill", params={**PERIOD, "figure": "deals_new"}).text,
        web.get("/report", params={**PERIOD, "from": "2026-02-30"}).text,  # a bad filter
        web.get("/no-such-page", headers={"accept": "text/html"}).text,
    ]
    for page in pages:
        for tag in re.findall(r"<script\b[^>]*>", page):
            assert "src=" in tag or 'type="application/json"' in tag, tag
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", page)
        assert "<style" not in page
        assert "javascript:" not in page


# -- the sync's counts --------------------------------------------------------------------


@pytest.fixture
def admin_store(tmp_path):
    from rop.report.portal import select_portal
    from rop.report.scope import set_report_admin

    s = tiny_store(tmp_path)
    set_report_admin(s, select_portal(s).key, 2, True)
    yield s
    s.close()


def test_sync_counts_only_for_report_admins(admin_store):
    app = app_with(admin_store, demo=True)
    web = page_client(app, raise_server_exceptions=False)
    assert web.post("/api/sync", json={"full": False}).status_code == 200
    admin = web.get("/api/sync", params={"viewer": 2}).json()
    assert admin["state"] == "done" and admin["progress"]["total"] == 1234
    assert "1234" in admin["message"]
    for viewer in (4, 6):  # a manager and a head of another department
        status = web.get("/api/sync", params={"viewer": viewer}).json()
        assert status["state"] == "done" and status["runs"] == 1, viewer
        assert status["progress"] is None and status["message"] == ""
        assert "1234" not in json.dumps(status) and "567" not in json.dumps(status)
    # The page of a viewer who is no admin polls with its viewer.
    page = web.get("/report", params={**PERIOD, "viewer": 4}).text
    assert 'data-url="/api/sync?viewer=4"' in page


def test_sync_counts_follow_the_configured_viewer(admin_store):
    web = page_client(app_with(admin_store, viewer=4), raise_server_exceptions=False)
    answer = web.post("/api/sync", json={"full": False}).json()
    assert answer["state"] == "done" and answer["message"] == "" and answer["progress"] is None
    assert web.get("/api/sync").json()["progress"] is None
    # The page's token (every viewer's page has it) shows no more ...
    page_token = {"x-rop-token": web.app.state.token}
    assert web.get("/api/sync", headers=page_token).json()["progress"] is None
    # ... but the server's owner (`rop sync`, holding the file's token) sees what it synced.
    web.app.state.local_token = LOCAL
    local = {"x-rop-local-token": LOCAL}
    assert web.get("/api/sync", headers=local).json()["progress"]["total"] == 1234
    admin = page_client(app_with(admin_store, viewer=2), raise_server_exceptions=False)
    assert admin.get("/api/sync").json()["progress"] is None  # nothing synced there yet
    admin.post("/api/sync", json={"full": False})
    assert admin.get("/api/sync").json()["progress"]["total"] == 1234


# -- rop sync through a running server -----------------------------------------------------


def test_rop_sync_forwards_with_the_token_from_the_server_file(admin_store):
    from rop.bitrix.sync_remote import ForwardError, forward_sync
    from rop.store.holder import server_file

    runner = Runner()
    app = app_with(admin_store, runner)
    srv = serve_in_thread(app)
    try:
        path = server_file(admin_store.path)
        info = json.loads(path.read_text())
        assert info["token"] == app.state.local_token != app.state.token
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # the owner's only
        answer = forward_sync(admin_store.path, full=False)
        assert answer["state"] == "done" and runner.runs == 1
        # Without the token (a file from an older server), refused with the reason.
        path.write_text(json.dumps({"url": srv.url, "pid": info["pid"]}))
        with pytest.raises(ForwardError, match="X-ROP-Local-Token"):
            forward_sync(admin_store.path, full=False)
        assert runner.runs == 1
        # A plain cross-site POST over real HTTP is refused too.
        resp = httpx.post(
            f"{srv.url}/api/sync",
            data={"full": "true"},
            headers={"origin": "http://evil.example"},
        )
        assert resp.status_code == 403 and runner.runs == 1
    finally:
        srv.stop()
