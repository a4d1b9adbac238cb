"""Calls: voximplant.statistic.get records and their crm.activity.list twins.

A call is planned (moment and content) when its deal or lead is generated and
written later, in time order, when it gets its ID. Every CALL_TYPE and the
common CALL_FAILED_CODEs occur; most calls are short.
"""

from __future__ import annotations

from random import Random
from typing import Any

from rop.demo.clock import Clock
from rop.demo.names import phone
from rop.demo.staff import Roster

# (CALL_TYPE, weight): 1 outgoing, 2 incoming, 3 incoming redirected, 4 callback, 5 informational.
_TYPES = (1, 2, 3, 4, 5)
_TYPE_WEIGHTS = (55, 28, 5, 8, 4)
_OUT_CODES = ("200", "486", "480", "603", "603-S", "404", "OTHER")
_OUT_WEIGHTS = (62, 10, 7, 7, 6, 3, 5)
_IN_CODES = ("200", "304")
_IN_WEIGHTS = (72, 28)
CALL_CODES = ("200", "304", "603", "603-S", "486", "480", "404", "OTHER")
_REASONS = {
    "200": "Success call",
    "304": "Пропущенный звонок",
    "603": "Отклонено",
    "603-S": "Вызов отменён",
    "486": "Занято",
    "480": "Временно недоступен",
    "404": "Неправильный номер",
    "OTHER": "Вызов не удался",
}
# CRM_ENTITY_TYPE -> crm.enum.ownertype ID, for the call activity's owner.
OWNER_TYPES = {"LEAD": 1, "CONTACT": 3, "COMPANY": 4}
_LINES = ("+74957770101", "+78005553535")

# (user, CALL_TYPE, CALL_FAILED_CODE, CALL_DURATION, CRM_ENTITY_TYPE, CRM_ENTITY_ID, phone, activity?)
Call = tuple[int, int, str, int, str | None, int | None, str, bool]


def plan_calls(
    rng: Random,
    roster: Roster,
    user: int,
    entity: str | None,
    entity_id: int | None,
    start: int,
    end: int,
    count: int,
) -> list[tuple[int, Call]]:
    """``count`` calls by ``user`` about one client between ``start`` and ``end``."""
    calls: list[tuple[int, Call]] = []
    number = phone(rng)
    for _ in range(count):
        moment = start + rng.randrange(max(end - start, 1))
        if not roster.employed(user, moment):
            continue  # nobody calls on behalf of someone who has left
        call_type = rng.choices(_TYPES, _TYPE_WEIGHTS)[0]
        if call_type in (2, 3):
            code = rng.choices(_IN_CODES, _IN_WEIGHTS)[0]
        else:
            code = rng.choices(_OUT_CODES, _OUT_WEIGHTS)[0]
        if code == "200":
            roll = rng.random()
            if roll < 0.35:
                duration = rng.randint(1, 30)
            elif roll < 0.85:
                duration = rng.randint(31, 300)
            else:
                duration = rng.randint(301, 3600)
        else:
            duration = rng.randint(0, 5) if code == "OTHER" else 0
        activity = entity is not None and rng.random() < 0.7
        calls.append(
            (moment, (user, call_type, code, duration, entity, entity_id, number, activity))
        )
    return calls


def call_record(
    clock: Clock, call_id: int, activity_id: int | None, moment: int, call: Call
) -> dict[str, Any]:
    user, call_type, code, duration, entity, entity_id, number, _ = call
    utc = moment - 3 * 3600
    return {
        "ID": str(call_id),
        "CALL_ID": f"externalCall.{(call_id * 2654435761) % 4294967296:08x}.{utc}",
        "PORTAL_USER_ID": str(user),
        "PORTAL_NUMBER": _LINES[call_type in (2, 3)],
        "PHONE_NUMBER": number,
        "CALL_CATEGORY": "external",
        "CALL_DURATION": str(duration),
        "CALL_START_DATE": clock.iso(moment),
        "CALL_RECORD_URL": "",
        "CALL_VOTE": None,
        "COST": "0.0000",
        "COST_CURRENCY": "RUR",
        "CALL_FAILED_CODE": code,
        "CALL_FAILED_REASON": _REASONS[code],
        "CRM_ENTITY_TYPE": entity,
        "CRM_ENTITY_ID": None if entity_id is None else str(entity_id),
        "CRM_ACTIVITY_ID": None if activity_id is None else str(activity_id),
        "REST_APP_ID": None,
        "REST_APP_NAME": None,
        "TRANSCRIPT_ID": None,
        "TRANSCRIPT_PENDING": "N",
        "SESSION_ID": None,
        "REDIAL_ATTEMPT": None,
        "COMMENT": None,
        "RECORD_DURATION": str(duration) if duration else None,
        "RECORD_FILE_ID": None,
        "CALL_TYPE": str(call_type),
    }


def activity_record(clock: Clock, activity_id: int, moment: int, call: Call) -> dict[str, Any]:
    user, call_type, code, duration, entity, entity_id, number, _ = call
    incoming = call_type in (2, 3)
    missed = incoming and code != "200"
    subject = ("Входящий звонок" if incoming else "Исходящий звонок") + f" +{number}"
    end = clock.iso(min(moment + duration, clock.now))
    return {
        "ID": str(activity_id),
        "OWNER_ID": str(entity_id),
        "OWNER_TYPE_ID": str(OWNER_TYPES[entity or ""]),
        "TYPE_ID": "2",
        "PROVIDER_ID": "VOXIMPLANT_CALL",
        "PROVIDER_TYPE_ID": "CALL",
        "PROVIDER_GROUP_ID": None,
        "ASSOCIATED_ENTITY_ID": "0",
        "SUBJECT": subject,
        "CREATED": clock.iso(moment),
        "LAST_UPDATED": end,
        "START_TIME": clock.iso(moment),
        "END_TIME": end,
        "DEADLINE": end,
        # A missed call stays open: it is the manager's to-do to call back.
        "COMPLETED": "N" if missed else "Y",
        "STATUS": "1" if missed else "2",
        "RESPONSIBLE_ID": str(user),
        "PRIORITY": "2",
        "NOTIFY_TYPE": "0",
        "NOTIFY_VALUE": "0",
        "DESCRIPTION": "",
        "DESCRIPTION_TYPE": "1",
        "DIRECTION": "1" if incoming else "2",
        "LOCATION": "",
        "ORIGINATOR_ID": None,
        "ORIGIN_ID": None,
        "AUTHOR_ID": str(user),
        "EDITOR_ID": str(user),
    }
