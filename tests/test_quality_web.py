"""The data-quality panel over HTTP (its fragment, JSON twin and XLSX), in a
real chromium (loaded after the page, a number opens its records), and on the
command line (`rop report --quality`, `rop drill`)."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fixtures.portals import PORTALS, load
from tests.test_web_browser import ARGS, CHROMIUM, wait_for
from tests.web_client import page_client

NOV = "from=2026-11-01&to=2026-11-30"


@pytest.fixture(scope="module")
def store_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("quality") / "q.duckdb"
    load("quality", path).close()
    return path


@pytest.fixture(scope="module")
def client(store_file):
    from rop.config import Settings
    from rop.store import open_store
    from rop.web import create_app

    store = open_store(store_file)
    settings = Settings(db=store_file, quality_stale_days=60)
    with page_client(create_app(settings, store), raise_server_exceptions=False) as c:
        yield c
    store.close()


def test_fragment_json_and_xlsx_agree_and_every_number_drills(client):
    data = client.get(f"/quality.json?{NOV}").json()["quality"]
    assert data["settings"]["stale_days"] == 60  # the settings reach the panel
    assert data["total"]["figures"]["quality_deal_stale"] == 0  # D2 moved 51 days ago
    assert data["total"]["figures"]["quality_contact_duplicate"] == 2
    page = client.get(f"/quality?{NOV}")
    assert page.status_code == 200 and 'id="quality-table"' in page.text
    rows = re.findall(r'data-user="(\d+)"', page.text)
    assert rows == [str(r["user_id"]) for r in data["rows"]]  # worst first
    links = re.findall(r'href="([^"]*figure=quality_lead_slow[^"]*)"', page.text)
    assert links  # per manager and the total
    for href in links:
        href = href.replace("&amp;", "&").replace("/drill?", "/drill.json?")
        got = client.get(href).json()
        user = re.search(r"user=(\d+)", href)
        want = (
            next(r for r in data["rows"] if r["user_id"] == int(user.group(1)))
            if user
            else data["total"]
        )
        assert got["total_records"] == want["figures"]["quality_lead_slow"]
    # A tooltip per column, the CRM names isolated.
    assert 'id="tip-quality_lead_slow"' in page.text and "<bdi>" in page.text
    book = client.get(f"/quality.xlsx?{NOV}")
    assert book.status_code == 200
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    header = [c.value for c in sheet[4]]
    col = header.index("Похожие контакты") + 1
    assert sheet.cell(row=4 + len(data["rows"]) + 1, column=col).value == 2  # the total line


def test_bad_filter_is_a_clear_4xx(client):
    r = client.get("/quality.json?from=2026-11-30&to=2026-11-01")
    assert 400 <= r.status_code < 500


def test_cli_report_quality_and_drill(store_file, monkeypatch):
    from rop.cli import cli

    monkeypatch.setenv("ROP_QUALITY_CHECKS", "client_duplicate,lead_slow")
    runner = CliRunner()
    got = runner.invoke(
        cli, ["report", "--db", str(store_file), "--from", "2026-11-01", "--to", "2026-11-30",
              "--quality", "--format", "json"],
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    panel = json.loads(got.output)
    assert [c["name"] for c in panel["checks"]] == ["lead_slow", "client_duplicate"]
    table = runner.invoke(
        cli, ["report", "--db", str(store_file), "--period", "this_month", "--today",
              "2026-11-25", "--quality", "--lang", "en"],
    )  # fmt: skip
    assert table.exit_code == 0 and "Total" in table.output and "duplicate" in table.output
    drill = runner.invoke(
        cli, ["drill", "--db", str(store_file), "--from", "2026-11-01", "--to", "2026-11-30",
              "--figure", "quality_contact_duplicate"],
    )  # fmt: skip
    assert drill.exit_code == 0, drill.output
    assert sorted(r["id"] for r in json.loads(drill.output)["records"]) == [1, 2]
    bad = runner.invoke(
        cli, ["report", "--db", str(store_file), "--period", "this_month", "--quality",
              "--format", "csv"],
    )  # fmt: skip
    assert bad.exit_code == 2 and "--quality" in bad.output


@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (apt-get install -y chromium); required in CI",
)
def test_panel_loads_after_the_page_and_a_number_opens_its_records(store_file):
    from playwright.sync_api import sync_playwright

    from rop.config import Settings
    from rop.store import open_store
    from rop.web import create_app, serve_in_thread

    store = open_store(store_file)
    srv = serve_in_thread(create_app(Settings(db=store_file), store))
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = b.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(f"{srv.url}/report?{NOV}")
            wait_for(pg, "!!document.getElementById('quality-table')")
            link = pg.locator("#quality-total a.drill[href*='quality_contact_duplicate']")
            assert link.inner_text() == "2"
            link.click()
            pg.wait_for_selector("#drill-panel.open #drill")
            assert pg.locator("#drill").get_attribute("data-total") == "2"
            b.close()
        assert errors == [], errors
    finally:
        srv.stop()
        store.close()


@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (apt-get install -y chromium); required in CI",
)
def test_panel_fits_1920_and_the_reader_picks_checks_to_fit_1366(store_file):
    """Folded column heads: every check fits a 1920 px screen; at 1366 the reader
    hides two checks and it fits, a choice kept after a reload."""
    from playwright.sync_api import sync_playwright

    from rop.config import Settings
    from rop.store import open_store
    from rop.web import create_app, serve_in_thread

    width = (
        "(() => { const t = document.getElementById('quality-table');"
        " return [t.scrollWidth, t.parentElement.clientWidth]; })()"
    )
    store = open_store(store_file)
    srv = serve_in_thread(create_app(Settings(db=store_file), store))
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            wide = b.new_page(viewport={"width": 1920, "height": 1080})
            wide.goto(f"{srv.url}/report?{NOV}")
            wait_for(wide, "!!document.getElementById('quality-table')")
            assert wide.locator("#quality-table thead th").count() == 19  # user, score, 17
            used, room = wide.evaluate(width)
            assert used <= room, (used, room)
            page = b.new_page(viewport={"width": 1366, "height": 768})
            page.goto(f"{srv.url}/report?{NOV}")
            wait_for(page, "!!document.getElementById('quality-table')")
            used, room = page.evaluate(width)
            assert used > room  # every check does not fit 1366 px
            page.click("#quality-pick summary")
            for check in ("dismissed_owner", "client_no_reach"):
                page.uncheck(f"#quality-pick input[value={check}]")
            used, room = page.evaluate(width)
            assert used <= room, (used, room)
            hidden = "#quality-table [data-check=dismissed_owner]"
            assert page.locator(hidden).count() > 4  # four heads, their rows and total
            assert page.locator(f"{hidden}:visible").count() == 0
            page.reload()
            wait_for(page, "!!document.getElementById('quality-table')")
            wait_for(page, "document.getElementById('quality-pick').dataset.ready === '1'")
            assert page.locator(f"{hidden}:visible").count() == 0
            assert not page.locator("#quality-pick input[value=dismissed_owner]").is_checked()
            assert page.locator("#quality-table [data-check=lead_slow]:visible").count() > 0
            b.close()
    finally:
        srv.stop()
        store.close()


def test_fixture_portal_is_where_the_tests_look():
    assert (Path(PORTALS) / "quality" / "crm.activity.list.json").exists()


def test_the_cli_reads_the_panel_through_a_server_holding_the_store(store_file):
    """While `rop serve` holds the store, `rop report --quality` asks it (cli/remote.py)."""
    from rop.cli import remote
    from rop.config import Settings
    from rop.report.quality import build_quality
    from rop.store import open_store
    from rop.store.holder import read_holder
    from rop.web import create_app, serve_in_thread
    from tests.test_quality import NOV as NOV_FILTER

    store = open_store(store_file)
    srv = serve_in_thread(create_app(Settings(db=store_file), store))
    try:
        holder = read_holder(store_file)
        assert holder is not None and holder.token
        o = {"period": None, "date_from": "2026-11-01", "date_to": "2026-11-30",
             "pipelines": (), "key_stages": (), "key_statuses": (), "sections": (),
             "departments": (), "managers": (), "viewer": None, "min_call_seconds": 0,
             "max_call_seconds": None, "by": "manager", "no_compare": False, "today": None}  # fmt: skip
        panel = remote.quality(holder, o)
        assert panel["total"] == build_quality(store, NOV_FILTER)["total"]
    finally:
        srv.stop()
        store.close()
