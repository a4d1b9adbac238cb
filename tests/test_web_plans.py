"""The plans page and routes: real uvicorn, real HTTP, and real Chromium for the grid.

The store is tests/fixtures/plans_portal (November 2026); the server runs in
demo mode, so ``?viewer=`` chooses who is asking.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import httpx
import openpyxl
import pytest

from tests.fixtures import plans_portal
from tests.test_web_browser import ARGS, CHROMIUM

NOV = "from=2026-11-01&to=2026-11-30"


def _post(url, **kw):
    """A POST as the page's script sends it (the same-origin guard wants to know)."""
    kw["headers"] = {"sec-fetch-site": "same-origin", **kw.get("headers", {})}
    kw.setdefault("timeout", 30)
    return httpx.post(url, **kw)


@pytest.fixture
def server(tmp_path):
    from rop.config import Settings
    from rop.web import create_app, serve_in_thread

    store = plans_portal.build(tmp_path / "plans.duckdb")
    app = create_app(Settings(db=store.path, demo=True), store)
    srv = serve_in_thread(app)
    yield srv.url
    srv.stop()
    store.close()


def _save(url, viewer=None, **entry):
    q = f"?viewer={viewer}" if viewer else ""
    body = {"entries": [{"subject": "user", "id": 2, "figure": "deals_won_amount",
                         "period": "2026-11", "value": "160 000", **entry}]}  # fmt: skip
    return _post(f"{url}/api/plans{q}", json=body, timeout=30)


def test_rights_over_http(server):
    # A manager changes no plan: 403 with the reason, and nothing is written.
    r = _save(server, viewer=2)
    assert r.status_code == 403 and "нет права менять план пользователя 2" in r.text.lower()
    # A cross-site POST never reaches the plans (the web's same-origin guard).
    forged = _post(f"{server}/api/plans", json={"entries": []},
                   headers={"sec-fetch-site": "cross-site"})  # fmt: skip
    assert forged.status_code == 403
    # The head of department 1: their managers yes, department 2 no.
    assert _save(server, viewer=1).status_code == 200
    r = _save(server, viewer=1, subject="department", id=2)
    assert r.status_code == 403
    assert _save(server, viewer=9, subject="department", id=2).status_code == 200
    # Bad input is a 400 with a message, never a 500.
    assert _save(server, value="много").status_code == 400
    assert _save(server, period="2026-13").status_code == 400
    bad = _post(f"{server}/api/plans", content=b"{", timeout=30,
                     headers={"content-type": "application/json"})  # fmt: skip
    assert bad.status_code == 400
    grid = httpx.get(f"{server}/plans.json?year=2026&figure=deals_won_amount", timeout=30).json()
    peter = next(r for r in grid["rows"] if r["subject"] == "user" and r["id"] == 2)
    assert peter["plans"][10] == 160000.0
    # A manager sees only their own row and their department's.
    mine = httpx.get(f"{server}/plans.json?year=2026&viewer=2", timeout=30).json()
    assert {(r["subject"], r["id"]) for r in mine["rows"]} == {("department", 1), ("user", 2)}
    assert not any(r["editable"] for r in mine["rows"])
    # The report JSON carries the plan at once (the cache knows plans changed).
    report = httpx.get(f"{server}/report.json?{NOV}", timeout=30).json()["report"]
    row = next(r for r in report["plans"]["rows"] if r["user_id"] == 2)
    assert row["figures"]["deals_won_amount"]["plan"] == 160000.0
    html = httpx.get(f"{server}/report?{NOV}&viewer=1", timeout=30).text
    assert 'id="plans-link" class="muted" href="/plans?lang=ru&amp;viewer=1"' in html


def test_import_over_http_is_all_or_nothing(server):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["subject", "id", "name", "figure", "period", "plan"])
    sheet.append(["user", 3, "Анна", "deals_won_amount", "2026-11", 100000])
    sheet.append(["user", 4, "Олег", "deals_won_amount", "2026-11", 5])
    buf = io.BytesIO()
    book.save(buf)
    data = base64.b64encode(buf.getvalue()).decode()
    # The head of department 1 may not set user 4's plan: nothing is imported.
    r = _post(f"{server}/api/plans/import?viewer=1",
                   json={"filename": "p.xlsx", "data": data}, timeout=30)  # fmt: skip
    assert r.status_code == 403
    r = _post(f"{server}/api/plans/import", json={"filename": "p.xlsx", "data": data},
                   timeout=30)  # fmt: skip
    assert r.json() == {"read": 2, "changed": 2}
    r = _post(f"{server}/api/plans/import", json={"filename": "p.xlsx", "data": "%%"},
                   timeout=30)  # fmt: skip
    assert r.status_code == 400


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")
def test_enter_a_plan_in_the_grid_reload_see_the_bar_and_import_the_template(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(accept_downloads=True, locale="ru-RU")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def open_grid():
            page.goto(server + "/plans")
            page.wait_for_selector("#plans-grid-wrap[data-ready='1']")
            page.fill("#plans-year", "2026")
            page.dispatch_event("#plans-year", "change")
            page.wait_for_selector("input[data-key='user|2|deals_won_amount|2026-11']")

        open_grid()
        cell = page.locator("input[data-key='user|2|deals_won_amount|2026-11']")
        cell.fill("160 000")
        cell.press("Tab")
        page.click("#plans-save")
        # Locator waits, not string evaluation: the page's CSP forbids eval.
        expect(page.locator("#plans-status")).to_have_text("Сохранено: 1")
        # Reload: the plan is in the store, shown the Russian way.
        open_grid()
        shown = page.locator("input[data-key='user|2|deals_won_amount|2026-11']").input_value()
        assert re.sub(r"\D", "", shown) == "160000" and shown != "160000"

        # The report shows the progress bar and % done (150 000 of 160 000: 94 %, amber).
        page.goto(f"{server}/report?{NOV}")
        line = page.locator(
            "#plan-fact table[data-figure='deals_won_amount'] tr.plan-line", has_text="Пётр"
        )
        assert line.get_attribute("data-status") == "amber"
        assert line.locator("progress.plan-bar").get_attribute("value") == "94"
        assert "94 %" in line.locator(".plan-pct").inner_text()
        # The pipeline forecast drills into the deals behind it, with their weight.
        with page.expect_navigation():
            line.locator("a.forecast-drill").click()
        assert "figure=forecast_pipeline" in page.url and "user=2" in page.url
        body = page.locator("main").inner_text()
        assert "Сделка 301" in body and "Сделка 302" not in body

        # Download the template, fill Анна's plan, import it back.
        open_grid()
        page.fill("#plans-month", "2026-11")
        page.dispatch_event("#plans-month", "change")
        with page.expect_download() as dl:
            page.click("#plans-template")
        path = tmp_path / "template.xlsx"
        dl.value.save_as(path)
        book = openpyxl.load_workbook(path)
        for row in book.active.iter_rows(min_row=2):
            if (row[0].value, row[1].value, row[3].value) == ("user", 3, "deals_won_amount"):
                row[5].value = 100000
        book.save(path)
        page.set_input_files("#plans-file", str(path))
        expect(page.locator("#plans-status")).to_have_text("Загружено: 1")
        anna = page.locator("input[data-key='user|3|deals_won_amount|2026-11']").input_value()
        assert re.sub(r"\D", "", anna) == "100000"
        page.goto(f"{server}/report?{NOV}")
        line = page.locator(
            "#plan-fact table[data-figure='deals_won_amount'] tr.plan-line", has_text="Анна"
        )
        assert line.get_attribute("data-status") == "red"
        assert "30 %" in line.locator(".plan-pct").inner_text()
        context.close()
        browser.close()
        assert errors == [], errors


def test_trend_chart_carries_the_plan_line(server):
    # Plan of 4 won deals for November: 0.2 a working day, 0 on 4 November and weekends.
    body = {"entries": [{"subject": "department", "id": 1, "figure": "deals_won",
                         "period": "2026-11", "value": 4}]}  # fmt: skip
    assert _post(f"{server}/api/plans", json=body, timeout=30).status_code == 200
    charts = httpx.get(f"{server}/report.json?{NOV}", timeout=30).json()["charts"]
    trend = charts["trend"]
    plan = dict(zip(trend["labels"], trend["plan_won"], strict=True))
    assert plan["2026-11-03"] == 0.2 and plan["2026-11-04"] == 0.0 and plan["2026-11-07"] == 0.0
    assert sum(trend["plan_won"]) == pytest.approx(0.2 * len([v for v in plan.values() if v]))


def test_copy_last_months_plans_only_where_one_may(server):
    oct_ = [{"subject": s, "id": i, "figure": "deals_won", "period": "2026-10", "value": v}
            for s, i, v in (("user", 2, 3), ("user", 4, 5), ("department", 2, 9))]  # fmt: skip
    assert _post(f"{server}/api/plans", json={"entries": oct_}, timeout=30).json() == {
        "changed": 3}  # fmt: skip
    # The head of department 1 copies what they may change: user 2's plan only.
    r = _post(f"{server}/api/plans/copy?viewer=1", json={"from": "2026-10", "to": "2026-11"},
                   timeout=30)  # fmt: skip
    assert r.json() == {"changed": 1}
    grid = httpx.get(f"{server}/plans.json?year=2026&figure=deals_won", timeout=30).json()
    nov = {(row["subject"], row["id"]): row["plans"][10] for row in grid["rows"]}
    assert nov[("user", 2)] == 3.0 and nov[("user", 4)] is None and nov[("department", 2)] is None
    assert _post(f"{server}/api/plans/copy?viewer=2", json={"from": "2026-10", "to": "2026-11"},
                      timeout=30).json() == {"changed": 0}  # fmt: skip
    bad = _post(f"{server}/api/plans/copy", json={"from": "октябрь", "to": "2026-11"},
                     timeout=30)  # fmt: skip
    assert bad.status_code == 400
