"""A digest's link naming a manager outside the reader's rights opens the report they may see.

Issue 14: the link was the report's 403 page. A link marks itself (via=link,
rop.digests.content.Links); the page then drops the people filters, keeps
the period and says why. A typed URL and the JSON twin keep their 403.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from rop.config import Settings
from rop.digests.content import Links
from rop.web import create_app
from tests.test_web_support import PERIOD, tiny_store
from tests.web_client import page_client


@pytest.fixture(scope="module")
def gleb(tmp_path_factory):
    """The web report as user 4, a manager who sees only himself (ROP_VIEWER=4)."""
    store = tiny_store(tmp_path_factory.mktemp("link_scope"))
    yield page_client(create_app(Settings(db=store.path, viewer=4), store, cache_size=0),
                      raise_server_exceptions=False)  # fmt: skip
    store.close()


def _follow(web, url: str) -> tuple[list[str], object]:
    """GET ``url`` following redirects by hand: (each location, the last answer)."""
    seen = []
    reply = web.get(url, follow_redirects=False)
    while reply.status_code in (302, 303):
        seen.append(reply.headers["location"])
        reply = web.get(reply.headers["location"], follow_redirects=False)
    return seen, reply


def _link(pairs: list[tuple[str, str]]) -> str:
    """The digest's link to the web report, as a path on the test client's server."""
    url = Links(report_url="https://rop.example.ru").to([("lang", "en"), *PERIOD.items(), *pairs])
    return url.removeprefix("https://rop.example.ru")


def test_a_link_outside_the_readers_rights_opens_their_report_with_a_note(gleb):
    link = _link([("manager", "5")])
    assert link.startswith("/?") and link.endswith("via=link")
    seen, page = _follow(gleb, link)
    assert page.status_code == 200, page.text[:300]
    query = dict(parse_qsl(urlsplit(seen[-1]).query))
    assert "manager" not in query and "via" not in query
    assert query["from"] == PERIOD["from"] and query["to"] == PERIOD["to"]  # the same period
    assert 'id="link-note"' in page.text and "outside your access" in page.text
    # The note goes with that one page: the filter's own links do not carry it.
    assert "note=outside_rights" not in page.text.split('id="link-note"')[1]
    # Only the reader's own rows, as the default report shows them.
    own = gleb.get("/report.json", params={**PERIOD, "lang": "en"}).json()
    shown = gleb.get(seen[-1].replace("/report?", "/report.json?")).json()
    assert shown["report"]["rows"] == own["report"]["rows"]


def test_a_link_within_the_rights_keeps_its_filter_and_says_nothing(gleb):
    seen, page = _follow(gleb, _link([("manager", "4")]))
    assert page.status_code == 200
    assert "manager=4" in seen[-1] and 'id="link-note"' not in page.text


def test_a_typed_url_and_the_json_twin_keep_their_403(gleb):
    typed = gleb.get("/report", params={**PERIOD, "manager": "5"})
    assert typed.status_code == 403
    twin = gleb.get("/report.json", params={**PERIOD, "manager": "5", "via": "link"})
    assert twin.status_code == 403


def test_a_department_outside_the_rights_is_dropped_the_same_way(gleb):
    denied = [
        d for d in ("10", "20")
        if gleb.get("/report", params={**PERIOD, "department": d}).status_code == 403
    ]  # fmt: skip
    assert denied, "user 4 should not choose every department"
    seen, page = _follow(gleb, _link([("department", denied[0]), ("pipeline", "0")]))
    assert page.status_code == 200 and 'id="link-note"' in page.text
    query = dict(parse_qsl(urlsplit(seen[-1]).query))
    assert "department" not in query and query["pipeline"] == "0"  # the rest of the filter kept
