"""One manager's page (issue 15): the report's row whole, in real Chromium.

On a generated demo portal (seed 1, 3000 deals; the portal's today is its
clock). The page's figures must be the report's row for the manager, its
department average the subtotal over the department's rows, every number a
drill-down that lists what it counts (each week of the 12-week trend, each
funnel step, each stuck count), rights as the report's (403), and the page
prints on one A4 sheet.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.web_client import page_client

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PERIOD = {"period": "last_month"}
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from rop.store import open_store
    from tests.demo_stores import demo_store_copy

    tmp = tmp_path_factory.mktemp("manager")
    demo_store_copy(tmp_path_factory, tmp / "demo.duckdb", seed=1, deals=3000)
    s = open_store(tmp / "demo.duckdb")
    yield s
    s.close()


@pytest.fixture(scope="module")
def app(store):
    from rop.config import Settings
    from rop.web import create_app

    return create_app(Settings(db=store.path, demo=True), store)


@pytest.fixture(scope="module")
def web(app):
    return page_client(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def report(web):
    return web.get("/report.json", params=PERIOD).json()["report"]


def _busiest(report: dict) -> int:
    rows = sorted(report["rows"], key=lambda r: -(r["figures"].get("deals_new") or 0))
    return rows[0]["user_id"]


def _idle(store, report: dict) -> int:
    """A user of the portal with no row in the report: nothing in the period or now."""
    shown = {r["user_id"] for r in report["rows"]}
    idle = [u for (u,) in store.query("SELECT id FROM users ORDER BY id") if u not in shown]
    assert idle, "the demo portal has a user with nothing to show"
    return idle[0]


def _value(web, link: str):
    listed = web.get(link.replace("/drill?", "/drill.json?", 1) + "&limit=1")
    assert listed.status_code == 200, link
    return listed.json()["value"]


def test_the_pages_figures_are_the_reports_row(web, report):
    by_dept: dict = {}
    for r in report["rows"]:
        by_dept.setdefault(r["department_id"], []).append(r)
    prev_rows = {r["user_id"]: r["figures"] for r in report["previous"]["rows"]}
    rows = sorted(report["rows"], key=lambda r: -(r["figures"].get("deals_new") or 0))
    for row in (rows[0], rows[len(rows) // 2], rows[-1]):
        uid = row["user_id"]
        page = web.get(f"/manager/{uid}.json", params=PERIOD)
        assert page.status_code == 200, page.text
        data = page.json()
        assert data["previous"]["from"] == report["previous"]["period"]["from"]
        dept = next(d for d in report["departments"] if d["department_id"] == row["department_id"])
        members = len(by_dept[row["department_id"]])
        assert data["department"] == {"department_id": row["department_id"], "managers": members}
        assert [f["key"] for f in data["figures"]] == [c["key"] for c in report["columns"]]
        for f in data["figures"]:
            key = f["key"]
            assert f["value"] == row["figures"][key], (uid, key)
            if not f["now"]:
                assert f["previous"] == prev_rows[uid][key], (uid, key)
            assert f["department_value"] == dept["figures"][key]
            if f["averaged"] and f["department_value"] is not None:
                assert f["department_average"] == pytest.approx(
                    dept["figures"][key] / members, abs=0.01
                )
            else:
                assert f["department_average"] == dept["figures"][key]


def test_a_manager_without_data_gets_zeros(web, store, report):
    uid = _idle(store, report)
    data = web.get(f"/manager/{uid}.json", params=PERIOD).json()
    values = {f["key"]: f["value"] for f in data["figures"]}
    assert values["deals_new"] == 0 and values["calls_total"] == 0
    assert values["deals_win_rate"] is None  # nothing to divide by, as the report says
    assert all(sum(data["weeks"][k]) == 0 for k in ("new", "won", "lost", "calls"))
    assert data["funnels"] == [] and data["stuck"] == []
    page = web.get(f"/manager/{uid}", params=PERIOD)
    assert page.status_code == 200
    assert 'id="funnel-empty"' in page.text and 'id="stuck-empty"' in page.text


def test_every_week_funnel_step_and_stuck_count_is_its_drill_down(web, report):
    uid = _busiest(report)
    data = web.get(f"/manager/{uid}.json", params=PERIOD).json()
    weeks = data["weeks"]
    assert len(weeks["weeks"]) == 12 and weeks["weeks"][-1][1] == data["today"]
    assert sum(weeks["new"]) > 0 and sum(weeks["calls"]) > 0
    for name in ("new", "won", "lost", "calls"):
        for count, link in zip(weeks[name], weeks["drill"][name], strict=True):
            assert parse_qs(urlsplit(link).query)["user"] == [str(uid)]
            assert _value(web, link) == count, (name, link)
    assert data["funnels"], "the busiest manager has a funnel"
    for step in data["funnels"][0]["steps"]:
        assert _value(web, step["drill"]) == step["count"]
    assert data["stuck"], "the busiest manager has stuck deals"
    for stuck in data["stuck"]:
        assert _value(web, stuck["drill"]) == stuck["count"] >= len(stuck["records"])


def test_the_quality_section_is_the_managers_row_of_the_panel(web, report):
    panel = web.get("/quality.json", params=PERIOD).json()["quality"]
    rows = {r["user_id"]: r for r in panel["rows"]}
    worst = panel["rows"][0]["user_id"]  # the panel's worst row has problems to drill
    checked = 0
    for uid in dict.fromkeys((worst, _busiest(report))):
        data = web.get(f"/manager/{uid}.json", params=PERIOD).json()["quality"]
        want = rows[uid]
        for k in ("figures", "score", "open_records", "open_with_problems"):
            assert data["row"][k] == want[k], (uid, k)
        assert [c["key"] for c in data["columns"]] == [c["key"] for c in panel["columns"]]
        assert data["settings"] == panel["settings"]
        page = web.get(f"/manager/{uid}", params=PERIOD).text
        shown = re.findall(
            r'class="quality-check" data-key="([^"]+)"[^>]*>.*?href="([^"]+)"', page, re.S
        )
        check_keys = {c["key"] for ch in data["checks"] for c in ch["columns"]}
        assert [k for k, _ in shown] == [
            c["key"] for ch in data["checks"] for c in ch["columns"] if want["figures"][c["key"]]
        ]
        assert all(k in check_keys for k, _ in shown)
        for col in data["columns"]:
            n = want["figures"][col["key"]]
            if not n:
                continue
            assert parse_qs(urlsplit(col["drill"]).query)["user"] == [str(uid)]
            listed = web.get(col["drill"].replace("/drill?", "/drill.json?", 1))
            assert listed.json()["total_records"] == n, (uid, col["key"])
            checked += 1
        for key, href in shown:
            assert href.replace("&amp;", "&") == next(
                c["drill"] for c in data["columns"] if c["key"] == key
            )
    assert checked, "the demo portal has data-quality problems to drill"


def test_rights_are_the_reports(web, report):
    uid = _busiest(report)
    other = next(r["user_id"] for r in report["rows"] if r["user_id"] != uid)
    # A manager (no head of anything) sees only themselves, as in the report.
    assert web.get(f"/manager/{uid}.json", params={**PERIOD, "viewer": uid}).status_code == 200
    for path in (f"/manager/{other}", f"/manager/{other}.json"):
        assert web.get(path, params={**PERIOD, "viewer": uid}).status_code == 403
    assert web.get("/manager/999999", params=PERIOD).status_code == 404
    assert web.get("/manager/abc", params=PERIOD).status_code == 404
    assert web.get(f"/manager/{uid}", params={"period": "someday"}).status_code == 400


def test_the_page_follows_the_fair_comparison(web, report):
    uid = _busiest(report)
    same = web.get(f"/manager/{uid}.json", params={"period": "this_month"}).json()
    full = web.get(f"/manager/{uid}.json", params={"period": "this_month", "previous": "full"})
    full = full.json()
    # The demo portal's clock is inside its month: the page compares its days so far.
    assert same["previous"]["ongoing"] and same["previous"]["mode"] == "to_date"
    assert same["previous"]["current"]["to"] == same["today"]
    assert same["previous"]["to"] < full["previous"]["to"] and full["previous"]["mode"] == "full"
    page = web.get(f"/manager/{uid}", params={"period": "this_month"}).text
    assert 'id="manager-compare-note">те же дни:' in page
    assert re.search(r'id="compare-switch" href="[^"]*previous=full', page)


def test_links_carry_the_app_mode_viewer_token():
    from rop.web.urls import VIEWER_TOKEN, Urls

    token = VIEWER_TOKEN.set("signed.token")
    try:
        assert Urls().manager([("lang", "ru")], 7) == "/manager/7?lang=ru&vt=signed.token"
    finally:
        VIEWER_TOKEN.reset(token)


needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (apt-get install -y chromium); required in CI",
)


@pytest.fixture(scope="module")
def server(app):
    from rop.web import serve_in_thread

    srv = serve_in_thread(app)
    yield srv.url
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


@pytest.mark.browser
@needs_chromium
def test_the_page_in_chromium_from_the_reports_name_to_one_a4_sheet(page, server, report):
    uid = _busiest(report)
    page.goto(server + "/report?period=last_month")
    link = page.locator(f'#report-table a.manager-link[href*="/manager/{uid}?"]')
    # The profile link stays beside the name.
    profile = link.locator("xpath=following-sibling::a[contains(@class, 'profile')]")
    assert re.search(rf"/company/personal/user/{uid}/$", profile.get_attribute("href") or "")
    link.click()
    page.wait_for_selector("#manager-weeks svg")
    row = next(r for r in report["rows"] if r["user_id"] == uid)
    assert page.inner_text("#manager-name").startswith(row["name"])
    won = page.locator('#figures-deals tr[data-key="deals_won"] td.value a.drill')
    assert won.inner_text() == str(row["figures"]["deals_won"])
    # A number opens its records in the panel, as in the report.
    won.click()
    page.wait_for_selector("#drill-panel.open #drill-body .drill-title")
    assert f"{row['figures']['deals_won']}" in page.inner_text("#drill-body")
    page.click("#drill-close")
    page.wait_for_selector("#drill-panel:not(.open)", state="attached")
    if os.environ.get("ROP_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-manager.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and _pages(pdf) == 1
    # English, and a manager with nothing to show prints on one sheet too.
    page.goto(server + f"/manager/{uid}?period=last_month&lang=en")
    page.wait_for_selector("#manager-weeks svg")
    assert "Department average" in page.inner_text("#manager-figures")
    assert _pages(page.pdf(format="A4")) == 1


@pytest.mark.browser
@needs_chromium
def test_the_page_of_a_manager_without_data_renders(page, server, store, report):
    uid = _idle(store, report)
    page.goto(server + f"/manager/{uid}?period=last_month")
    page.wait_for_selector("#manager-figures")
    new = page.locator('#figures-deals tr[data-key="deals_new"] td.value')
    assert new.inner_text().strip() == "0" and new.locator("a").count() == 0  # nothing to list
    assert page.is_visible("#funnel-empty") and page.is_visible("#stuck-empty")
    assert _pages(page.pdf(format="A4")) == 1
