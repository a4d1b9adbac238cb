"""The web page: the "—" rows' numbers are links, and "today" is the portal's (issue 17).

On the hand-made portal tests/fixtures/portals/blanks (now: 2026-10-20).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine

from rop.config import Settings
from rop.web import create_app
from tests.fixtures.portals import load
from tests.web_client import page_client

OCT = {"period": "custom", "from": "2026-10-01", "to": "2026-10-31"}


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    store = load("blanks", tmp_path_factory.mktemp("web") / "blanks.duckdb")
    yield page_client(create_app(Settings(db=store.path), store), raise_server_exceptions=False)
    store.close()


def line_links(page: str, name: str) -> list[str]:
    """The drill-down links of the table line (row or subtotal) called ``name``."""
    found = []
    for part in re.split(r"<tr class=\"(?:row|subtotal)", page.split("<tbody", 1)[1])[1:]:
        line = part.split("</tr>", 1)[0]
        head = re.search(r'<th class="first[^"]*"[^>]*>(.*?)</th>', line, re.S)
        # The name as read: without tags and bidi isolates.
        text = re.sub(r"<[^>]+>|[\u2066-\u2069]", "", head.group(1) if head else "").strip()
        if html.unescape(text).startswith(name):
            found.append(line)
    (line,) = found
    return [html.unescape(h) for h in re.findall(r'class="drill" href="([^"]+)"', line)]


@pytest.mark.parametrize(
    ("by", "name"),
    [("source", "Без источника"), ("department", "Без отдела"), ("pipeline", "Без воронки")],
)
def test_the_none_rows_numbers_click_through(web, by, name):
    page = web.get("/report", params={**OCT, "by": by})
    assert page.status_code == 200
    links = line_links(page.text, name)
    assert links  # the row's numbers are links now
    report = web.get("/report.json", params={**OCT, "by": by}).json()["report"]
    (none,) = [r for r in report["rows"] if r["key"] is None]
    for link in links:
        query = parse_qs(urlsplit(link).query)
        assert query["none"] == ["1"] and "row" not in query
        listed = web.get(link.replace("/drill?", "/drill.json?", 1))
        assert listed.status_code == 200, link
        figure = query["figure"][0]
        assert listed.json()["value"] == none["figures"][figure], (by, figure)


def test_the_no_department_subtotal_clicks_through(web):
    page = web.get("/report", params=OCT).text
    links = line_links(page, "Итого по отделу: Без отдела")
    assert links
    won = next(link for link in links if "figure=deals_won&" in link)
    listed = web.get(won.replace("/drill?", "/drill.json?", 1)).json()
    assert [r["id"] for r in listed["records"]] == [5]
    panel = web.get(won).text
    assert "Отдел: Без отдела" in panel


def test_the_pages_today_is_the_portals(web):
    for machine in (datetime(2026, 11, 2, tzinfo=UTC), datetime(2027, 5, 9, tzinfo=UTC)):
        with time_machine.travel(machine, tick=False):
            data = web.get("/report.json").json()  # default: this month
        assert (data["filter"]["from"], data["filter"]["to"]) == ("2026-10-01", "2026-10-31")
        assert data["report"]["today"] == "2026-10-20"
        assert data["report"]["total"]["figures"]["deals_overdue"] == 1
    pinned = web.get("/report.json", params={"today": "2026-10-26"}).json()
    assert pinned["report"]["total"]["figures"]["deals_overdue"] == 2
    assert "today=2026-10-26" in pinned["links"]["json"]  # a pinned day travels with links
    bad = web.get("/report.json", params={"today": "someday"})
    assert bad.status_code == 400


def test_a_today_out_of_range_is_a_400(web):
    bad = web.get("/report.json", params={"today": "0001-01-01"})
    assert bad.status_code == 400 and "today" in bad.text
