"""The page's stage section in a real chromium: the matrix renders as a heatmap,
and a click on a cell opens the drill panel with exactly that many records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_web_browser import ARGS, CHROMIUM, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"{CHROMIUM} is missing (apt-get install -y chromium); required in CI",
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from rop.bitrix.snapshot import load_snapshot
    from rop.config import Settings
    from rop.demo.generator import generate
    from rop.store import open_store
    from rop.web import create_app, serve_in_thread

    tmp = tmp_path_factory.mktemp("stages")
    generate(tmp / "portal", seed=2, deals=800)
    store = open_store(tmp / "demo.duckdb")
    load_snapshot(store, tmp / "portal")
    last = store.scalar("SELECT max(date_create) FROM deals").date()
    srv = serve_in_thread(create_app(Settings(db=store.path, demo=True), store))
    yield srv.url, last
    srv.stop()
    store.close()


def test_matrix_heatmap_cell_opens_its_records(server):
    from playwright.sync_api import sync_playwright

    url, last = server
    start = last.replace(day=1)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = b.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(f"{url}/report?from={start.isoformat()}&to={last.isoformat()}&section=deals")
        # The section is closed and not built until opened (rop/web/stages_section.py).
        assert pg.locator("[data-stage-chart=matrix]").count() == 0
        pg.locator("#stages-toggle > summary").click()
        heat = pg.locator("[data-stage-chart=matrix]").first
        heat.wait_for()
        heat.scroll_into_view_if_needed()
        wait_for(
            pg,
            "(() => { const el = document.querySelector('[data-stage-chart=matrix]');"
            " return !!(el && el.__ropChart); })()",
        )
        assert heat.locator("svg").count() == 1
        # The biggest cell of the first matrix, and where the heatmap draws it.
        cell = pg.evaluate(
            """() => {
              const b = JSON.parse(document.getElementById('stages-data').textContent)[0];
              const c = b.cells.reduce((a, x) => x.count > a.count ? x : a);
              const el = document.querySelector('[data-stage-chart=matrix]');
              const [x, y] = el.__ropChart.convertToPixel({seriesIndex: 0}, [c.x, c.y]);
              return {count: c.count, figure: c.figure, x, y};
            }"""
        )
        assert cell["count"] > 0
        box = heat.bounding_box()
        pg.mouse.click(box["x"] + cell["x"], box["y"] + cell["y"])
        pg.wait_for_selector("#drill-panel.open #drill")
        drill = pg.locator("#drill")
        assert drill.get_attribute("data-figure") == cell["figure"]
        assert int(drill.get_attribute("data-total")) == cell["count"]
        # The table under the heatmap links the same cell to the same list.
        link = pg.locator(f"table.stage-matrix a.drill[data-figure='{cell['figure']}']").first
        assert int(link.inner_text()) == cell["count"]
        b.close()
        assert errors == [], errors


def test_json_twin_and_stuck_days_field(server):
    import httpx

    url, last = server
    start = last.replace(day=1).isoformat()
    q = f"from={start}&to={last.isoformat()}&section=deals"
    data = httpx.get(f"{url}/report.json?{q}&stuck_days=3&stages=1").json()
    stages = data["report"]["stages"]
    assert stages["stuck_days"] == 3 and data["filter"]["stuck_days"] == 3
    p = stages["deals"]["pipelines"][0]
    # The stuck link carries the threshold: its list has exactly that many records.
    page = httpx.get(f"{url}/report?{q}&stuck_days=3").text
    assert 'id="stages"' in page and "stuck_days=3" in page
    drill = httpx.get(
        f"{url}/drill.json?{q}&stuck_days=3&figure={p['stuck']['figure'].replace('|', '%7C')}"
    ).json()
    assert drill["total_records"] == p["stuck"]["count"]
    bad = httpx.get(f"{url}/report?{q}&stuck_days=abc")
    assert 400 <= bad.status_code < 500
