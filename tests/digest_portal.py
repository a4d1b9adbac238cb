"""The digest tests' portal: tests/emulator_portal.py plus a week of fresh deals.

Users (emulator_portal): 1 portal admin (department 1, head), 2 head of
Sales (2) with Team A (3: users 3, 4, 6 fired) below, 5 in Support (4).
Added: e-mail addresses and time zones (user 2 in Yekaterinburg, UTC+5),
ten deals created 23-26 November 2026 (the week before Monday 30th), four
of them won that week, twelve calls that week, and two overdue open deals: one of user 3 titled
with markup, one of user 5 (outside the head's departments).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.emulator_portal import write_portal

SCRIPT_TITLE = "<script>alert('x')</script> & [url=https://evil.example]click[/url]"
SUPPORT_TITLE = "Support: renewal for Omega"
ZONES = {1: "Europe/Moscow", 2: "Asia/Yekaterinburg", 3: "Europe/Moscow", 4: "Europe/Moscow",
         5: "Europe/Moscow", 6: "Europe/Moscow"}  # fmt: skip


def _load(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def _save(folder: Path, name: str, data: Any) -> None:
    (folder / name).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def write_digest_portal(folder: Path) -> Path:
    write_portal(folder, deals=60, now="2026-11-27T12:00:00+03:00")
    users = _load(folder, "user.get.json")
    for u in users:
        uid = int(u["ID"])
        u["EMAIL"] = f"user{uid}@example.ru"
        u["TIME_ZONE"] = ZONES[uid]
    _save(folder, "user.get.json", users)
    deals = _load(folder, "crm.deal.list.json")
    history = _load(folder, "crm.stagehistory.list.2.json")
    for n in range(10):
        rid = 1001 + n
        won = n % 3 == 0
        created = f"2026-11-{23 + n % 4:02d}T10:00:00+03:00"
        deals.append(
            {
                "ID": str(rid),
                "TITLE": f"Fresh deal {rid}",
                "CATEGORY_ID": "0",
                "STAGE_ID": "WON" if won else "NEW",
                "STAGE_SEMANTIC_ID": "S" if won else "P",
                "OPPORTUNITY": f"{(n + 1) * 1000}.00",
                "CURRENCY_ID": "RUB",
                "ASSIGNED_BY_ID": str(1 + n % 5),
                "CLOSED": "Y" if won else "N",
                "OPENED": "Y",
                "DATE_CREATE": created,
                "DATE_MODIFY": created,
                "CLOSEDATE": "2026-12-20T00:00:00+03:00",
            }
        )
        history.append({"ID": len(history) + 1, "TYPE_ID": 1, "OWNER_ID": rid,
                        "CREATED_TIME": created, "CATEGORY_ID": 0,
                        "STAGE_SEMANTIC_ID": "P", "STAGE_ID": "NEW"})  # fmt: skip
        if won:
            history.append({"ID": len(history) + 1, "TYPE_ID": 3, "OWNER_ID": rid,
                            "CREATED_TIME": created.replace("T10", "T15"), "CATEGORY_ID": 0,
                            "STAGE_SEMANTIC_ID": "S", "STAGE_ID": "WON"})  # fmt: skip
    for rid, title, owner in ((2001, SCRIPT_TITLE, 3), (2002, SUPPORT_TITLE, 5)):
        deals.append(
            {
                "ID": str(rid),
                "TITLE": title,
                "CATEGORY_ID": "0",
                "STAGE_ID": "NEW",
                "STAGE_SEMANTIC_ID": "P",
                "OPPORTUNITY": "5000.00",
                "CURRENCY_ID": "RUB",
                "ASSIGNED_BY_ID": str(owner),
                "CLOSED": "N",
                "OPENED": "Y",
                "DATE_CREATE": "2026-10-01T10:00:00+03:00",
                "DATE_MODIFY": "2026-10-01T10:00:00+03:00",
                "CLOSEDATE": "2026-11-10T00:00:00+03:00",
            }
        )
    calls = _load(folder, "voximplant.statistic.get.json")
    for n in range(12):
        calls.append(
            {
                "ID": str(101 + n),
                "CALL_ID": f"week-{n}",
                "PORTAL_USER_ID": str(1 + n % 5),
                "PHONE_NUMBER": "79001234500",
                "CALL_TYPE": "1",
                "CALL_DURATION": str(60 + n * 30),
                "CALL_START_DATE": f"2026-11-{23 + n % 5:02d}T12:00:00+03:00",
                "CALL_FAILED_CODE": "200",
                "CRM_ENTITY_TYPE": "COMPANY",
                "CRM_ENTITY_ID": str(1 + n % 7),
                "COST": "0.0000",
            }
        )
    _save(folder, "voximplant.statistic.get.json", calls)
    _save(folder, "crm.deal.list.json", deals)
    _save(folder, "crm.stagehistory.list.2.json", history)
    return folder
