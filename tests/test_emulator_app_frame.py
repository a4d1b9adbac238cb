"""The emulator's portal page frames an app that runs the real @bitrix24/b24jssdk.

Debian's chromium through Playwright; the SDK is the vendored UMD build
(rop/web/static/vendor/b24jssdk/), unmodified. The stand-in app lives on
``localhost`` while the portal is ``127.0.0.1``: another site, as in Bitrix24.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.emulator.config import AppSettings
from tests.emulator_portal import write_portal

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SDK = Path(__file__).resolve().parent.parent / "rop/web/static/vendor/b24jssdk/b24jssdk.umd.min.js"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"{CHROMIUM} is missing (apt-get install -y chromium); required in CI",
    ),
]

# The stand-in app: initialise the SDK, report what it got, install on the first run.
APP_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>app</title>
<script src="/sdk.js"></script></head><body><p id="out">loading</p>
<button id="open" type="button">open deal 5</button>
<button id="finish" type="button">finish the install</button>
<div style="height:1500px"></div>
<script>
(async () => {
  const out = document.getElementById('out');
  try {
    const $b24 = await B24Js.initializeB24Frame();
    const auth = $b24.auth.getAuthData();
    const profile = await $b24.actions.v2.call.make({method: 'profile'});
    window.state = {
      install: $b24.isInstallMode, firstRun: $b24.isFirstRun,
      placement: $b24.placement.placement, memberId: auth.member_id, domain: auth.domain,
      profileId: profile.getData().result.ID, isAdmin: $b24.auth.isAdmin, name: window.name,
    };
    if ($b24.isInstallMode) {
      await $b24.actions.v2.call.make({method: 'placement.bind', params: {
        PLACEMENT: 'LEFT_MENU', HANDLER: location.origin + '/app', TITLE: 'ROP left'}});
      await $b24.actions.v2.call.make({method: 'event.bind', params: {
        event: 'ONAPPINSTALL', handler: location.origin + '/events'}});
      // An install wizard: installFinish when the admin presses the button.
      document.getElementById('finish').onclick = () => $b24.installFinish();
      out.textContent = 'installing';
      return;
    }
    await $b24.parent.setTitle('Report for ' + profile.getData().result.NAME);
    await $b24.parent.resizeWindow(900, 777);
    const refreshed = await $b24.auth.refreshAuth();
    window.state.refreshed = refreshed.access_token !== auth.access_token;
    document.getElementById('open').onclick = () => {
      $b24.slider.openPath($b24.slider.getUrl('/crm/deal/details/5/')).then(r => { window.sliderResult = r; });
    };
    out.textContent = 'ready';
  } catch (e) {
    out.textContent = 'error: ' + (e && e.message || e);
  }
})();
</script></body></html>"""


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def page(request: Request) -> Response:
        form = await request.form() if request.method == "POST" else {}
        received.append(
            {
                "path": request.url.path,
                "method": request.method,
                "query": dict(request.query_params),
                "form": {k: str(v) for k, v in form.items()},
            }
        )
        return HTMLResponse(APP_PAGE)

    async def events(request: Request) -> Response:
        form = await request.form()
        received.append({"path": "/events", "form": {k: str(v) for k, v in form.items()}})
        return PlainTextResponse("ok")

    async def sdk(request: Request) -> Response:
        return Response(SDK.read_bytes(), media_type="text/javascript")

    app = Starlette(
        routes=[
            Route("/app", page, methods=["GET", "POST"]),
            Route("/install", page, methods=["GET", "POST"]),
            Route("/events", events, methods=["POST"]),
            Route("/sdk.js", sdk),
        ]
    )
    with serve_in_thread(app) as base:
        yield base.replace("127.0.0.1", "localhost"), received


@pytest.fixture(scope="module")
def emulator(tmp_path_factory, standin) -> Iterator[tuple[str, Any]]:
    app_base, _ = standin
    folder = write_portal(tmp_path_factory.mktemp("frame") / "portal", deals=20)
    settings = AppSettings(
        client_id="local.frame.test",
        client_secret="secret",
        handler=f"{app_base}/app",
        install_url=f"{app_base}/install",
    )
    app = create_app(folder, EmulatorConfig(rate_limit=False, test_api=True, app=settings))
    with serve_in_thread(app) as base:
        yield base, app


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def frame_state(page: Any, want: str) -> dict[str, Any]:
    frame = page.frame_locator("#app-frame")
    frame.locator("#out").filter(has_text=want).wait_for(timeout=15000)
    handle = page.frame(name=page.locator("#app-frame").get_attribute("name"))
    assert handle is not None
    return handle.evaluate("window.state")


def test_install_open_and_talk_to_the_portal_through_the_real_sdk(
    emulator, standin, browser
) -> None:
    base, app = emulator
    _, received = standin
    host = app.state.engine.host
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{base}/?as=1")
    page.click("#install")
    page.wait_for_url(f"{base}/marketplace/app/1/")
    # The install page: install mode, first run, the admin's token, window.name set.
    state = frame_state(page, "installing")
    assert state["install"] is True and state["firstRun"] is True and state["isAdmin"] is True
    domain = base.split("://")[1]
    first = next(r for r in received if r["path"] == "/install")
    assert first["method"] == "POST"
    assert first["query"]["DOMAIN"] == domain and first["query"]["PROTOCOL"] == "0"
    assert first["query"]["LANG"] == "ru"
    sid = first["query"]["APP_SID"]
    assert state["name"] == f"{domain}|0|{sid}"
    form = first["form"]
    assert form["PLACEMENT"] == "DEFAULT" and form["PLACEMENT_OPTIONS"] == "{}"
    assert form["SERVER_ENDPOINT"] == f"{base}/oauth/rest/"
    assert form["AUTH_EXPIRES"] == "3600" and form["status"] == "L"
    assert form["member_id"] == state["memberId"]
    assert form["APPLICATION_SCOPE"] == "crm,user,department,telephony,placement,im"
    info = httpx.get(f"{base}/oauth/rest/app.info", params={"auth": form["AUTH_ID"]}).json()
    assert info["result"]["user_id"] == 1 and info["result"]["install"]["domain"] == domain

    # installFinish reloads the page into the app; ONAPPINSTALL goes to the bound handler.
    assert not host.app.installed
    page.frame_locator("#app-frame").locator("#finish").click()
    state = frame_state(page, "ready")
    assert host.app.installed and state["install"] is False and state["placement"] == "DEFAULT"
    assert state["profileId"] == "1" and state["refreshed"] is True
    assert state["domain"] == base
    deadline = time.monotonic() + 15
    while not any(r["path"] == "/events" for r in received) and time.monotonic() < deadline:
        time.sleep(0.05)
    event = next(r for r in received if r["path"] == "/events")["form"]
    assert event["event"] == "ONAPPINSTALL"
    assert event["auth[application_token]"] == host.app.application_token
    app_post = [r for r in received if r["path"] == "/app"][-1]["form"]
    assert app_post["APPLICATION_TOKEN"] == host.app.application_token

    # setTitle and resizeWindow reached the portal page.
    assert page.locator("#app-title").inner_text() == "Report for User1"
    assert page.locator("#app-frame").evaluate("f => f.style.height") == "777px"

    # openPath: the deal's card in the right-side slider; closing it answers the app.
    page.frame_locator("#app-frame").locator("#open").click()
    page.locator("#slider").wait_for(state="visible")
    slider = page.frame_locator("#slider-frame")
    assert slider.locator("#card-id").inner_text() == "5"
    assert "/crm/deal/details/5/" in page.locator("#slider-frame").get_attribute("src")
    page.click("#slider-close")
    assert page.locator("#slider").is_hidden()
    handle = page.frame(name=page.locator("#app-frame").get_attribute("name"))
    assert handle is not None
    handle.wait_for_function("window.sliderResult !== undefined")
    assert handle.evaluate("window.sliderResult") == {"isOpenAtNewWindow": False, "isClose": True}

    # The LEFT_MENU placement the installer bound shows in the menu and posts its code.
    page.click("a.menu-left")
    state = frame_state(page, "ready")
    assert state["placement"] == "LEFT_MENU"
    assert [r for r in received if r["path"] == "/app"][-1]["form"]["PLACEMENT"] == "LEFT_MENU"

    # Another user: their own token, not an admin.
    page.goto(f"{base}/?as=3")
    page.click("#menu-app")
    state = frame_state(page, "ready")
    assert state["profileId"] == "3" and state["isAdmin"] is False
    assert page.locator("#app-title").inner_text() == "Report for User3"
    assert errors == []
    context.close()


def test_before_install_finish_a_manager_sees_the_not_ready_note(tmp_path: Path, browser) -> None:
    folder = write_portal(tmp_path / "portal", deals=5)
    settings = AppSettings(handler="http://localhost:9/app", install_url="http://localhost:9/i")
    app = create_app(folder, EmulatorConfig(rate_limit=False, test_api=True, app=settings))
    with serve_in_thread(app) as base:
        httpx.post(f"{base}/_emulator/app/install", json={"user_id": 1})
        page = browser.new_page()
        page.goto(f"{base}/marketplace/app/1/?as=3")
        assert page.locator("#app-not-ready").is_visible()
        assert page.locator("#menu-app").count() == 0  # nothing in the menu until installFinish
        page.close()
