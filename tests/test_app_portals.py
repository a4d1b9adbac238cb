"""One server, several installed portals, each separate; each viewer sees their own."""

from __future__ import annotations

import httpx
import pytest

from tests.app_portal import app_rigs, installed

pytestmark = pytest.mark.timeout(300)


def _report(url: str) -> dict:
    json_url = url.replace("/report?", "/report.json?")
    reply = httpx.get(json_url, timeout=60)
    assert reply.status_code == 200, reply.text[:300]
    return reply.json()


def _deals(report: dict) -> int:
    total = report["report"]["total"]
    found = [v for k, v in _flat(total) if k == "deals_new"]
    assert found, list(_flat(total))[:10]
    return int(found[0] or 0)


def _flat(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, dict | list):
                yield from _flat(v, k)
            else:
                yield k, v
    elif isinstance(node, list):
        for v in node:
            yield from _flat(v, prefix)


def test_two_portals_on_one_server_stay_apart(tmp_path):
    with app_rigs(tmp_path, portals=2) as (one, two):
        installed(one)
        installed(two)
        store = one.app.state.store.cursor()
        try:
            rows = store.query("SELECT member_id, portal FROM app_portals ORDER BY member_id")
            counts = dict(store.query("SELECT portal, count(*) FROM deals GROUP BY portal"))
        finally:
            store.close()
        assert len(rows) == 2 and rows[0][1] != rows[1][1]
        assert counts[rows[0][1]] == 60 and counts[rows[1][1]] == 67
        first, second = _report(one.open_as(1)), _report(two.open_as(1))
        assert first["report"]["portal"]["key"] == rows[0][1]
        assert second["report"]["portal"]["key"] == rows[1][1]
        # A frame token of portal one, presented as portal two: refused. Each
        # emulator is its own auth server, so portal two's does not know it...
        issued = one.tokens(1)["access_token"]
        reply = two.post_frame("/app", 1, AUTH_ID=issued)
        assert reply.status_code == 401, reply.text
        # ...and through the auth server that does (Bitrix24 has one for all
        # portals), it names portal one, not the portal the request claims.
        reply = two.post_frame(
            "/app", 1, AUTH_ID=issued, SERVER_ENDPOINT=one.emulator + "/oauth/rest/"
        )
        assert reply.status_code == 403, reply.text
        assert "member_id" in reply.text


def test_a_manager_sees_only_their_own_rows(tmp_path):
    with app_rigs(tmp_path, portals=1) as (rig,):
        installed(rig)
        admin = _report(rig.open_as(1))
        manager = _report(rig.open_as(3))
        admin_rows = {r.get("user_id") for r in admin["report"]["rows"]}
        manager_rows = {r.get("user_id") for r in manager["report"]["rows"]}
        assert {1, 2, 3, 4, 5} <= admin_rows, admin_rows
        assert manager_rows == {3}, manager_rows
        # The rows come from what Bitrix24 let the manager's own token read.
        store = rig.app.state.store.cursor()
        try:
            grants = store.query(
                "SELECT entity, whole FROM viewer_grants WHERE viewer_id = 3 ORDER BY entity"
            )
        finally:
            store.close()
        assert grants and not dict(grants)["deal"], grants


def test_nothing_outside_a_managers_rights_leaks_through_any_route(tmp_path):
    """The manager (3) reads only their own records: no other user's name, no
    other department's, no whole-portal count on any page, JSON twin, export,
    drill-down or the sync status."""
    import io
    import zipfile

    with app_rigs(tmp_path, portals=1) as (rig,):
        installed(rig)
        report = rig.open_as(3) + "&period=this_year"
        token = report.split("vt=")[1].split("&")[0]
        base = rig.rop
        drill = base + "/drill.json?figure=deals_new&period=this_year&vt=" + token
        texts = {
            "page": httpx.get(report, timeout=60).text,
            "json": httpx.get(report.replace("/report?", "/report.json?"), timeout=60).text,
            "csv": httpx.get(report.replace("/report?", "/report.csv?"), timeout=60).text,
            "drill": httpx.get(drill, timeout=60).text,
            "drill csv": httpx.get(drill.replace("/drill.json?", "/drill.csv?"), timeout=60).text,
            "sync": httpx.get(base + "/api/sync?vt=" + token, timeout=60).text,
        }
        xlsx = httpx.get(report.replace("/report?", "/report.xlsx?"), timeout=60)
        assert xlsx.status_code == 200
        with zipfile.ZipFile(io.BytesIO(xlsx.content)) as book:
            texts["xlsx"] = " ".join(
                book.read(n).decode("utf-8") for n in book.namelist() if n.endswith(".xml")
            )
        assert "Last3" in texts["json"] and "Last3" in texts["xlsx"]  # the manager's own row
        for where, text in texts.items():
            for hidden in ("Last1", "Last2", "Last4", "Last5", "Support"):
                assert hidden not in text, (where, hidden)
        sync = httpx.get(base + "/api/sync?vt=" + token, timeout=60).json()
        assert sync["progress"] is None and not sync["message"]
        # The manager's own deals only: every drill-down row is theirs.
        rows = httpx.get(drill, timeout=60).json()["records"]
        assert rows and {r["manager_id"] for r in rows} == {3}
