"""A small generated portal for the emulator tests (written into tmp_path).

Structure: department 1 (root, head user 1 = admin) > 2 "Sales" (head 2) >
3 "Team A" (users 3, 4); department 4 "Support" (user 5). User 6 is fired.
Deals are spread round-robin over users 1..5, so each user's share is known.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOKEN = "testtoken123"
USERS = [1, 2, 3, 4, 5, 6]
OWNERS = [1, 2, 3, 4, 5]


def deal(i: int) -> dict[str, Any]:
    stage = ["NEW", "PREPARATION", "WON", "LOSE", "C1:NEW"][i % 5]
    return {
        "ID": str(i),
        "TITLE": f"Deal #{i}",
        "CATEGORY_ID": "1" if stage.startswith("C1:") else "0",
        "STAGE_ID": stage,
        "STAGE_SEMANTIC_ID": {"WON": "S", "LOSE": "F"}.get(stage, "P"),
        "OPPORTUNITY": f"{i * 100}.00",
        "CURRENCY_ID": "RUB",
        "ASSIGNED_BY_ID": str(OWNERS[i % len(OWNERS)]),
        "COMPANY_ID": str(i % 7 + 1),
        "CONTACT_ID": None,
        "LEAD_ID": None,
        "CLOSED": "Y" if stage in ("WON", "LOSE") else "N",
        "OPENED": "Y",
        "DATE_CREATE": f"2026-{(i % 9) + 1:02d}-{(i % 27) + 1:02d}T10:00:00+03:00",
        "DATE_MODIFY": f"2026-10-{(i % 27) + 1:02d}T12:00:00+03:00",
        "CLOSEDATE": "2026-12-01T00:00:00+03:00",
        "UF_CRM_SOURCE_NOTE": f"note {i}",
        "PHONE": [{"ID": "1", "VALUE": "+7000", "VALUE_TYPE": "WORK", "TYPE_ID": "PHONE"}],
    }


def write_portal(folder: Path, deals: int = 120, **info: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    portal = {
        "domain": "test.bitrix24.ru",
        "timezone": "Europe/Moscow",
        "base_currency": "RUB",
        "admins": [1],
        "webhook": {"user_id": 1, "token": TOKEN},
        "now": "2026-11-27T12:00:00+03:00",
        **info,
    }
    users = [
        {
            "ID": str(u),
            "ACTIVE": u != 6,
            "NAME": f"User{u}",
            "LAST_NAME": f"Last{u}",
            "UF_DEPARTMENT": {1: [1], 2: [2], 3: [3], 4: [3], 5: [4], 6: [3]}[u],
            "WORK_POSITION": "Manager",
        }
        for u in USERS
    ]
    departments = [
        {"ID": "1", "NAME": "Company", "SORT": 500, "UF_HEAD": "1"},
        {"ID": "2", "NAME": "Sales", "SORT": 500, "PARENT": "1", "UF_HEAD": "2"},
        {"ID": "3", "NAME": "Team A", "SORT": 500, "PARENT": "2"},
        {"ID": "4", "NAME": "Support", "SORT": 500, "PARENT": "1", "UF_HEAD": "5"},
    ]
    history = []
    for i in range(1, deals + 1):
        history.append(
            {
                "ID": len(history) + 1,
                "TYPE_ID": 1,
                "OWNER_ID": i,
                "CREATED_TIME": "2026-01-01T10:00:00+03:00",
                "CATEGORY_ID": 0,
                "STAGE_SEMANTIC_ID": "P",
                "STAGE_ID": "NEW",
            }
        )
    calls = [
        {
            "ID": str(i),
            "CALL_ID": f"call-{i}",
            "PORTAL_USER_ID": str(OWNERS[i % len(OWNERS)]),
            "PHONE_NUMBER": "79001234567",
            "CALL_TYPE": str(1 + i % 2),
            "CALL_DURATION": str(i * 10),
            "CALL_START_DATE": f"2026-11-{i:02d}T11:00:00+03:00",
            "CALL_FAILED_CODE": "200" if i % 3 else "304",
            "CRM_ENTITY_TYPE": "CONTACT",
            "CRM_ENTITY_ID": str(i),
            "CRM_ACTIVITY_ID": str(1000 + i),
            "COST": "0.0000",
        }
        for i in range(1, 21)
    ]
    files: dict[str, Any] = {
        "portal.json": portal,
        "user.get.json": users,
        "department.get.json": departments,
        "crm.deal.list.json": [deal(i) for i in range(1, deals + 1)],
        "crm.stagehistory.list.2.json": history,
        "voximplant.statistic.get.json": calls,
        "crm.company.list.json": [
            {"ID": str(i), "TITLE": f"<b>Company</b> {i} & Co", "ASSIGNED_BY_ID": "3"}
            for i in range(1, 8)
        ],
        "crm.category.list.json": [
            {"id": 0, "name": "General", "sort": 100, "entityTypeId": 2, "isDefault": "Y"},
            {"id": 1, "name": "B2B", "sort": 200, "entityTypeId": 2, "isDefault": "N"},
        ],
        "crm.status.list.json": [
            {"ID": "1", "ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "NEW", "NAME": "New", "SORT": "10"},
            {
                "ID": "2",
                "ENTITY_ID": "DEAL_STAGE",
                "STATUS_ID": "WON",
                "NAME": "Won",
                "SORT": "60",
                "SEMANTICS": "S",
            },
            {
                "ID": "3",
                "ENTITY_ID": "STATUS",
                "STATUS_ID": "NEW",
                "NAME": "Lead new",
                "SORT": "10",
            },
        ],
        "crm.currency.list.json": [
            {"CURRENCY": "RUB", "AMOUNT_CNT": 1, "AMOUNT": "1.0000", "BASE": "Y", "SORT": "100"},
            {"CURRENCY": "USD", "AMOUNT_CNT": 1, "AMOUNT": "90.0000", "BASE": "N", "SORT": "200"},
        ],
    }
    for name, data in files.items():
        (folder / name).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


def owned_by(user_ids: set[int], deals: int = 120) -> set[int]:
    """Deal IDs whose responsible is one of user_ids."""
    return {i for i in range(1, deals + 1) if OWNERS[i % len(OWNERS)] in user_ids}
