"""The web report in real headless Chromium, against a real uvicorn server.

The store is loaded from a generated demo portal; the portal's URL points at
the Bitrix24 emulator, which serves record cards and profiles, so the links
the report makes are followed for real. ROP_SCREENSHOTS=1 also writes the
screenshots under docs/.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parent.parent / "docs"
XSS = "<script>alert(1)</script>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"{CHROMIUM} is missing (apt-get install -y chromium); required in CI",
    ),
]


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    """A demo portal: a store loaded from it and the emulator serving its cards."""
    from rop.emulator.app import create_app as emulator_app
    from rop.emulator.server import serve_in_thread as emulator_thread
    from rop.store import open_store
    from tests.demo_stores import demo_store_copy

    tmp = tmp_path_factory.mktemp("browser")
    folder, key = demo_store_copy(tmp_path_factory, tmp / "demo.duckdb", seed=1, deals=3000)
    store = open_store(tmp / "demo.duckdb")
    with emulator_thread(emulator_app(folder)) as emulator_url:
        store.execute("UPDATE portals SET url = ? WHERE portal = ?", [emulator_url, key])
        yield store, emulator_url
    store.close()


@pytest.fixture(scope="module")
def server(portal):
    from rop.config import Settings
    from rop.web import create_app, serve_in_thread

    store, _ = portal
    app = create_app(Settings(db=store.path, demo=True), store)
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
    context = browser.new_context(
        viewport={"width": 1500, "height": 950}, accept_downloads=True, locale="ru-RU"
    )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # Anything the Content-Security-Policy refuses (an inline script or style,
    # eval) is a bug in the page: the browser would silently drop it.
    pg.on(
        "console",
        lambda m: "Content Security Policy" in m.text and errors.append("csp: " + m.text),
    )
    pg.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert errors == [], errors


def wait_for(pg, expression: str, timeout: float = 30.0) -> None:
    """Wait until ``expression`` is true in the page. Playwright's own
    wait_for_function evaluates its predicate with eval() inside the page,
    which the pages' Content-Security-Policy refuses (as it should), so the
    predicate is asked from outside (page.evaluate goes through DevTools)."""
    import time

    deadline = time.monotonic() + timeout
    while not pg.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.05)


def _number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def _screenshot(pg, name: str, full_page: bool = False) -> None:
    if os.environ.get("ROP_SCREENSHOTS") == "1":
        pg.screenshot(path=str(DOCS / name), full_page=full_page)


def test_report_filters_drill_downs_and_links(page, server, portal):
    _, emulator_url = portal
    page.goto(server + "/report")
    assert page.locator("#report-table tfoot tr.total").count() == 1
    # Every column header explains its figure on hover.
    header = page.locator("#report-table th[data-key='deals_won']")
    header.hover()
    tip = header.locator(".tip")
    assert tip.is_visible() and "успешно" in tip.inner_text()

    # Change the period: the preset submits the filter, and the URL carries it.
    with page.expect_navigation():
        page.select_option("#period", "last_month")
    assert "period=last_month" in page.url
    # Change the pipeline: choose the second one and apply.
    page.click("#pick-pipelines summary")
    box = page.locator("#pick-pipelines input[name=pipeline]").nth(1)
    pipeline = box.get_attribute("value")
    box.check()
    with page.expect_navigation():
        page.click("#apply")
    assert f"pipeline={pipeline}" in page.url and "period=last_month" in page.url
    # The pipeline filter is back to all pipelines for a richer table.
    with page.expect_navigation():
        page.goto(server + "/report?period=last_month")
    page.wait_for_selector("#charts svg")
    _screenshot(page, "screenshot-report.png", full_page=True)

    # Three different numbers (different figures and rows), each small enough for one page.
    links = page.locator("#report-table tbody a.drill")
    picked: list[tuple[int, str, int]] = []
    seen_figures: set[str] = set()
    seen_users: set[str] = set()
    for i in range(links.count()):
        link = links.nth(i)
        q = parse_qs(urlsplit(link.get_attribute("href") or "").query)
        if "user" not in q:
            continue  # subtotals drill too, but the check below names a manager
        fig, user = q["figure"][0], q["user"][0]
        if (
            fig in seen_figures
            or user in seen_users
            or not fig.endswith(("_new", "_won", "_total"))
        ):
            continue
        value = _number(link.inner_text())
        if 1 <= value <= 50:
            picked.append((i, fig, value))
            seen_figures.add(fig)
            seen_users.add(user)
        if len(picked) == 3:
            break
    assert len(picked) == 3, picked
    for n, (i, fig, value) in enumerate(picked):
        links.nth(i).click()
        page.wait_for_selector(f"#drill-panel.open #drill[data-figure='{fig}']")
        assert _number(page.inner_text("#drill-total")) == value
        row_name = links.nth(i).locator("xpath=ancestor::tr/th").inner_text().split("\n")[0]
        assert page.inner_text("#drill-who").strip() == row_name.strip()
        rows = page.locator("#drill-records tbody tr")
        assert rows.count() == value
        cards = page.locator("#drill-records tbody a.card")
        assert cards.count() >= value  # the ID (and the title) link to the card
        href = cards.first.get_attribute("href") or ""
        assert href.startswith(emulator_url + "/crm/") and re.search(r"/details/\d+/$", href)
        assert cards.first.get_attribute("target") == "_blank"
        record_id = rows.first.get_attribute("data-id")
        assert httpx.get(href).status_code == 200
        if n == 0:
            # The card really opens in a new tab, on the record behind the number.
            with page.context.expect_page() as new_tab:
                cards.first.click()
            tab = new_tab.value
            tab.wait_for_load_state()
            assert tab.inner_text("#card-id") == str(_number(href.rsplit("/details/", 1)[1]))
            assert record_id is not None
            tab.close()
            _screenshot(page, "screenshot-drill.png")
        page.click("#drill-close")
        page.wait_for_selector("#drill-panel:not(.open)", state="attached")

    # A manager's name opens their profile in the portal.
    profile = page.locator("#report-table a.profile").first
    href = profile.get_attribute("href") or ""
    assert re.fullmatch(re.escape(emulator_url) + r"/company/personal/user/\d+/", href)
    with page.context.expect_page() as new_tab:
        profile.click()
    tab = new_tab.value
    tab.wait_for_load_state()
    assert tab.inner_text("#card-id") == href.rstrip("/").rsplit("/", 1)[1]
    tab.close()


def test_export_xlsx_and_switch_language(page, server):
    import openpyxl

    page.goto(server + "/report?period=last_month")
    names = page.locator("#report-table tr.row:not(.dismissed) a.manager-link").all_inner_texts()
    names = [n for n in names if "#" not in n]  # unknown users are titled by the export itself
    with page.expect_download() as download:
        page.click("#export-xlsx")
    path = download.value.path()
    book = openpyxl.load_workbook(io.BytesIO(Path(path).read_bytes()))
    texts = [c for row in book.worksheets[0].iter_rows(values_only=True) for c in row]
    texts = [c for c in texts if isinstance(c, str)]
    assert len(names) >= 5
    for name in names:
        assert any(name in t for t in texts), name

    with page.expect_navigation():
        page.click("#lang-switch")
    assert "lang=en" in page.url and "period=last_month" in page.url
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.inner_text("#report-table tfoot th") == "Total"
    assert "Won amount" in page.inner_text("#report-table thead")


def test_crm_strings_render_as_text(page, server, portal):
    from zoneinfo import ZoneInfo

    store, _ = portal
    row = store.query(
        "SELECT id, assigned_by_id, date_create FROM deals WHERE title = ? LIMIT 1", [XSS]
    )
    assert row, "the demo portal has a deal titled with a script tag"
    deal_id, owner, created = row[0]
    day = (created.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("Europe/Moscow"))).date()
    period = f"period=custom&from={day}&to={day + timedelta(days=0)}"
    page.goto(f"{server}/report?{period}")
    page.click(f"#report-table a.drill[href*='figure=deals_new&user={owner}']")
    page.wait_for_selector("#drill-panel.open #drill-records")
    cell = page.locator(f"#drill-records tr[data-id='{deal_id}'] a.card").nth(1)
    assert cell.inner_text() == XSS
    assert page.locator("#drill-records script").count() == 0


def test_viewer_scope_in_the_browser(page, server, portal):
    store, _ = portal
    # A manager who is not a head of any department sees only their own row.
    viewer = store.scalar(
        "SELECT u.id FROM users u WHERE u.active AND NOT coalesce(u.is_admin, FALSE) AND u.id NOT IN "
        "(SELECT head_id FROM departments WHERE head_id IS NOT NULL) ORDER BY u.id LIMIT 1"
    )
    page.goto(f"{server}/report?period=last_month&viewer={viewer}")
    rows = page.locator("#report-table tbody tr.row")
    assert rows.count() <= 1
    other = store.scalar("SELECT id FROM users WHERE id <> ? ORDER BY id LIMIT 1", [viewer])
    resp = page.goto(
        f"{server}/drill?period=last_month&viewer={viewer}&figure=deals_new&user={other}"
    )
    assert resp is not None and resp.status == 403
    assert page.locator("[role=alert]").count() == 1


def test_screenshots_are_saved_when_asked():
    if os.environ.get("ROP_SCREENSHOTS") != "1":
        pytest.skip("set ROP_SCREENSHOTS=1 to refresh docs/screenshot-*.png")
    for name in ("screenshot-report.png", "screenshot-drill.png"):
        assert (DOCS / name).stat().st_size > 10_000
    assert shutil.which("true")


def test_sync_button_shows_live_progress(browser, tmp_path):
    import threading

    from rop.config import Settings
    from rop.web import create_app, serve_in_thread
    from tests.test_web_support import PERIOD, tiny_store

    gate = threading.Event()

    def fake_sync(cur, url, *, full=False, progress=None):
        progress("deals", 5, 10)
        gate.wait(20)

    store = tiny_store(tmp_path)
    app = create_app(
        Settings(db=store.path, webhook="http://127.0.0.1:1/rest/1/x/"), store, fake_sync
    )
    srv = serve_in_thread(app)
    try:
        pg = browser.new_page()
        query = "&".join(f"{k}={v}" for k, v in PERIOD.items())
        pg.goto(f"{srv.url}/report?{query}")
        pg.click("#sync-button")
        wait_for(
            pg, "document.getElementById('sync-progress').textContent.includes('сделки 5 / 10')"
        )
        assert pg.is_disabled("#sync-button")
        with pg.expect_navigation():  # the page reloads with the new data when the sync ends
            gate.set()
        assert app.state.sync.status()["state"] == "done"
        pg.close()
    finally:
        gate.set()
        srv.stop()
        store.close()


def test_drill_panel_sorts_and_pages(page, server):
    page.goto(server + "/report?period=last_month")
    link = page.locator("#report-table tfoot a.drill[href$='figure=deals_new']").first
    total = _number(link.inner_text())
    assert total > 50
    link.click()
    page.wait_for_selector("#drill-panel.open #drill[data-figure='deals_new']")
    assert page.locator("#drill-records tbody tr").count() == 50
    page.click("#drill-next")
    page.wait_for_selector("#drill-prev")
    assert page.locator("#drill-records tbody tr").count() == min(50, total - 50)
    assert "51–" in page.inner_text("#drill .count")
    # Sorting by amount, then the other way round.
    page.click("#drill-records thead a:has-text('Сумма')")
    page.wait_for_selector("#drill-records th.sorted")
    first = page.locator("#drill-records tbody tr").first.get_attribute("data-id")
    page.click("#drill-records thead th.sorted a")
    wait_for(page, f"document.querySelector('#drill-records tbody tr').dataset.id !== '{first}'")
    # The first click sorted largest first (issue 9); the second the other way.
    assert "▲" in page.inner_text("#drill-records th.sorted")


def test_keyboard_dates_sections_and_empty_pictures(page, server):
    page.goto(server + "/report?period=last_month")
    # Dates read and type the Russian way; the form's filter is the one shown.
    assert page.input_value("#date-from").count(".") == 2
    page.fill("#date-from", "01.10.2026")
    page.fill("#date-to", "15102026")  # typed without dots: completed on leaving the field
    page.locator("#date-to").blur()
    assert page.input_value("#date-to") == "15.10.2026"
    assert page.input_value("#period") == "custom"
    # A date not in the calendar is refused in the field; the form stays.
    page.fill("#date-from", "31.02.2026")
    page.locator("#date-from").blur()
    assert "календаре" in page.evaluate("document.getElementById('date-from').validationMessage")
    url = page.url
    page.click("#apply")
    assert page.url == url
    page.fill("#date-from", "01.10.2026")
    page.locator("#date-from").blur()
    assert page.evaluate("document.getElementById('date-from').validity.valid")
    with page.expect_navigation():
        page.click("#apply")
    assert "period=custom" in page.url
    assert page.input_value("#date-from") == "01.10.2026"
    assert page.input_value("#date-to") == "15.10.2026"
    assert "15.10.2026" in page.inner_text("#sentence")

    # A bad date from a link or a bookmark keeps the page: the message stands
    # where the table would be, the field shows what was typed, and fixing it works.
    page.goto(server + "/report?period=custom&from=31.02.2026&to=2026-10-15")
    assert page.locator("#filter-problem [role=alert]").is_visible()
    assert "31.02.2026" in page.inner_text("#filter-problem")
    assert page.locator("#report-table").count() == 0
    assert page.input_value("#date-from") == "31.02.2026"
    assert page.input_value("#date-to") == "15.10.2026"
    assert page.input_value("#period") == "custom"
    assert page.get_attribute("#date-from", "aria-invalid") == "true"
    page.fill("#date-from", "01.10.2026")
    page.locator("#date-from").blur()
    assert page.get_attribute("#date-from", "aria-invalid") is None  # edited: no longer marked
    with page.expect_navigation():
        page.click("#apply")
    assert page.locator("#report-table").count() == 1
    assert "01.10.2026" in page.inner_text("#sentence")

    # A section link scrolls the table so the section starts right of the name column.
    page.goto(server + "/report?period=last_month")
    page.click("#section-nav a[data-section='leads']")
    # Scrolling is smooth: wait until the leads' first column sits right of the names.
    wait_for(
        page,
        """(() => {
          const first = document.querySelector('#report-table thead th.first').getBoundingClientRect();
          const leads = document.querySelector("#report-table thead th[data-key='leads_new']")
            .getBoundingClientRect();
          return Math.abs(leads.left - first.right) < 4;
        })()""",
    )
    assert page.locator("#report-table thead th[data-key='leads_new']").is_visible()
    assert page.locator("#section-leads .group-label").is_visible()

    # The drill panel: focus moves into it, Escape closes it and gives focus back.
    link = page.locator("#report-table tfoot a.drill[href$='figure=deals_new']").first
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#drill-panel.open #drill[data-figure='deals_new']")
    wait_for(page, "document.activeElement && document.activeElement.id === 'drill-title'")
    assert page.get_attribute("#drill-panel", "aria-hidden") == "false"
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('drill-panel').contains(document.activeElement)")
    page.keyboard.press("Escape")
    page.wait_for_selector("#drill-panel:not(.open)", state="attached")
    assert page.get_attribute("#drill-panel", "aria-hidden") == "true"
    assert page.evaluate(
        "document.activeElement && document.activeElement.matches(\"tfoot a.drill[href$='figure=deals_new']\")"
    )

    # Bars name every row in the page's language; no raw "user #" from the data.
    assert "user #" not in page.inner_text("#charts")

    # A period with nothing in it says so, in the table and in the pictures.
    page.goto(server + "/report?period=custom&from=2001-01-01&to=2001-01-31")
    assert page.locator("#quiet").is_visible()
    assert page.locator("#charts .chart-empty").count() >= 2
    assert page.locator("#charts svg").count() == 0


def test_amount_in_currency_shows_the_deal_currency(page, server, portal):
    from zoneinfo import ZoneInfo

    store, _ = portal
    row = store.query(
        "SELECT id, assigned_by_id, date_create FROM deals WHERE currency_id = 'USD' "
        "AND opportunity > 0 ORDER BY id LIMIT 1"
    )
    assert row, "the demo portal has deals in dollars"
    deal_id, owner, created = row[0]
    day = created.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("Europe/Moscow")).date()
    page.goto(f"{server}/drill?period=custom&from={day}&to={day}&figure=deals_new&user={owner}")
    cells = page.locator(f"#drill-records tr[data-id='{deal_id}']")
    assert cells.locator("td[data-key='opportunity']").inner_text().endswith("$")
    assert cells.locator("td[data-key='amount']").inner_text().endswith("₽")


def test_pickers_open_one_at_a_time(page, server):
    page.goto(server + "/report?period=last_month")
    page.click("#pick-pipelines summary")
    assert page.locator("#pick-pipelines[open]").count() == 1
    page.click("#pick-departments summary")
    assert page.locator("details.multi[open]").count() == 1
    assert page.locator("#pick-departments[open]").count() == 1
    page.keyboard.press("Escape")
    assert page.locator("details.multi[open]").count() == 0
    assert page.evaluate("document.activeElement.closest('#pick-departments') !== null")
    page.click("#pick-managers summary")
    page.fill("#pick-managers .options-search", "zzz-nobody")
    assert page.locator("#pick-managers .options label:visible").count() == 0
    page.fill("#pick-managers .options-search", "")
    assert page.locator("#pick-managers .options label:visible").count() > 5
    page.click("#sentence")  # a click elsewhere closes it
    assert page.locator("details.multi[open]").count() == 0


def test_pages_work_under_the_content_security_policy(page, browser, server):
    """The policy is in force and nothing of ours trips it: charts draw (with
    their tooltips), the drill panel opens through htmx and pages; the page
    fixture fails on any CSP report in the console."""
    resp = page.goto(server + "/report?period=last_month")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    page.wait_for_selector("#charts [data-chart='bars'] svg")
    # ECharts writes its tooltip as HTML with style attributes: the reason the
    # policy allows style attributes (style-src-attr) but no <style> or script.
    bars = page.locator("#charts [data-chart='bars']")
    bars.scroll_into_view_if_needed()
    box = bars.bounding_box()
    page.mouse.move(box["x"] + 300, box["y"] + 150, steps=10)
    wait_for(
        page,
        "[...document.querySelectorAll('#charts [data-chart=bars] div')]"
        ".some((d) => d.style.zIndex === '9999999' && d.innerText.trim() !== '')",
    )
    page.locator("#report-table tfoot a.drill[href$='figure=deals_new']").first.click()
    page.wait_for_selector("#drill-panel.open #drill-records tbody tr")
    page.click("#drill-records thead a:has-text('Сумма')")
    page.wait_for_selector("#drill-records th.sorted")

    # And it does bite: a script injected inline is refused by the browser.
    other = browser.new_page()
    try:
        other.goto(server + "/report?period=last_month")
        refused = other.evaluate(
            """() => new Promise((done) => {
                document.addEventListener("securitypolicyviolation",
                    (e) => done(e.violatedDirective), { once: true });
                const s = document.createElement("script");
                s.textContent = "window.__injected = 1";
                document.body.appendChild(s);
                setTimeout(() => done(window.__injected ? "ran" : "silent"), 2000);
            })"""
        )
        assert refused.startswith("script-src"), refused
    finally:
        other.close()
