"""What we copy from Bitrix24, and how one REST record becomes one store row.

This is the single place that names, per entity, the REST method, the fields
we ``select`` (only what the report needs) and the mapping to store columns.
The sync, the snapshot loader and the tests all go through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rop.bitrix.contact_keys import email_key, first_value, inn_key, phone_key
from rop.bitrix.values import (
    to_bool,
    to_code,
    to_float,
    to_int,
    to_local_date,
    to_ref,
    to_text,
    to_utc,
)

Record = dict[str, Any]
Row = dict[str, Any]


@dataclass(frozen=True)
class Entity:
    """One kind of record copied from the portal."""

    name: str  # our name, also the sync_state key
    table: str  # store table
    method: str  # REST list method
    snapshot: str  # snapshot file name (CONTRACT.md §1)
    select: tuple[str, ...]  # REST fields to ask for
    to_row: Callable[[Record], Row]
    params: dict[str, Any] = field(default_factory=dict)  # fixed extra params
    id_field: str = "ID"
    modified_field: str | None = None  # incremental sync watermark field
    # Records created since the last run carry no modification time
    # (requisites: DATE_MODIFY is "" until the first change), so an
    # incremental run also reads every ID after the last one copied.
    new_by_id: bool = False
    time_field: str | None = None  # append-only entities: new rows by time
    big: bool = False  # keyset-paged with batch chains


def _deal(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        "title": to_text(r.get("TITLE")),
        "type_id": to_code(r.get("TYPE_ID")),
        "category_id": to_int(r.get("CATEGORY_ID")) or 0,
        "stage_id": to_code(r.get("STAGE_ID")),
        "stage_semantic": to_code(r.get("STAGE_SEMANTIC_ID")),
        "opportunity": to_float(r.get("OPPORTUNITY")),
        "currency_id": to_code(r.get("CURRENCY_ID")),
        "assigned_by_id": to_ref(r.get("ASSIGNED_BY_ID")),
        "created_by_id": to_ref(r.get("CREATED_BY_ID")),
        "moved_by_id": to_ref(r.get("MOVED_BY_ID")),
        "company_id": to_ref(r.get("COMPANY_ID")),
        "contact_id": to_ref(r.get("CONTACT_ID")),
        "lead_id": to_ref(r.get("LEAD_ID")),
        "source_id": to_code(r.get("SOURCE_ID")),
        "closed": to_bool(r.get("CLOSED")),
        "opened": to_bool(r.get("OPENED")),
        "date_create": to_utc(r.get("DATE_CREATE")),
        "date_modify": to_utc(r.get("DATE_MODIFY")),
        "moved_time": to_utc(r.get("MOVED_TIME")),
        "begindate": to_local_date(r.get("BEGINDATE")),
        "closedate": to_local_date(r.get("CLOSEDATE")),
    }


def _lead(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        # Blank is nothing: a lead's list shows its person's name instead.
        "title": to_code(r.get("TITLE")),
        "name": to_text(r.get("NAME")),
        "last_name": to_text(r.get("LAST_NAME")),
        "status_id": to_code(r.get("STATUS_ID")),
        "status_semantic": to_code(r.get("STATUS_SEMANTIC_ID")),
        "opportunity": to_float(r.get("OPPORTUNITY")),
        "currency_id": to_code(r.get("CURRENCY_ID")),
        "assigned_by_id": to_ref(r.get("ASSIGNED_BY_ID")),
        "created_by_id": to_ref(r.get("CREATED_BY_ID")),
        "moved_by_id": to_ref(r.get("MOVED_BY_ID")),
        "company_id": to_ref(r.get("COMPANY_ID")),
        "contact_id": to_ref(r.get("CONTACT_ID")),
        "source_id": to_code(r.get("SOURCE_ID")),
        "opened": to_bool(r.get("OPENED")),
        "date_create": to_utc(r.get("DATE_CREATE")),
        "date_modify": to_utc(r.get("DATE_MODIFY")),
        "moved_time": to_utc(r.get("MOVED_TIME")),
        "date_closed": to_utc(r.get("DATE_CLOSED")),
    }


def first_phone(value: Any) -> str | None:
    """The first number of a PHONE multi-field (``[{"VALUE": "+7...", ...}]``)."""
    return first_value(value)


def _reach(r: Record) -> Row:
    """A client's first phone and e-mail, and their keys for finding duplicates."""
    phone = first_phone(r.get("PHONE"))
    email = first_value(r.get("EMAIL"))
    return {
        "phone": phone,
        "email": email,
        "phone_norm": phone_key(phone),
        "email_norm": email_key(email),
    }


def _company(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        "title": to_text(r.get("TITLE")),
        "company_type": to_code(r.get("COMPANY_TYPE")),
        "industry": to_code(r.get("INDUSTRY")),
        "assigned_by_id": to_ref(r.get("ASSIGNED_BY_ID")),
        "created_by_id": to_ref(r.get("CREATED_BY_ID")),
        "lead_id": to_ref(r.get("LEAD_ID")),
        "is_my_company": to_bool(r.get("IS_MY_COMPANY")),
        **_reach(r),
        "opened": to_bool(r.get("OPENED")),
        "date_create": to_utc(r.get("DATE_CREATE")),
        "date_modify": to_utc(r.get("DATE_MODIFY")),
    }


def _contact(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        "name": to_text(r.get("NAME")),
        "last_name": to_text(r.get("LAST_NAME")),
        "second_name": to_text(r.get("SECOND_NAME")),
        "post": to_text(r.get("POST")),
        "company_id": to_ref(r.get("COMPANY_ID")),
        "lead_id": to_ref(r.get("LEAD_ID")),
        "source_id": to_code(r.get("SOURCE_ID")),
        "assigned_by_id": to_ref(r.get("ASSIGNED_BY_ID")),
        "created_by_id": to_ref(r.get("CREATED_BY_ID")),
        **_reach(r),
        "opened": to_bool(r.get("OPENED")),
        "date_create": to_utc(r.get("DATE_CREATE")),
        "date_modify": to_utc(r.get("DATE_MODIFY")),
    }


def _deal_history(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        "type_id": to_int(r.get("TYPE_ID")),
        "owner_id": to_ref(r.get("OWNER_ID")),
        "created_time": to_utc(r.get("CREATED_TIME")),
        "category_id": to_int(r.get("CATEGORY_ID")) or 0,
        "stage_semantic": to_code(r.get("STAGE_SEMANTIC_ID")),
        "stage_id": to_code(r.get("STAGE_ID")),
    }


def _lead_history(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        "type_id": to_int(r.get("TYPE_ID")),
        "owner_id": to_ref(r.get("OWNER_ID")),
        "created_time": to_utc(r.get("CREATED_TIME")),
        "status_semantic": to_code(r.get("STATUS_SEMANTIC_ID")),
        "status_id": to_code(r.get("STATUS_ID")),
    }


def _call(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        "call_id": to_code(r.get("CALL_ID")),
        "portal_user_id": to_ref(r.get("PORTAL_USER_ID")),
        "portal_number": to_code(r.get("PORTAL_NUMBER")),
        "phone_number": to_code(r.get("PHONE_NUMBER")),
        # The number as a key (E.164): a call back matches however it was spelt.
        "phone_norm": phone_key(r.get("PHONE_NUMBER")),
        "call_type": to_int(r.get("CALL_TYPE")),
        "call_duration": to_int(r.get("CALL_DURATION")) or 0,
        "call_start_date": to_utc(r.get("CALL_START_DATE")),
        "call_failed_code": to_code(r.get("CALL_FAILED_CODE")),
        "crm_entity_type": to_code(r.get("CRM_ENTITY_TYPE")),
        "crm_entity_id": to_ref(r.get("CRM_ENTITY_ID")),
        "crm_activity_id": to_ref(r.get("CRM_ACTIVITY_ID")),
        # The recording: a URL, or a file on the portal's Drive.
        "call_record_url": to_text(r.get("CALL_RECORD_URL")) or None,
        "record_file_id": to_ref(r.get("RECORD_FILE_ID")),
    }


def _activity(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        "type_id": to_int(r.get("TYPE_ID")),
        "provider_id": to_code(r.get("PROVIDER_ID")),
        "provider_type_id": to_code(r.get("PROVIDER_TYPE_ID")),
        "owner_type_id": to_int(r.get("OWNER_TYPE_ID")),
        "owner_id": to_ref(r.get("OWNER_ID")),
        "responsible_id": to_ref(r.get("RESPONSIBLE_ID")),
        "author_id": to_ref(r.get("AUTHOR_ID")),
        "direction": to_int(r.get("DIRECTION")),
        "completed": to_bool(r.get("COMPLETED")),
        "status": to_int(r.get("STATUS")),
        "subject": to_text(r.get("SUBJECT")),
        "created": to_utc(r.get("CREATED")),
        "last_updated": to_utc(r.get("LAST_UPDATED")),
        "start_time": to_utc(r.get("START_TIME")),
        "end_time": to_utc(r.get("END_TIME")),
        "deadline": to_utc(r.get("DEADLINE")),
    }


def _requisite(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        "entity_type_id": to_int(r.get("ENTITY_TYPE_ID")),
        "entity_id": to_ref(r.get("ENTITY_ID")),
        "preset_id": to_ref(r.get("PRESET_ID")),
        "rq_inn": to_code(r.get("RQ_INN")),
        # Digits of a valid INN, else None (rop.bitrix.contact_keys.inn_key).
        "inn_norm": inn_key(r.get("RQ_INN")),
        "date_create": to_utc(r.get("DATE_CREATE")),
        "date_modify": to_utc(r.get("DATE_MODIFY")),
    }


def _user(r: Record) -> Row:
    listed = r.get("UF_DEPARTMENT") or []
    if not isinstance(listed, list):
        listed = [listed]  # a single department sent as a bare value
    departments = [d for d in (to_ref(x) for x in listed) if d is not None]
    return {
        "id": to_int(r["ID"]),
        "active": to_bool(r.get("ACTIVE")),
        "name": to_text(r.get("NAME")),
        "last_name": to_text(r.get("LAST_NAME")),
        "second_name": to_text(r.get("SECOND_NAME")),
        "email": to_text(r.get("EMAIL")),
        "work_position": to_text(r.get("WORK_POSITION")),
        "department_id": departments[0] if departments else None,
        "department_ids": json.dumps(departments),
        # The user's own zone (IANA) when set in their profile: digests go out
        # at the reader's local time (docs/DIGESTS.md).
        "time_zone": to_text(r.get("TIME_ZONE")),
    }


def _department(r: Record) -> Row:
    return {
        "id": to_int(r["ID"]),
        "name": to_text(r.get("NAME")),
        "parent_id": to_ref(r.get("PARENT")),
        "head_id": to_ref(r.get("UF_HEAD")),
        "sort": to_int(r.get("SORT")),
    }


def _pipeline(r: Record) -> Row:
    return {
        "id": to_int(r["id"]),
        "name": to_text(r.get("name")),
        "sort": to_int(r.get("sort")),
        "is_default": to_bool(r.get("isDefault")),
    }


def status_semantics(r: Record) -> str:
    """P, S or F: read EXTRA.SEMANTICS first, fall back to SEMANTICS (BITRIX24_API.md §4)."""
    extra = (r.get("EXTRA") or {}).get("SEMANTICS") if isinstance(r.get("EXTRA"), dict) else None
    if extra == "success":
        return "S"
    if extra in ("failure", "apology"):
        return "F"
    if extra == "process":
        return "P"
    return {"S": "S", "F": "F"}.get(str(r.get("SEMANTICS") or ""), "P")


def _status(r: Record) -> Row:
    return {
        # The directory's key: kept as sent, so an odd blank entry cannot stop a sync.
        "entity_id": to_text(r.get("ENTITY_ID")),
        "status_id": to_text(r.get("STATUS_ID")),
        "name": to_text(r.get("NAME")),
        "sort": to_int(r.get("SORT")),
        "category_id": to_int(r.get("CATEGORY_ID")),
        "semantics": status_semantics(r),
    }


def _currency(r: Record) -> Row:
    return {
        "currency": to_text(r.get("CURRENCY")),
        "amount_cnt": to_float(r.get("AMOUNT_CNT")) or 1.0,
        "amount": to_float(r.get("AMOUNT")) or 1.0,
        "base": to_bool(r.get("BASE")),
    }


DEALS = Entity(
    "deals",
    "deals",
    "crm.deal.list",
    "crm.deal.list.json",
    (
        "ID",
        "TITLE",
        "TYPE_ID",
        "CATEGORY_ID",
        "STAGE_ID",
        "STAGE_SEMANTIC_ID",
        "OPPORTUNITY",
        "CURRENCY_ID",
        "ASSIGNED_BY_ID",
        "CREATED_BY_ID",
        "MOVED_BY_ID",
        "COMPANY_ID",
        "CONTACT_ID",
        "LEAD_ID",
        "SOURCE_ID",
        "CLOSED",
        "OPENED",
        "DATE_CREATE",
        "DATE_MODIFY",
        "MOVED_TIME",
        "BEGINDATE",
        "CLOSEDATE",
    ),  # fmt: skip
    _deal,
    modified_field="DATE_MODIFY",
    big=True,
)
LEADS = Entity(
    "leads",
    "leads",
    "crm.lead.list",
    "crm.lead.list.json",
    (
        "ID",
        "TITLE",
        "NAME",
        "LAST_NAME",
        "STATUS_ID",
        "STATUS_SEMANTIC_ID",
        "OPPORTUNITY",
        "CURRENCY_ID",
        "ASSIGNED_BY_ID",
        "CREATED_BY_ID",
        "MOVED_BY_ID",
        "COMPANY_ID",
        "CONTACT_ID",
        "SOURCE_ID",
        "OPENED",
        "DATE_CREATE",
        "DATE_MODIFY",
        "MOVED_TIME",
        "DATE_CLOSED",
    ),  # fmt: skip
    _lead,
    modified_field="DATE_MODIFY",
    big=True,
)
COMPANIES = Entity(
    "companies",
    "companies",
    "crm.company.list",
    "crm.company.list.json",
    (
        "ID",
        "TITLE",
        "COMPANY_TYPE",
        "INDUSTRY",
        "ASSIGNED_BY_ID",
        "CREATED_BY_ID",
        "LEAD_ID",
        "IS_MY_COMPANY",
        "OPENED",
        "DATE_CREATE",
        "DATE_MODIFY",
        "PHONE",  # multi-fields: sent only when named
        "EMAIL",
    ),  # fmt: skip
    _company,
    modified_field="DATE_MODIFY",
    big=True,
)
CONTACTS = Entity(
    "contacts",
    "contacts",
    "crm.contact.list",
    "crm.contact.list.json",
    (
        "ID",
        "NAME",
        "LAST_NAME",
        "SECOND_NAME",
        "POST",
        "COMPANY_ID",
        "LEAD_ID",
        "SOURCE_ID",
        "ASSIGNED_BY_ID",
        "CREATED_BY_ID",
        "OPENED",
        "DATE_CREATE",
        "DATE_MODIFY",
        "PHONE",  # multi-fields: sent only when named
        "EMAIL",
    ),  # fmt: skip
    _contact,
    modified_field="DATE_MODIFY",
    big=True,
)
DEAL_HISTORY = Entity(
    "deal_history",
    "deal_stage_history",
    "crm.stagehistory.list",
    "crm.stagehistory.list.2.json",
    ("ID", "TYPE_ID", "OWNER_ID", "CREATED_TIME", "CATEGORY_ID", "STAGE_SEMANTIC_ID", "STAGE_ID"),
    _deal_history,
    params={"entityTypeId": 2},
    time_field="CREATED_TIME",
    big=True,
)
LEAD_HISTORY = Entity(
    "lead_history",
    "lead_status_history",
    "crm.stagehistory.list",
    "crm.stagehistory.list.1.json",
    ("ID", "TYPE_ID", "OWNER_ID", "CREATED_TIME", "STATUS_SEMANTIC_ID", "STATUS_ID"),
    _lead_history,
    params={"entityTypeId": 1},
    time_field="CREATED_TIME",
    big=True,
)
CALLS = Entity(
    "calls",
    "calls",
    "voximplant.statistic.get",
    "voximplant.statistic.get.json",
    (),  # voximplant.statistic.get has no select: it always sends every field
    _call,
    time_field="CALL_START_DATE",
    big=True,
)
ACTIVITIES = Entity(
    "activities",
    "activities",
    "crm.activity.list",
    "crm.activity.list.json",
    (
        "ID",
        "TYPE_ID",
        "PROVIDER_ID",
        "PROVIDER_TYPE_ID",
        "OWNER_TYPE_ID",
        "OWNER_ID",
        "RESPONSIBLE_ID",
        "AUTHOR_ID",
        "DIRECTION",
        "COMPLETED",
        "STATUS",
        "SUBJECT",
        "CREATED",
        "LAST_UPDATED",
        "START_TIME",
        "END_TIME",
        "DEADLINE",
    ),  # fmt: skip
    _activity,
    # Every type (meetings, calls, tasks, e-mails, to-dos): the activity
    # figures and the data-quality checks read them all (docs/SYNC.md).
    modified_field="LAST_UPDATED",
    big=True,
)
REQUISITES = Entity(
    "requisites",
    "requisites",
    "crm.requisite.list",
    "crm.requisite.list.json",
    ("ID", "ENTITY_TYPE_ID", "ENTITY_ID", "PRESET_ID", "RQ_INN", "DATE_CREATE", "DATE_MODIFY"),
    _requisite,
    # Companies' and contacts' requisites: the INN the duplicate check
    # compares. Changed ones by DATE_MODIFY, new ones by ID (docs/SYNC.md).
    modified_field="DATE_MODIFY",
    new_by_id=True,
    big=True,
)
USERS = Entity(
    "users",
    "users",
    "user.get",
    "user.get.json",
    (),
    _user,
)
DEPARTMENTS = Entity(
    "departments", "departments", "department.get", "department.get.json", (), _department
)
PIPELINES = Entity(
    "pipelines",
    "pipelines",
    "crm.category.list",
    "crm.category.list.json",
    (),
    _pipeline,
    params={"entityTypeId": 2},
    id_field="id",
)
STATUSES = Entity("statuses", "statuses", "crm.status.list", "crm.status.list.json", (), _status)
CURRENCIES = Entity(
    "currencies",
    "currencies",
    "crm.currency.list",
    "crm.currency.list.json",
    (),
    _currency,
    id_field="CURRENCY",
)

# Directories first (small, replaced whole on every sync), then the big tables.
DIRECTORIES: tuple[Entity, ...] = (USERS, DEPARTMENTS, PIPELINES, STATUSES, CURRENCIES)
BIG: tuple[Entity, ...] = (
    DEALS, LEADS, COMPANIES, CONTACTS, DEAL_HISTORY, LEAD_HISTORY, CALLS, ACTIVITIES,
    REQUISITES,
)  # fmt: skip
ALL: tuple[Entity, ...] = DIRECTORIES + BIG
BY_NAME: dict[str, Entity] = {e.name: e for e in ALL}


def to_rows(entity: Entity, portal: str, records: list[Record]) -> list[Row]:
    """Map REST records of ``entity`` to store rows of ``portal``."""
    rows = []
    for record in records:
        row = entity.to_row(record)
        row["portal"] = portal
        rows.append(row)
    return rows
