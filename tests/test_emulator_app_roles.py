"""CRM roles from crm.permissions.json: every list and get obeys the caller's level.

The portal (tests/emulator_portal.py): department 1 (head 1, admin) > 2 "Sales"
(head 2) > 3 "Team A" (users 3, 4, 6); department 4 "Support" (head 5). Deal i
belongs to user [1, 2, 3, 4, 5][i % 5]; here every third deal is OPENED.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rop.emulator import EmulatorConfig, PortalError, create_app, load_portal, serve_in_thread
from rop.emulator.config import AppSettings
from tests.emulator_portal import OWNERS, TOKEN, write_portal

DEALS = 60
ROLES = {
    "default": {"lead": "own"},
    "users": {
        "3": {"deal": "department"},
        "4": {"deal": "open", "call": "none"},
        "2": {"deal": "subdepartments"},
        "5": {"deal": "none", "call": "all"},
    },
}


def owner(i: int) -> int:
    return OWNERS[i % len(OWNERS)]


def opened(i: int) -> bool:
    return i % 3 == 0


# What each user may read, worked out from the portal's structure by hand.
EXPECTED_DEALS = {
    3: {i for i in range(1, DEALS + 1) if owner(i) in {3, 4, 6}},  # department (Team A)
    4: {i for i in range(1, DEALS + 1) if owner(i) in {3, 4, 6} or opened(i)},  # open
    2: {i for i in range(1, DEALS + 1) if owner(i) in {2, 3, 4, 6}},  # Sales + Team A
    5: set(),  # none
    1: set(range(1, DEALS + 1)),  # admin
}


@pytest.fixture(scope="module")
def portal(tmp_path_factory) -> Iterator[tuple[str, Any]]:
    folder = write_portal(tmp_path_factory.mktemp("roles") / "portal", deals=DEALS)
    deals = json.loads((folder / "crm.deal.list.json").read_text())
    for deal in deals:
        deal["OPENED"] = "Y" if opened(int(deal["ID"])) else "N"
    (folder / "crm.deal.list.json").write_text(json.dumps(deals))
    (folder / "crm.permissions.json").write_text(json.dumps(ROLES))
    app = create_app(
        folder,
        EmulatorConfig(rate_limit=False, simulate_processing=False, app=AppSettings()),
    )
    with serve_in_thread(app) as base:
        yield base, app


def token(app: Any, user_id: int) -> str:
    return str(app.state.engine.host.issue(user_id)["access_token"])


def keyset_ids(base: str, auth: str, method: str = "crm.deal.list") -> set[int]:
    """Every ID through `start=-1` keyset pages, as a big-portal sync reads."""
    found: set[int] = set()
    last = 0
    while True:
        reply = httpx.post(
            f"{base}/rest/{method}",
            json={
                "auth": auth,
                "order": {"ID": "ASC"},
                "filter": {">ID": last},
                "select": ["ID"],
                "start": -1,
            },
        ).json()
        rows = reply["result"]
        if not rows:
            return found
        found |= {int(r["ID"]) for r in rows}
        last = int(rows[-1]["ID"])


@pytest.mark.parametrize("user_id", sorted(EXPECTED_DEALS))
def test_deal_lists_and_gets_follow_the_role(portal, user_id: int) -> None:
    base, app = portal
    auth = token(app, user_id)
    expected = EXPECTED_DEALS[user_id]
    assert keyset_ids(base, auth) == expected
    paged = httpx.post(f"{base}/rest/crm.deal.list", json={"auth": auth, "select": ["ID"]}).json()
    assert paged["total"] == len(expected)
    items = httpx.post(
        f"{base}/rest/crm.item.list",
        json={"auth": auth, "entityTypeId": 2, "select": ["id"], "start": 0},
    ).json()
    assert items["total"] == len(expected)
    history = httpx.post(
        f"{base}/rest/crm.stagehistory.list",
        json={"auth": auth, "entityTypeId": 2, "select": ["OWNER_ID"]},
    ).json()
    assert history["total"] == len(expected)
    batch = httpx.post(
        f"{base}/rest/batch",
        json={
            "auth": auth,
            "cmd": {str(i): f"crm.deal.get?id={i}" for i in range(1, 21)},
        },
    ).json()["result"]
    readable = {int(k) for k in batch["result"]}
    denied = {
        int(k)
        for k, v in (batch["result_error"] or {}).items()
        if v["error_description"] == "Access denied."
    }
    assert readable == expected & set(range(1, 21))
    assert denied == set(range(1, 21)) - expected


def test_a_webhook_acts_as_its_user_with_the_same_role(portal) -> None:
    base, _ = portal
    hook = f"{base}/rest/3/{TOKEN}/crm.deal.list"
    total = httpx.post(hook, json={"select": ["ID"]}).json()["total"]
    assert total == len(EXPECTED_DEALS[3])


def test_calls_and_leads_use_their_own_levels(portal) -> None:
    base, app = portal
    calls = {
        uid: httpx.post(
            f"{base}/rest/voximplant.statistic.get", json={"auth": token(app, uid)}
        ).json()["total"]
        for uid in (3, 4, 5)
    }
    # 20 calls by PORTAL_USER_ID = OWNERS[i % 5]: user 3 (own) has 4, user 4 none, user 5 all.
    assert calls == {3: 4, 4: 0, 5: 20}
    app.state.portal.add("lead", {"TITLE": "mine", "ASSIGNED_BY_ID": "2", "OPENED": "Y"})
    app.state.portal.add("lead", {"TITLE": "theirs", "ASSIGNED_BY_ID": "3", "OPENED": "Y"})
    # default {"lead": "own"} applies to a head too (user 2)
    leads = httpx.post(f"{base}/rest/crm.lead.list", json={"auth": token(app, 2)}).json()
    assert [r["TITLE"] for r in leads["result"]] == ["mine"]


def test_a_bad_permissions_file_names_the_problem(tmp_path: Path) -> None:
    folder = write_portal(tmp_path / "portal", deals=3)
    (folder / "crm.permissions.json").write_text(json.dumps({"users": {"3": {"deal": "most"}}}))
    with pytest.raises(PortalError, match=r"crm.permissions.json: user 3: unknown level 'most'"):
        load_portal(folder)
    (folder / "crm.permissions.json").write_text(json.dumps({"default": {"invoice": "all"}}))
    with pytest.raises(PortalError, match="unknown entity 'invoice'"):
        load_portal(folder)


def test_activities_follow_their_owner_record(portal) -> None:
    """CRM roles have no entry for activities: one is readable when its owner record
    is, whoever is responsible for it; an owner of another type (7, a quote) only
    for a user who sees everything."""
    base, app = portal
    added = {
        app.state.portal.add("activity", {
            "TYPE_ID": "2", "OWNER_TYPE_ID": "2", "OWNER_ID": str(i), "RESPONSIBLE_ID": "3",
            "SUBJECT": f"on deal {i}",
        }): i
        for i in range(1, DEALS + 1)
    }  # fmt: skip
    quote = app.state.portal.add(
        "activity", {"TYPE_ID": "2", "OWNER_TYPE_ID": "7", "OWNER_ID": "1", "RESPONSIBLE_ID": "3"}
    )
    for user_id in (1, 2, 3, 5):
        auth = token(app, user_id)
        listed = keyset_ids(base, auth, "crm.activity.list")
        want = {a for a, deal in added.items() if deal in EXPECTED_DEALS[user_id]}
        assert listed == want | ({quote} if user_id == 1 else set()), user_id
        got = httpx.post(f"{base}/rest/crm.activity.get", json={"auth": auth, "id": quote})
        assert got.status_code == (200 if user_id == 1 else 400), user_id  # "Access denied."
