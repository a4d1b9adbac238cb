"""The access settings page inside the app: portal administrators manage the
report's own overrides (what `rop rights` does); nobody else can."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.app_portal import Rig, app_rig, installed

pytestmark = pytest.mark.timeout(300)

playwright_api = pytest.importorskip("playwright.sync_api")

MANAGER = 3  # sees only their own rows (tests/emulator_portal.py)
OTHER = 4


def _rows(report_url: str) -> set[int]:
    reply = httpx.get(report_url.replace("/report?", "/report.json?"), timeout=60)
    assert reply.status_code == 200, reply.text[:300]
    return {int(r["user_id"]) for r in reply.json()["report"]["rows"] if r.get("user_id")}


def _overrides(rig: Rig) -> list:
    cur = rig.app.state.store.cursor()
    try:
        return cur.query("SELECT viewer_id, user_id, allow FROM scope_overrides ORDER BY 1, 2")
    finally:
        cur.close()


def _rights_url(report_url: str) -> str:
    return report_url.replace("/report?", "/app/rights?")


def _frame(page, path: str, selector: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            try:
                if path in frame.url and frame.query_selector(selector):
                    return frame
            except playwright_api.Error:
                continue
        page.wait_for_timeout(250)
    raise AssertionError(f"no {selector} in a frame at {path}: {[f.url for f in page.frames]}")


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    with app_rig(tmp_path_factory.mktemp("rights"), install=False) as rig:
        installed(rig)
        yield rig


def test_an_administrator_changes_the_overrides_inside_the_portal(rig):
    manager_url = rig.open_as(MANAGER)
    assert _rows(manager_url) == {MANAGER}
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--test-third-party-cookie-phaseout"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{rig.emulator}/?as=1")
        page.click("#menu-app")
        frame = _frame(page, "/report", "#rights-link")
        frame.click("#rights-link")
        frame = _frame(page, "/app/rights", "#rights-add")
        assert "vt=" in frame.url  # the viewer's token rides in the URL, not a cookie
        frame.select_option("#rights-viewer", str(MANAGER))
        frame.select_option("#rights-verb", "allow")
        frame.select_option("#rights-user", str(OTHER))
        frame.click("#rights-add-button")
        row = f'#rights-overrides tr[data-viewer="{MANAGER}"][data-user="{OTHER}"]'
        frame = _frame(page, "/app/rights", row)
        assert _overrides(rig) == [(MANAGER, OTHER, True)]
        # What the manager sees follows at once (the cached reports went).
        assert _rows(manager_url) == {MANAGER, OTHER}

        frame.click(f"{row} button.rights-clear")
        deadline = time.monotonic() + 20
        while _overrides(rig) and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        assert _overrides(rig) == []
        gone = False  # the page reloads itself after the change
        while not gone and time.monotonic() < deadline:
            frame = _frame(page, "/app/rights", "#rights-add")
            try:
                gone = frame.query_selector(row) is None
            except playwright_api.Error:
                gone = False  # reloading meanwhile
            page.wait_for_timeout(200)
        assert gone
        assert _rows(manager_url) == {MANAGER}
        browser.close()


def test_nobody_else_changes_them(rig):
    admin_url = rig.open_as(1)
    manager_url = rig.open_as(MANAGER)
    before = _overrides(rig)
    body = {"action": "allow", "viewer": MANAGER, "user": OTHER}
    same_site = {"sec-fetch-site": "same-origin"}
    # A manager: no link on their report, and the page and its POST refused.
    page = httpx.get(manager_url, timeout=60)
    assert page.status_code == 200 and 'id="rights-link"' not in page.text
    assert 'id="rights-link"' in httpx.get(admin_url, timeout=60).text
    assert httpx.get(_rights_url(manager_url), timeout=30).status_code == 403
    refused = httpx.post(_rights_url(manager_url), json=body, headers=same_site, timeout=30)
    assert refused.status_code == 403, refused.text
    # No viewer token; a forged one; another site's POST with the admin's token.
    bare = rig.rop + "/app/rights?lang=ru"
    assert httpx.get(bare, timeout=30).status_code == 401
    assert httpx.post(bare, json=body, headers=same_site, timeout=30).status_code == 401
    forged = _rights_url(admin_url).replace("vt=", "vt=x")
    assert httpx.post(forged, json=body, headers=same_site, timeout=30).status_code == 401
    cross = httpx.post(
        _rights_url(admin_url), json=body, headers={"origin": "https://evil.example"}, timeout=30
    )
    assert cross.status_code == 403, cross.text
    # Bad input from the admin's own page: 400 with the field named.
    bad = httpx.post(
        _rights_url(admin_url),
        json={"action": "allow", "viewer": MANAGER, "user": 999999},
        headers=same_site,
        timeout=30,
    )
    assert bad.status_code == 400, bad.text
    assert (
        httpx.post(
            _rights_url(admin_url), json={"action": "grant"}, headers=same_site, timeout=30
        ).status_code
        == 400
    )
    assert _overrides(rig) == before
    assert _rows(manager_url) == {MANAGER}


def test_a_full_copy_is_for_administrators_the_ordinary_sync_for_everyone(rig):
    def sync_url(report_url: str) -> str:
        return rig.rop + "/api/sync?vt=" + report_url.split("vt=")[1].split("&")[0]

    manager, admin = sync_url(rig.open_as(MANAGER)), sync_url(rig.open_as(1))
    own = {"origin": rig.rop}
    runs = httpx.get(admin, timeout=30).json()["runs"]
    refused = httpx.post(manager, json={"full": True, "wait": False}, headers=own, timeout=30)
    assert refused.status_code == 403, refused.text
    assert "администратор" in refused.json()["error"]["message"]
    assert httpx.get(admin, timeout=30).json()["runs"] == runs  # nothing started
    ordinary = httpx.post(manager, json={"wait": True}, headers=own, timeout=120)
    assert ordinary.status_code == 200, ordinary.text
    full = httpx.post(admin, json={"full": True, "wait": True}, headers=own, timeout=300)
    assert full.status_code == 200, full.text
    assert full.json()["full"] is True
