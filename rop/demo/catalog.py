"""The demo portal's directories: pipelines and their stages, lead statuses, sources, currencies.

Shaped like crm.category.list / crm.status.list / crm.currency.list replies.
Traps on purpose: pipeline IDs 0, 1, 3 (2 was deleted); the default pipeline
has the largest ``sort``; bare stage IDs in pipeline 0 and ``C<n>:`` prefixes
elsewhere; custom stage IDs (``UC_…``); two failure stages per pipeline, one
of them with EXTRA.SEMANTICS "apology"; a custom lead status with a numeric ID;
KZT quoted per 100 units (AMOUNT_CNT 100).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Pipeline:
    id: int
    name: str
    sort: int
    process: tuple[tuple[str, str], ...]  # (bare stage code, name) in order
    success: tuple[str, str]
    failures: tuple[tuple[str, str, str], ...]  # (code, name, EXTRA.SEMANTICS)
    share: float  # share of new deals
    group: str  # staff group that works it (staff.Person.groups)

    def stage(self, code: str) -> str:
        """The full STAGE_ID: bare in the default pipeline, ``C<id>:`` prefixed elsewhere."""
        return code if self.id == 0 else f"C{self.id}:{code}"

    @property
    def entity_id(self) -> str:
        return "DEAL_STAGE" if self.id == 0 else f"DEAL_STAGE_{self.id}"


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        0,
        "Продажи",
        300,
        (
            ("NEW", "Новая"),
            ("PREPARATION", "Подготовка документов"),
            ("UC_7X2KQD", "Переговоры"),
            ("PREPAYMENT_INVOICE", "Счёт на предоплату"),
            ("EXECUTING", "В работе"),
            ("FINAL_INVOICE", "Финальный счёт"),
        ),
        ("WON", "Сделка успешна"),
        (("LOSE", "Сделка провалена", "failure"), ("APOLOGY", "Анализ причины провала", "apology")),
        0.6,
        "0",
    ),
    Pipeline(
        1,
        "Тендеры & госзакупки",
        200,
        (
            ("NEW", "Новый тендер"),
            ("PREPARATION", "Анализ документации"),
            ("UC_BID", "Заявка подана"),
            ("EXECUTING", "Торги"),
            ("FINAL_INVOICE", "Подписание контракта"),
        ),
        ("WON", "Контракт заключён"),
        (("LOSE", "Тендер проигран", "failure"), ("UC_CANCEL", "Закупка отменена", "failure")),
        0.15,
        "1",
    ),
    Pipeline(
        3,
        "Повторные продажи",
        100,
        (
            ("NEW", "Новая"),
            ("PREPARATION", "Выявление потребности"),
            ("PREPAYMENT_INVOICE", "Счёт выставлен"),
        ),
        ("WON", "Оплачено"),
        (("LOSE", "Отказ", "failure"), ("APOLOGY", "Анализ причины отказа", "apology")),
        0.25,
        "3",
    ),
)
BY_ID = {p.id: p for p in PIPELINES}

# Lead statuses: (STATUS_ID, NAME, EXTRA.SEMANTICS). "1" is what Bitrix24 names
# a custom status: a number, not a code.
LEAD_PROCESS = (("NEW", "Не обработан"), ("IN_PROCESS", "В работе"), ("PROCESSED", "Обработан"))
LEAD_SUCCESS = ("CONVERTED", "Качественный лид")
LEAD_FAILURES = (("JUNK", "Некачественный лид"), ("1", "Дубль «повторная заявка»"))

SOURCES = (
    ("CALL", "Звонок"),
    ("EMAIL", "Электронная почта"),
    ("WEB", "Веб-сайт"),
    ("ADVERTISING", "Реклама"),
    ("PARTNER", "Существующий клиент"),
    ("RECOMMENDATION", "По рекомендации"),
    ("TRADE_SHOW", "Выставка"),
    ("WEBFORM", "CRM-форма"),
    ("CALLBACK", "Обратный звонок"),
    ("OTHER", "Другое"),
)
SOURCE_WEIGHTS = (20, 10, 18, 8, 12, 8, 4, 10, 6, 4)
DEAL_TYPES = (("SALE", "Продажа"), ("COMPLEX", "Комплексная продажа"), ("GOODS", "Продажа товара"), ("SERVICES", "Продажа услуги"), ("SERVICE", "Сервисное обслуживание"))  # fmt: skip

# (CURRENCY, AMOUNT_CNT, AMOUNT, share of deals, FULL_NAME); RUB is the base.
CURRENCIES = (
    ("RUB", 1, 1.0, 0.87, "Российский рубль"),
    ("USD", 1, 81.45, 0.06, "Доллар США"),
    ("EUR", 1, 94.2, 0.05, "Евро"),
    ("KZT", 100, 16.1, 0.02, "Казахстанский тенге"),
)

_COLORS = {"process": "#39A8EF", "success": "#7BD500", "failure": "#FF5752", "apology": "#FF5752"}


def semantic_letter(extra: str) -> str:
    return {"success": "S", "failure": "F", "apology": "F"}.get(extra, "P")


def category_records() -> list[dict[str, Any]]:
    """crm.category.list ``result.categories`` for deals."""
    return [
        {
            "id": p.id,
            "name": p.name,
            "sort": p.sort,
            "entityTypeId": 2,
            "isDefault": "Y" if p.id == 0 else "N",
        }
        for p in PIPELINES
    ]


def _status(
    row_id: int,
    entity: str,
    status_id: str,
    name: str,
    sort: int,
    category: int | None,
    extra: str | None,
    system: bool,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ID": str(row_id),
        "ENTITY_ID": entity,
        "STATUS_ID": status_id,
        "NAME": name,
        "NAME_INIT": name if system else "",
        "SORT": str(sort),
        "SYSTEM": "Y" if system else "N",
        "CATEGORY_ID": None if category is None else str(category),
        "COLOR": _COLORS.get(extra or "", "#ACE9FB"),
        "SEMANTICS": {"success": "S", "failure": "F", "apology": "F"}.get(extra or ""),
    }
    if extra is not None:
        record["EXTRA"] = {"SEMANTICS": extra, "COLOR": record["COLOR"]}
    return record


def status_records() -> list[dict[str, Any]]:
    """crm.status.list: lead statuses, sources, deal types and every pipeline's stages.

    CATEGORY_ID is null for the default pipeline's DEAL_STAGE, as Bitrix24 sends it.
    """
    rows: list[dict[str, Any]] = []

    def add(*args: Any) -> None:
        rows.append(_status(len(rows) * 2 + 1, *args))

    for i, (code, name) in enumerate(LEAD_PROCESS):
        add("STATUS", code, name, (i + 1) * 10, None, "process", code == "NEW")
    add("STATUS", LEAD_SUCCESS[0], LEAD_SUCCESS[1], 50, None, "success", True)
    for i, (code, name) in enumerate(LEAD_FAILURES):
        add("STATUS", code, name, 60 + i * 10, None, "failure", i == 0)
    for i, (code, name) in enumerate(SOURCES):
        add("SOURCE", code, name, (i + 1) * 10, None, None, True)
    for i, (code, name) in enumerate(DEAL_TYPES):
        add("DEAL_TYPE", code, name, (i + 1) * 10, None, None, True)
    for p in PIPELINES:
        category = None if p.id == 0 else p.id
        sort = 0
        for code, name in p.process:
            sort += 10
            add(p.entity_id, p.stage(code), name, sort, category, "process", code == "NEW")
        add(p.entity_id, p.stage(p.success[0]), p.success[1], sort + 10, category, "success", True)
        for i, (code, name, extra) in enumerate(p.failures):
            add(p.entity_id, p.stage(code), name, sort + 20 + i * 10, category, extra, i == 0)
    return rows


def currency_records() -> list[dict[str, Any]]:
    """crm.currency.list."""
    return [
        {
            "CURRENCY": code,
            "AMOUNT_CNT": str(count),
            "AMOUNT": f"{amount:.4f}",
            "SORT": str((i + 1) * 100),
            "BASE": "Y" if i == 0 else "N",
            "FULL_NAME": full_name,
            "LID": "ru",
            "FORMAT_STRING": "# ₽" if code == "RUB" else f"# {code}",
            "DEC_POINT": ".",
            "THOUSANDS_SEP": " ",
            "DECIMALS": "2",
            "DATE_UPDATE": "2026-01-12T10:00:00+03:00",
        }
        for i, (code, count, amount, _, full_name) in enumerate(CURRENCIES)
    ]
