"""The whole story of issue 10 in Chromium with third-party cookies blocked.

`rop demo --app` (rop.rundemo.run_demo_app) serves the emulated portal on
127.0.0.1 and the report as its application on ``localhost``: another site,
so the report's frame is a third-party frame, as in a real portal. Chromium
runs with ``--test-third-party-cookie-phaseout`` (Chrome's own switch that
blocks third-party cookies); the report must not need any.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from rop.config import load_settings
from tests.app_portal import won_deals

pytestmark = pytest.mark.timeout(420)

playwright_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from rop.rundemo import run_demo_app

    folder = tmp_path_factory.mktemp("appdemo")
    port = _free_port()
    settings = load_settings(
        db=str(folder / "rop.duckdb"), port=port, app_public_url=f"http://localhost:{port}"
    )
    got: dict = {}
    ready = threading.Event()
    stop = threading.Event()

    def on_ready(info: dict) -> None:
        got.update(info)
        ready.set()

    thread = threading.Thread(
        target=run_demo_app,
        args=(settings,),
        kwargs={"deals": 400, "say": lambda _: None, "ready": on_ready, "stop": stop},
        daemon=True,
    )
    thread.start()
    assert ready.wait(240), "the demo did not start"
    got["folder"] = Path(folder) / "demo" / "portal"
    yield got
    stop.set()
    thread.join(30)


def _snapshot(folder: Path, name: str) -> list[dict]:
    return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))


def _subtree(departments: list[dict], root: int) -> set[int]:
    out, todo = set(), [root]
    while todo:
        d = todo.pop()
        out.add(d)
        todo += [int(x["ID"]) for x in departments if str(x.get("PARENT") or "") == str(d)]
    return out


def _rows(frame_url: str) -> set[int]:
    reply = httpx.get(frame_url.replace("/report?", "/report.json?"), timeout=120)
    assert reply.status_code == 200, reply.text[:300]
    return {int(r["user_id"]) for r in reply.json()["report"]["rows"] if r.get("user_id")}


def _report_frame(page, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            try:
                if "/report" in frame.url and frame.query_selector("#report-table"):
                    return frame
            except playwright_api.Error:
                continue  # navigated or detached meanwhile
        # Playwright's sync API learns of new frames only while it runs.
        page.wait_for_timeout(500)
    texts = []
    for frame in page.frames:
        try:
            texts.append((frame.url, frame.inner_text("body")[:300]))
        except Exception as exc:  # a frame gone meanwhile
            texts.append((frame.url, repr(exc)))
    raise AssertionError(f"no report in the frame: {texts}")


def _eval(page, script: str):
    """``script`` in the report's frame, again if the page reloaded meanwhile."""
    for _ in range(20):
        try:
            return _report_frame(page).evaluate(script)
        except playwright_api.Error:
            page.wait_for_timeout(250)
    raise AssertionError("the report kept reloading")


def _open_as(page, portal: str, user: int):
    page.goto(f"{portal}/?as={user}")
    page.click("#menu-app")
    return _report_frame(page)


def test_the_whole_story(demo):
    folder = demo["folder"]
    departments = _snapshot(folder, "department.get")
    users = _snapshot(folder, "user.get")
    admins = set(json.loads((folder / "portal.json").read_text())["admins"])
    admin = min(admins)
    first_dept = {int(u["ID"]): int((u.get("UF_DEPARTMENT") or [0])[0]) for u in users}
    heads = [
        (int(d["UF_HEAD"]), int(d["ID"]))
        for d in departments
        if d.get("UF_HEAD") and d.get("PARENT") and int(d["UF_HEAD"]) not in admins
    ]
    head, head_dept = heads[0]
    headed = {int(d["ID"]) for d in departments if str(d.get("UF_HEAD")) == str(head)}
    head_depts = set().union(*(_subtree(departments, d) for d in headed))
    manager = next(
        u
        for u in sorted(first_dept)
        if u not in admins and u not in {h for h, _ in heads} and first_dept[u] in head_depts
    )

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--test-third-party-cookie-phaseout"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        # 1. The administrator installs the app; the first copy shows its progress.
        page.goto(f"{demo['portal']}/?as={admin}")
        page.click("#install")
        page.wait_for_selector("iframe")
        deadline = time.monotonic() + 60
        status = None
        while status is None and time.monotonic() < deadline:
            status = next((f for f in page.frames if "/app/install" in f.url), None)
            page.wait_for_timeout(200)
        assert status is not None, [f.url for f in page.frames]
        frame = _report_frame(page)
        assert _eval(page, "document.cookie") == ""  # the report needs no cookie
        everyone = _rows(frame.url)
        # The page fits the frame at 1280 px: no inner scroll bar of the frame
        # (it grows with the page through fitWindow; the portal scrolls).
        sizes = {}
        for _ in range(40):
            frame = _report_frame(page)  # the page may reload itself (new data)
            try:
                sizes = frame.evaluate(
                    "({sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth,"
                    " sh: document.documentElement.scrollHeight,"
                    " ch: document.documentElement.clientHeight})"
                )
            except playwright_api.Error:
                continue
            if sizes["sw"] <= sizes["cw"] and sizes["sh"] <= sizes["ch"] + 1:
                break
            page.wait_for_timeout(250)
        assert sizes["sw"] <= sizes["cw"] and sizes["sh"] <= sizes["ch"] + 1, sizes

        # 2. A department head: only their departments' people.
        frame = _open_as(page, demo["portal"], head)
        seen = _rows(frame.url)
        expected = {u for u, d in first_dept.items() if d in head_depts} | {head}
        assert seen and seen <= expected, (seen, expected)
        assert seen < everyone

        # 3. A plain manager: only their own.
        frame = _open_as(page, demo["portal"], manager)
        assert _rows(frame.url) <= {manager}

        # 4. A number, then a deal: its card opens in the portal's slider.
        frame = _open_as(page, demo["portal"], admin)
        pages_before = len(context.pages)
        frame.click("#report-table a.drill >> nth=0")
        frame.wait_for_selector("#drill-body a.card", timeout=60000)
        frame.click("#drill-body a.card >> nth=0")
        page.wait_for_selector("#slider iframe", timeout=20000)
        assert len(context.pages) == pages_before

        # 5. A deal moves to a won stage in the portal: the report shows it
        # within 10 seconds, without a click.
        frame = _open_as(page, demo["portal"], admin)
        store = demo["app"].state.store.cursor()
        try:
            portal_key, deal = store.query(
                "SELECT portal, id FROM deals WHERE stage_semantic = 'P' AND category_id = 0 "
                "ORDER BY id LIMIT 1"
            )[0]
        finally:
            store.close()
        won = demo["emulator"].state.portal
        page.wait_for_timeout(3000)  # let any reload of its own settle first
        frame = _report_frame(page)
        before_url = frame.url
        won_before = won_deals(before_url)
        frame.evaluate("window.__rop_marker = 1")
        won.update("deal", int(deal), {"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S"}, history=True)
        started = time.monotonic()
        reloaded = False
        while time.monotonic() - started < 10:
            frame = next((f for f in page.frames if "/report" in f.url), frame)
            try:
                reloaded = frame.evaluate("window.__rop_marker === undefined")
            except Exception:
                reloaded = False
            if reloaded:
                break
            page.wait_for_timeout(250)
        assert reloaded, "the report did not refresh itself within 10 s"
        assert frame.url.split("vt=")[0] == before_url.split("vt=")[0]
        store = demo["app"].state.store.cursor()
        try:
            stage = store.scalar(
                "SELECT stage_id FROM deals WHERE portal = ? AND id = ?", [portal_key, deal]
            )
        finally:
            store.close()
        assert stage == "WON"
        assert won_deals(frame.url) == won_before + 1

        # 6. Uninstall with clean: that portal's data is gone from the store.
        page.goto(f"{demo['portal']}/?as={admin}")
        page.click("#uninstall-clean")
        deadline = time.monotonic() + 20
        store = demo["app"].state.store.cursor()
        try:
            while time.monotonic() < deadline:
                left = store.scalar("SELECT count(*) FROM deals WHERE portal = ?", [portal_key])
                if left == 0:
                    break
                time.sleep(0.2)
            assert left == 0
            assert store.scalar("SELECT count(*) FROM app_portals") == 0
        finally:
            store.close()
        browser.close()
