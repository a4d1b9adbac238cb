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


def test_a_manager_sees_no_activity_outside_their_rights(tmp_path):
    """An activity follows its owner record's grant (docs/METRICS_DECISIONS.md
    "Activities and rights"): the manager (3, own records only) is responsible
    for four activities, two of them on a deal of user 4's they may not read.
    Those two appear in no figure, drill-down, page or export of theirs."""
    with app_rigs(tmp_path, portals=1) as (rig,):
        # Deal 2 is the manager's own, deal 3 user 4's (tests/emulator_portal.py).
        for deal, done, subject in (
            (2, "N", "Own overdue call"),
            (2, "Y", "Own done meeting"),
            (3, "N", "Hidden overdue call"),
            (3, "Y", "Hidden done meeting"),
        ):
            rig.emu("POST", "/_emulator/activity/add", {
                "TYPE_ID": "2", "OWNER_TYPE_ID": "2", "OWNER_ID": str(deal),
                "RESPONSIBLE_ID": "3", "COMPLETED": done, "SUBJECT": subject,
                "DEADLINE": "2026-11-20T10:00:00+03:00",
            })  # fmt: skip
        installed(rig)
        query = "period=this_year&vt="
        admin = rig.open_as(1).split("vt=")[1].split("&")[0]
        token = rig.open_as(3).split("vt=")[1].split("&")[0]
        base = rig.rop

        def get(path: str, vt: str) -> httpx.Response:
            reply = httpx.get(f"{base}{path}{'&' if '?' in path else '?'}{query}{vt}", timeout=60)
            assert reply.status_code == 200, (path, reply.text[:300])
            return reply

        def mine(vt: str) -> dict:
            rows = get("/quality.json", vt).json()["quality"]["rows"]
            return next(r["figures"] for r in rows if r["user_id"] == 3)

        # The administrator sees all four; the manager only the two on their deal.
        everything = mine(admin)
        assert (everything["activities_overdue"], everything["activities_done"]) == (2, 2)
        figures = mine(token)
        assert (figures["activities_overdue"], figures["activities_done"]) == (1, 1)
        texts = {
            "page": get("/quality", token).text,
            "json": get("/quality.json", token).text,
            "manager": get("/manager/3", token).text,
            "manager json": get("/manager/3.json", token).text,
        }
        for key in ("activities_overdue", "activities_done"):
            listed = get(f"/drill.json?figure={key}", token)
            assert [r["subject"] for r in listed.json()["records"]] == [
                "Own overdue call" if key == "activities_overdue" else "Own done meeting"
            ]
            texts[key] = listed.text
            texts[key + " page"] = get(f"/drill?figure={key}", token).text
            texts[key + " csv"] = get(f"/drill.csv?figure={key}", token).text
            texts[key + " xlsx"] = _xlsx_text(get(f"/drill.xlsx?figure={key}", token).content)
        texts["xlsx"] = _xlsx_text(get("/quality.xlsx", token).content)
        assert "Own overdue call" in texts["activities_overdue page"]
        for where, text in texts.items():
            assert "Hidden" not in text, where
        # What the administrator's drill-down lists, for contrast.
        listed = get("/drill.json?figure=activities_overdue", admin).json()["records"]
        assert sorted(r["subject"] for r in listed) == ["Hidden overdue call", "Own overdue call"]


def _xlsx_text(content: bytes) -> str:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as book:
        return " ".join(book.read(n).decode("utf-8") for n in book.namelist() if n.endswith(".xml"))
