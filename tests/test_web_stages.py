"""The page's stage section over HTTP: built only when asked, the same numbers everywhere.

The hand-made portal `stages` (see tests/test_report_stages.py) read for
November 2026 with "today" 2026-11-27.
"""

from __future__ import annotations

import io
import re

import pytest

from rop.config import Settings
from rop.web import create_app
from tests.fixtures.portals import load
from tests.web_client import page_client

Q = "period=custom&from=2026-11-01&to=2026-11-30&today=2026-11-27&lang=en"


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    db = tmp_path_factory.mktemp("webstages") / "s.duckdb"
    store = load("stages", db)
    yield page_client(create_app(Settings(db=db), store), raise_server_exceptions=False)
    store.close()


def _calls(monkeypatch) -> list[int]:
    """Count the stage section's builds (the real function still runs)."""
    import rop.report.stages as stages

    calls: list[int] = []
    real = stages.build_stages

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(stages, "build_stages", counted)
    import rop.report.build as build

    monkeypatch.setattr(build, "build_stages", counted)
    return calls


def test_the_page_does_not_build_the_section_until_it_is_opened(web, monkeypatch):
    calls = _calls(monkeypatch)
    page = web.get(f"/report?{Q}&stuck_days=9")
    assert page.status_code == 200
    assert calls == [], "the page built the stage section"
    # A closed section whose first opening fetches its content, with the page's filter.
    shell = re.search(r'<details class="stages-toggle"[^>]*>', page.text)
    assert shell and "open" not in shell.group(0).split("hx-get")[0]
    url = re.search(r'hx-get="([^"]+)"', shell.group(0)).group(1).replace("&amp;", "&")
    assert url.startswith("/report/stages?") and "stuck_days=9" in url
    assert "stage-matrix" not in page.text
    part = web.get(url)
    assert part.status_code == 200 and calls == [1]
    assert 'class="stage-matrix"' in part.text and 'id="stages-data"' in part.text
    assert "<html" not in part.text  # the section alone
    # Without scripts: the link builds the section into the page, open.
    inline = web.get(f"/report?{Q}&stuck_days=9&stages=1")
    assert 'class="stage-matrix"' in inline.text
    assert re.search(r'<details class="stages-toggle" id="stages-toggle" open>', inline.text)


def test_json_twin_has_the_section_when_asked_as_the_page_links_it(web):
    data = web.get(f"/report.json?{Q}&stages=1").json()
    p0 = next(p for p in data["report"]["stages"]["deals"]["pipelines"] if p["id"] == 0)
    assert p0["stuck"]["count"] == 4
    # A plain request costs what the page costs; the page's own links ask for it.
    assert "stages" not in web.get(f"/report.json?{Q}").json()["report"]
    page = web.get(f"/report?{Q}").text
    for fmt in ("json", "xlsx"):
        link = re.search(rf'id="export-{fmt}" href="([^"]+)"', page).group(1)
        assert "stages=1" in link, link


def test_stuck_threshold_per_pipeline_in_the_url(web):
    q = f"{Q}&stuck_days.0=20&stuck_days.1=13"
    data = web.get(f"/report.json?{q}&stages=1").json()
    assert data["filter"]["stuck_days_by_pipeline"] == {"0": 20, "1": 13}
    stuck = {p["id"]: p["stuck"] for p in data["report"]["stages"]["deals"]["pipelines"]}
    assert (stuck[0]["count"], stuck[0]["days"]) == (3, 20)
    assert (stuck[1]["count"], stuck[1]["days"]) == (1, 13)
    # The section's stuck link carries the thresholds: its list is that many records.
    part = web.get(f"/report/stages?{q}").text
    href = re.search(r'href="([^"]*deal_stuck%3A1[^"]*)"', part).group(1).replace("&amp;", "&")
    assert "stuck_days.1=13" in href
    listed = web.get(href.replace("/drill?", "/drill.json?", 1)).json()
    assert [r["id"] for r in listed["records"]] == [5]
    # The form shows each pipeline's own field, filled where given.
    page = web.get(f"/report?{q}").text
    assert re.search(r'name="stuck_days\.1" value="13"', page)
    # An empty field is the default; a pipeline not on the portal or a bad number is refused.
    assert (
        web.get(f"/report.json?{Q}&stuck_days.1=").json()["filter"]["stuck_days_by_pipeline"] == {}
    )
    for bad, says in (("stuck_days.9=3", "no pipeline 9"), ("stuck_days.1=abc", "abc")):
        r = web.get(f"/report.json?{Q}&{bad}")
        assert r.status_code == 400 and says in r.text, r.text


def test_xlsx_export_has_the_stage_sheets(web):
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(web.get(f"/report.xlsx?{Q}&stages=1").content))
    assert "Stages — matrix" in book.sheetnames or "Стадии — матрица" in book.sheetnames
