"""A small hand-made portal snapshot for the sync tests.

Every entity the sync copies is present, with non-ASCII and quote characters
in names, two pipelines, activities of two types (calls and e-mails, TYPE_ID 4),
and more than 50 users so a directory needs a second page.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

TOKEN = "secret"
ZONE = timezone(timedelta(hours=3))
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=ZONE)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def deal(i: int, rnd: random.Random) -> dict[str, Any]:
    created = T0 + timedelta(minutes=i * 53)  # 6,000 deals still end before "now"
    category = i % 2
    stage = rnd.choice(["NEW", "PREPARATION", "WON", "LOSE"])
    day = created.replace(hour=0, minute=0)
    return {
        "ID": str(i),
        "TITLE": f"Сделка «{i}» & 'co'",
        "TYPE_ID": "SALE",
        "CATEGORY_ID": str(category),
        "STAGE_ID": ("C1:" if category else "") + stage,
        "STAGE_SEMANTIC_ID": {"WON": "S", "LOSE": "F"}.get(stage, "P"),
        "OPPORTUNITY": f"{rnd.randint(1, 999) * 100}.50",
        "CURRENCY_ID": "RUB" if i % 7 else "USD",
        "ASSIGNED_BY_ID": str(1 + i % 60),
        "CREATED_BY_ID": "1",
        "MOVED_BY_ID": "2",
        "COMPANY_ID": str(1 + i % 40),
        "CONTACT_ID": None,
        "LEAD_ID": str(i) if i % 3 == 0 else None,
        "SOURCE_ID": "WEB",
        "CLOSED": "Y" if stage in ("WON", "LOSE") else "N",
        "OPENED": "Y",
        "DATE_CREATE": iso(created),
        "DATE_MODIFY": iso(created + timedelta(hours=1)),
        "MOVED_TIME": iso(created + timedelta(hours=1)),
        "BEGINDATE": iso(day),
        "CLOSEDATE": iso(day + timedelta(days=10)),
    }


def make_portal(out: str | Path, deals: int = 300, seed: int = 0) -> Path:
    rnd = random.Random(seed)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: Any) -> None:
        (folder / name).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    write(
        "portal.json",
        {
            "domain": "demo.bitrix24.ru",
            "timezone": "Europe/Moscow",
            "base_currency": "RUB",
            "admins": [1],
            "webhook": {"user_id": 1, "token": TOKEN},
            "now": "2026-11-27T10:00:00+03:00",
        },
    )
    write(
        "user.get.json",
        [
            {
                "ID": str(i),
                "ACTIVE": i != 7,
                "NAME": f"Имя{i}",
                "LAST_NAME": f"Фам'<{i}>",
                "UF_DEPARTMENT": [1 + i % 2],
                "WORK_POSITION": "Sales",
                "USER_TYPE": "employee",
            }
            for i in range(1, 61)
        ],
    )
    write(
        "department.get.json",
        [
            {"ID": "1", "NAME": "HQ", "SORT": 100, "PARENT": None, "UF_HEAD": "1"},
            {"ID": "2", "NAME": "Отдел продаж", "SORT": 200, "PARENT": "1", "UF_HEAD": "2"},
        ],
    )
    write(
        "crm.category.list.json",
        [
            {"id": 0, "name": "General", "sort": 100, "entityTypeId": 2, "isDefault": "Y"},
            {"id": 1, "name": "B2B", "sort": 200, "entityTypeId": 2, "isDefault": "N"},
        ],
    )
    statuses = []
    n = 1
    for entity, prefix, category in (("DEAL_STAGE", "", None), ("DEAL_STAGE_1", "C1:", "1")):
        for sid, sem in (("NEW", None), ("PREPARATION", None), ("WON", "S"), ("LOSE", "F")):
            statuses.append(
                {
                    "ID": str(n),
                    "ENTITY_ID": entity,
                    "STATUS_ID": prefix + sid,
                    "NAME": sid,
                    "SORT": str(n * 10),
                    "CATEGORY_ID": category,
                    "SEMANTICS": sem,
                }
            )
            n += 1
    for sid in ("NEW", "IN_PROCESS", "CONVERTED", "JUNK"):
        statuses.append(
            {
                "ID": str(n),
                "ENTITY_ID": "STATUS",
                "STATUS_ID": sid,
                "NAME": sid,
                "SORT": str(n * 10),
            }
        )
        n += 1
    write("crm.status.list.json", statuses)
    write(
        "crm.currency.list.json",
        [
            {"CURRENCY": "RUB", "AMOUNT_CNT": 1, "AMOUNT": "1.0000", "BASE": "Y"},
            {"CURRENCY": "USD", "AMOUNT_CNT": 1, "AMOUNT": "90.0000", "BASE": "N"},
        ],
    )
    deal_rows = [deal(i, rnd) for i in range(1, deals + 1)]
    write("crm.deal.list.json", deal_rows)
    history = []
    for row in deal_rows:
        for k in range(2):
            history.append(
                {
                    "ID": len(history) + 1,
                    "TYPE_ID": 1 + k,
                    "OWNER_ID": int(row["ID"]),
                    "CREATED_TIME": iso(
                        datetime.fromisoformat(row["DATE_CREATE"]) + timedelta(minutes=k)
                    ),
                    "CATEGORY_ID": int(row["CATEGORY_ID"]),
                    "STAGE_SEMANTIC_ID": "P",
                    "STAGE_ID": ("C1:" if row["CATEGORY_ID"] == "1" else "") + "NEW",
                }
            )
    write("crm.stagehistory.list.2.json", history)
    leads = range(1, deals // 2)
    write(
        "crm.lead.list.json",
        [
            {
                "ID": str(i),
                "TITLE": f"Лид {i}",
                "STATUS_ID": "NEW",
                "STATUS_SEMANTIC_ID": "P",
                "ASSIGNED_BY_ID": str(1 + i % 60),
                "DATE_CREATE": iso(T0 + timedelta(hours=i)),
                "DATE_MODIFY": iso(T0 + timedelta(hours=i)),
                "OPENED": "Y",
            }
            for i in leads
        ],
    )
    write(
        "crm.stagehistory.list.1.json",
        [
            {
                "ID": i,
                "TYPE_ID": 1,
                "OWNER_ID": i,
                "CREATED_TIME": iso(T0 + timedelta(hours=i)),
                "STATUS_SEMANTIC_ID": "P",
                "STATUS_ID": "NEW",
            }
            for i in leads
        ],
    )
    write(
        "crm.company.list.json",
        [
            {
                "ID": str(i),
                "TITLE": f"ООО «{i}»",
                "ASSIGNED_BY_ID": "1",
                "DATE_CREATE": iso(T0),
                "DATE_MODIFY": iso(T0),
                "IS_MY_COMPANY": "N",
            }
            for i in range(1, 41)
        ],
    )
    write(
        "crm.contact.list.json",
        [
            {
                "ID": str(i),
                "NAME": f"К{i}",
                "ASSIGNED_BY_ID": "1",
                "DATE_CREATE": iso(T0),
                "DATE_MODIFY": iso(T0),
            }
            for i in range(1, 81)
        ],
    )
    calls = range(1, deals * 2)
    write(
        "voximplant.statistic.get.json",
        [
            {
                "ID": str(i),
                "CALL_ID": f"c{i}",
                "PORTAL_USER_ID": str(1 + i % 60),
                "CALL_TYPE": "1",
                "CALL_DURATION": str(i % 300),
                "CALL_START_DATE": iso(T0 + timedelta(minutes=i * 37)),
                "CALL_FAILED_CODE": "200",
                "CRM_ENTITY_TYPE": "CONTACT",
                "CRM_ENTITY_ID": str(1 + i % 80),
                "CRM_ACTIVITY_ID": str(i),
            }
            for i in calls
        ],
    )
    write(
        "crm.activity.list.json",
        [
            {
                "ID": str(i),
                "TYPE_ID": "2" if i % 5 else "4",
                "PROVIDER_ID": "VOXIMPLANT_CALL",
                "OWNER_TYPE_ID": "3",
                "OWNER_ID": str(1 + i % 80),
                "RESPONSIBLE_ID": str(1 + i % 60),
                "DIRECTION": "2",
                "COMPLETED": "Y",
                "SUBJECT": "call",
                "CREATED": iso(T0 + timedelta(minutes=i * 37)),
                "LAST_UPDATED": iso(T0 + timedelta(minutes=i * 37)),
                "START_TIME": iso(T0 + timedelta(minutes=i * 37)),
                "END_TIME": iso(T0 + timedelta(minutes=i * 37 + 3)),
            }
            for i in calls
        ],
    )
    return folder
