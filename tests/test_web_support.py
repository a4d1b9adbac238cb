"""A tiny hand-made portal snapshot for the web tests (CONTRACT.md §1).

Small enough to know every number by heart: the route tests assert exact
counts on it. The browser tests use the generated demo portal instead.
"""

from __future__ import annotations

import json
from pathlib import Path

XSS = "<script>alert(1)</script>"
PERIOD = {"period": "custom", "from": "2026-10-01", "to": "2026-10-31"}


def _t(day: str, hour: int = 10) -> str:
    return f"2026-{day}T{hour:02d}:00:00+03:00"


def write_portal(folder: Path, domain: str = "tiny.bitrix24.ru") -> Path:
    folder.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: object) -> None:
        (folder / name).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    put(
        "portal.json",
        {
            "domain": domain,
            "timezone": "Europe/Moscow",
            "base_currency": "RUB",
            "admins": [1],
            "webhook": {"user_id": 1, "token": "t"},
            "now": "2026-10-31T18:00:00+03:00",
        },
    )
    users = [
        (1, "Анна", "Админова", [10], True),
        (2, "Борис", "Начальников", [10], True),
        (3, "Вера", "Петрова", [10], True),
        (4, "Глеб", "Сидоров", [10], True),
        (5, "Дина", "Орлова", [20], True),
        (6, "Егор", "Главный", [20], True),
        (7, "Жанна", "Уволенная", [10], False),
    ]
    put(
        "user.get.json",
        [
            {"ID": str(i), "ACTIVE": a, "NAME": n, "LAST_NAME": ln, "UF_DEPARTMENT": d}
            for i, n, ln, d, a in users
        ],
    )
    put(
        "department.get.json",
        [
            {"ID": "10", "NAME": "Отдел продаж 1", "PARENT": None, "UF_HEAD": "2", "SORT": "100"},
            {"ID": "20", "NAME": "Отдел продаж 2", "PARENT": None, "UF_HEAD": "6", "SORT": "200"},
        ],
    )
    put(
        "crm.category.list.json",
        [
            {"id": 0, "name": "Общая", "sort": 100, "entityTypeId": 2, "isDefault": "Y"},
            {"id": 1, "name": "Опт", "sort": 200, "entityTypeId": 2, "isDefault": "N"},
        ],
    )

    def st(entity: str, sid: str, name: str, sort: int, cat: int | None, sem: str | None) -> dict:
        return {
            "ENTITY_ID": entity,
            "STATUS_ID": sid,
            "NAME": name,
            "SORT": str(sort),
            "CATEGORY_ID": None if cat is None else str(cat),
            "SEMANTICS": sem,
            "EXTRA": {"SEMANTICS": {"S": "success", "F": "failure"}.get(sem or "", "process")},
        }

    put(
        "crm.status.list.json",
        [
            st("DEAL_STAGE", "NEW", "Новая", 10, 0, None),
            st("DEAL_STAGE", "PREPARATION", "Подготовка", 20, 0, None),
            st("DEAL_STAGE", "WON", "Сделка успешна", 30, 0, "S"),
            st("DEAL_STAGE", "LOSE", "Провал", 40, 0, "F"),
            st("DEAL_STAGE_1", "C1:NEW", "Новая (опт)", 10, 1, None),
            st("DEAL_STAGE_1", "C1:WON", "Успех (опт)", 30, 1, "S"),
            st("DEAL_STAGE_1", "C1:LOSE", "Провал (опт)", 40, 1, "F"),
            st("STATUS", "NEW", "Новый лид", 10, None, None),
            st("STATUS", "IN_PROCESS", "В работе", 20, None, None),
            st("STATUS", "CONVERTED", "Сконвертирован", 30, None, "S"),
            st("STATUS", "JUNK", "Брак", 40, None, "F"),
            st("SOURCE", "CALL", "Звонок", 10, None, None),
            st("SOURCE", "WEB", "Сайт", 20, None, None),
        ],
    )
    put(
        "crm.currency.list.json",
        [{"CURRENCY": "RUB", "AMOUNT_CNT": "1", "AMOUNT": "1", "BASE": "Y"}],
    )
    # id, user, created, category, stage, semantic, amount, title, closed-at, source
    deals = [
        (1, 3, "10-05", 0, "WON", "S", 100000, "Поставка окон", "10-10", "CALL"),
        (2, 3, "10-06", 0, "LOSE", "F", 0, XSS, "10-12", "WEB"),
        (3, 4, "10-08", 0, "PREPARATION", "P", 50000, "Ремонт офиса", None, "CALL"),
        (4, 4, "10-09", 0, "WON", "S", 200000, "Оборудование", "10-20", "WEB"),
        (5, 5, "10-11", 1, "C1:NEW", "P", 15000, "Опт: бумага", None, "CALL"),
        (6, 5, "10-12", 1, "C1:WON", "S", 30000, "Опт: картриджи", "10-15", "CALL"),
        (7, 7, "10-02", 0, "WON", "S", 10000, "Старая сделка", "10-03", "WEB"),
        (8, 3, "09-10", 0, "WON", "S", 70000, "Сентябрьская", "09-20", "CALL"),
    ]
    put(
        "crm.deal.list.json",
        [
            {
                "ID": str(i),
                "TITLE": title,
                "CATEGORY_ID": str(cat),
                "STAGE_ID": stage,
                "STAGE_SEMANTIC_ID": sem,
                "OPPORTUNITY": f"{amount}.00",
                "CURRENCY_ID": "RUB",
                "ASSIGNED_BY_ID": str(user),
                "CREATED_BY_ID": str(user),
                "COMPANY_ID": "1" if i in (1, 4) else "0",
                "CONTACT_ID": "0",
                "SOURCE_ID": source,
                "CLOSED": "Y" if sem != "P" else "N",
                "DATE_CREATE": _t(created),
                "DATE_MODIFY": _t(closed or created, 12),
                "MOVED_TIME": _t(closed or created, 12),
                "CLOSEDATE": "2026-10-25T03:00:00+03:00",
                "BEGINDATE": _t(created, 3),
            }
            for i, user, created, cat, stage, sem, amount, title, closed, source in deals
        ],
    )
    history = []
    hid = 1
    for i, _user, created, cat, stage, sem, _amount, _title, closed, _source in deals:
        first = "NEW" if cat == 0 else "C1:NEW"
        history.append((hid, 1, i, created, cat, "P", first))
        hid += 1
        if i in (1, 2):
            history.append((hid, 2, i, "10-07", cat, "P", "PREPARATION"))
            hid += 1
        if i == 3:
            history.append((hid, 2, i, "10-09", cat, "P", "PREPARATION"))
            hid += 1
        if closed:
            history.append((hid, 3, i, closed, cat, sem, stage))
            hid += 1
    put(
        "crm.stagehistory.list.2.json",
        [
            {
                "ID": str(h),
                "TYPE_ID": str(ty),
                "OWNER_ID": str(owner),
                "CREATED_TIME": _t(day, 11),
                "CATEGORY_ID": str(cat),
                "STAGE_SEMANTIC_ID": sem,
                "STAGE_ID": stage,
            }
            for h, ty, owner, day, cat, sem, stage in history
        ],
    )
    put(
        "crm.lead.list.json",
        [
            {
                "ID": "1",
                "TITLE": "Лид с сайта",
                "STATUS_ID": "NEW",
                "STATUS_SEMANTIC_ID": "P",
                "ASSIGNED_BY_ID": "3",
                "SOURCE_ID": "WEB",
                "DATE_CREATE": _t("10-04"),
            },
            {
                "ID": "2",
                "TITLE": "Лид по звонку",
                "STATUS_ID": "CONVERTED",
                "STATUS_SEMANTIC_ID": "S",
                "ASSIGNED_BY_ID": "5",
                "SOURCE_ID": "CALL",
                "DATE_CREATE": _t("10-05"),
                "DATE_CLOSED": _t("10-06"),
                "MOVED_TIME": _t("10-06"),
            },
        ],
    )
    put(
        "crm.stagehistory.list.1.json",
        [
            {"ID": "1", "TYPE_ID": "1", "OWNER_ID": "1", "CREATED_TIME": _t("10-04"),
             "STATUS_SEMANTIC_ID": "P", "STATUS_ID": "NEW"},
            {"ID": "2", "TYPE_ID": "1", "OWNER_ID": "2", "CREATED_TIME": _t("10-05"),
             "STATUS_SEMANTIC_ID": "P", "STATUS_ID": "NEW"},
            {"ID": "3", "TYPE_ID": "3", "OWNER_ID": "2", "CREATED_TIME": _t("10-06"),
             "STATUS_SEMANTIC_ID": "S", "STATUS_ID": "CONVERTED"},
        ],
    )  # fmt: skip
    put(
        "crm.company.list.json",
        [
            {"ID": "1", "TITLE": "ООО «Окна»", "ASSIGNED_BY_ID": "3", "DATE_CREATE": _t("10-01")},
            {"ID": "2", "TITLE": "АО Бумага", "ASSIGNED_BY_ID": "5", "DATE_CREATE": _t("08-01")},
        ],
    )
    put(
        "crm.contact.list.json",
        [
            {"ID": "1", "NAME": "Иван", "LAST_NAME": "Клиентов", "COMPANY_ID": "1",
             "ASSIGNED_BY_ID": "3", "DATE_CREATE": _t("10-02")},
        ],
    )  # fmt: skip
    put(
        "voximplant.statistic.get.json",
        [
            {"ID": "1", "CALL_ID": "c1", "PORTAL_USER_ID": "3", "CALL_TYPE": "1",
             "CALL_DURATION": "125", "CALL_START_DATE": _t("10-05"), "CALL_FAILED_CODE": "200",
             "CRM_ENTITY_TYPE": "COMPANY", "CRM_ENTITY_ID": "1"},
            {"ID": "2", "CALL_ID": "c2", "PORTAL_USER_ID": "3", "CALL_TYPE": "2",
             "CALL_DURATION": "0", "CALL_START_DATE": _t("10-06"), "CALL_FAILED_CODE": "304"},
            {"ID": "3", "CALL_ID": "c3", "PORTAL_USER_ID": "5", "CALL_TYPE": "1",
             "CALL_DURATION": "3700", "CALL_START_DATE": _t("10-07"), "CALL_FAILED_CODE": "200"},
        ],
    )  # fmt: skip
    return folder


def tiny_store(tmp: Path, card_base: str | None = None):  # -> Store
    """A store file loaded from the tiny portal; ``card_base`` replaces the portal URL."""
    from rop.bitrix.snapshot import load_snapshot
    from rop.store import open_store

    store = open_store(tmp / "tiny.duckdb")
    portal = load_snapshot(store, write_portal(tmp / "portal"))
    if card_base is not None:
        store.execute("UPDATE portals SET url = ? WHERE portal = ?", [card_base, portal])
    return store
