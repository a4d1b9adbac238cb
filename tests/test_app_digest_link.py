"""A digest's in-app link, followed as a reader does: the emulated portal's
``/marketplace/view/<code>/?params[...]`` page -> the frame's POST to /app with
``PLACEMENT=REST_APP_URI`` and the params as ``PLACEMENT_OPTIONS`` -> the report
with the digest's filter (issue 14). Bad params open the default report.

Real HTTP both ways (tests/app_portal.py): the emulator renders the page a
browser gets, the test submits its frame form as the browser would.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from rop.digests.content import Links, report_filter, report_pairs
from rop.digests.subscriptions import make
from tests.app_portal import CLIENT_ID, Rig, app_rig

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    with app_rig(tmp_path_factory.mktemp("applink")) as opened:
        yield opened


def _frame_form(page: str) -> tuple[str, dict[str, str]]:
    """The app page's hidden form: where the frame POSTs, and what."""
    form = re.search(r'<form id="app-form"[^>]*action="([^"]*)"[^>]*>(.*?)</form>', page, re.S)
    assert form, page[:500]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', form[2]))
    return html.unescape(form[1]), {k: html.unescape(v) for k, v in fields.items()}


def _follow(rig: Rig, link: str, user: int = 1) -> tuple[dict[str, str], dict]:
    """Open ``link`` in the portal as ``user``: (the frame's fields, the report JSON it lands on)."""
    page = httpx.get(f"{link}&as={user}", timeout=30)  # the portal's viewer switch
    assert page.status_code == 200, page.text[:500]
    action, fields = _frame_form(page.text)
    assert action.startswith(rig.rop + "/app?")
    landed = httpx.post(action, data=fields, timeout=120)
    assert landed.status_code == 303, landed.text[:500]
    report = httpx.get(rig.rop + landed.headers["location"].replace("/report?", "/report.json?"),
                       timeout=120)  # fmt: skip
    assert report.status_code == 200, report.text[:500]
    return fields, report.json()


def test_the_digests_link_opens_the_report_with_its_filter(rig):
    assert "REST_APP_URI" in {p["placement"] for p in rig.state()["placements"]}
    portal = urlsplit(rig.emulator).netloc
    sub = make(portal, 2, frequency="weekly", weekday="mon", language="en",
               filter={"pipelines": [0, 1], "managers": [3]})  # fmt: skip
    flt = report_filter(sub, date(2026, 11, 30))
    link = Links(app_code=CLIENT_ID, portal_url=rig.emulator).to(report_pairs(sub, flt))
    assert "/marketplace/view/local.rop.test/?" in link
    fields, got = _follow(rig, link)
    assert fields["PLACEMENT"] == "REST_APP_URI"
    assert json.loads(fields["PLACEMENT_OPTIONS"]) == {
        "lang": "en", "period": "custom", "from": "2026-11-23", "to": "2026-11-29",
        "previous": "full", "pipeline": "0,1", "manager": "3",
    }  # fmt: skip
    report = got["report"]
    assert report["period"]["from"] == "2026-11-23" and report["period"]["to"] == "2026-11-29"
    assert sorted(report["filter"]["pipelines"]) == [0, 1]
    assert report["filter"]["managers"] == [3] and report["filter"]["previous"] == "full"
    assert {r["user_id"] for r in report["rows"] if r.get("user_id")} <= {3}


@pytest.mark.parametrize(
    "params",
    [
        {"period": "fortnight"},  # not a period
        {"period": "custom", "from": "2026-13-01", "to": "2026-11-29"},  # not a date
        {"period": "custom", "from": "2026-11-29", "to": "2026-11-01"},  # reversed
        {"pipeline": "999"},  # no such pipeline
        {"manager": "12345"},  # no such user
        {"section": "<script>"},
    ],
)
def test_bad_params_open_the_default_report(rig, params):
    link = f"{rig.emulator}/marketplace/view/{CLIENT_ID}/?" + urlencode(
        [(f"params[{k}]", v) for k, v in params.items()]
    )
    _, got = _follow(rig, link)
    default = httpx.get(rig.open_as(1).replace("/report?", "/report.json?"), timeout=120).json()
    assert got["report"]["period"] == default["report"]["period"]
    assert got["report"]["filter"] == default["report"]["filter"]


def test_options_that_are_not_a_json_object_are_ignored(rig):
    for raw in ("{not json", "[1, 2]", '"period"', json.dumps({"period": ["x"] * 3})):
        reply = rig.post_frame("/app", 1, PLACEMENT="REST_APP_URI", PLACEMENT_OPTIONS=raw)
        assert reply.status_code == 303, (raw, reply.text[:300])
        query = dict(parse_qsl(urlsplit(reply.headers["location"]).query))
        assert "period" not in query and "pipeline" not in query, raw


def test_the_emulator_has_no_page_for_another_code(rig):
    page = httpx.get(f"{rig.emulator}/marketplace/view/other.app/?params[period]=x", timeout=30)
    assert page.status_code == 404


def test_inside_the_app_a_reader_manages_their_own_digests_and_an_admin_anyones(rig):
    def token(user: int) -> str:
        return dict(parse_qsl(urlsplit(rig.open_as(user)).query))["vt"]

    def add(user: int, reader: int) -> httpx.Response:
        return httpx.post(
            f"{rig.rop}/api/digests", params={"vt": token(user)}, headers={"Origin": rig.rop},
            json={"user_id": reader, "frequency": "weekly", "channels": ["chat"]}, timeout=60,
        )  # fmt: skip

    assert add(3, 3).status_code == 200  # a manager: their own
    refused = add(3, 4)
    assert refused.status_code == 403, refused.text[:300]
    assert add(1, 4).status_code == 200  # the portal's administrator: anyone's
    page = httpx.get(f"{rig.rop}/settings/digests", params={"vt": token(3)}, timeout=60)
    assert page.status_code == 200
    assert "User4" not in page.text  # a manager's page lists their own digests only
    admin = httpx.get(f"{rig.rop}/settings/digests", params={"vt": token(1)}, timeout=60)
    assert admin.status_code == 200 and "User4" in admin.text
    no_token = httpx.get(f"{rig.rop}/settings/digests", timeout=60)
    assert no_token.status_code in (401, 403)


def test_a_link_naming_someone_outside_the_readers_rights_opens_their_report(rig):
    """Manager 3 opens a digest's link naming manager 4: not the report's 403, but
    the report manager 3 may see for the same period, with a note saying why."""
    portal = urlsplit(rig.emulator).netloc
    sub = make(portal, 1, frequency="weekly", weekday="mon", language="en",
               filter={"managers": [4]})  # fmt: skip
    flt = report_filter(sub, date(2026, 11, 30))
    link = Links(app_code=CLIENT_ID, portal_url=rig.emulator).to(report_pairs(sub, flt))
    page = httpx.get(f"{link}&as=3", timeout=30)
    action, fields = _frame_form(page.text)
    landed = httpx.post(action, data=fields, timeout=120)
    assert landed.status_code == 303, landed.text[:300]
    first = rig.rop + landed.headers["location"]
    assert "manager=4" in first and "via=link" in first
    narrowed = httpx.get(first, timeout=120)
    assert narrowed.status_code == 303, narrowed.text[:300]
    target = rig.rop + narrowed.headers["location"]
    query = dict(parse_qsl(urlsplit(target).query))
    assert "manager" not in query and query["from"] == "2026-11-23" and query["vt"]
    shown = httpx.get(target, timeout=120)
    assert shown.status_code == 200 and 'id="link-note"' in shown.text
    # The same link opened by the portal's administrator keeps its filter.
    page = httpx.get(f"{link}&as=1", timeout=30)
    action, fields = _frame_form(page.text)
    landed = httpx.post(action, data=fields, timeout=120)
    admin = httpx.get(rig.rop + landed.headers["location"], timeout=120)
    assert admin.status_code == 200 and 'id="link-note"' not in admin.text
