"""A deal's activities besides calls: meetings, tasks, e-mails and to-dos
(crm.activity.list, bound to the deal), with deadlines and completion.

Closed deals have their activities done. An open deal mostly has a next
step planned ahead; some have one that is overdue, and some none at all
(the "deals without a next step" the report points at, docs/DEMO.md).
Drawn from a side generator (rop.demo.reach.side_random), so the rest of a
portal generated with the same seed is unchanged.
"""

from __future__ import annotations

from random import Random
from typing import Any

from rop.demo.clock import DAY, HOUR, Clock

PLANNED = 0.72  # open deals with a next step ahead
OVERDUE = 0.12  # open deals whose next step is overdue; the rest have none
MAX_LEAD_MINUTES = 30_000  # a deadline at most ~20 days after creation (packs in 15 bits)

# TYPE_ID -> (PROVIDER_ID, PROVIDER_TYPE_ID, subject)
KINDS: dict[int, tuple[str, str, str]] = {
    1: ("CRM_MEETING", "MEETING", "Встреча с клиентом"),
    2: ("VOXIMPLANT_CALL", "CALL", "Позвонить клиенту"),
    3: ("CRM_TASKS_TASK", "TASK", "Подготовить КП"),
    4: ("CRM_EMAIL", "EMAIL", "Письмо клиенту"),
    6: ("CRM_TODO", "CRM_TODO", "Связаться по сделке"),
}
_PLANNED_TYPES = (1, 2, 2, 3, 6, 6)
_DONE_TYPES = (1, 2, 3, 4, 4, 6)

# (user, TYPE_ID, completed, deadline minutes after creation, owner deal ID)
Todo = tuple[int, int, bool, int, int]


def plan_deal_todos(
    rng: Random, user: int, deal_id: int, created: int, last: int, closed: bool, now: int
) -> list[tuple[int, Todo]]:
    """(creation moment, activity) of one deal; moments never after ``now``."""
    out: list[tuple[int, Todo]] = []
    end = last if closed else now
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        moment = created + rng.randrange(max(end - created, 1))
        lead = min(rng.randrange(2 * HOUR, 4 * DAY) // 60, (now - moment) // 60)
        out.append((moment, (user, rng.choice(_DONE_TYPES), True, max(lead, 0), deal_id)))
    if closed:
        return out
    roll = rng.random()
    if roll < PLANNED:
        # Planned lately, due ahead.
        moment = max(created, now - rng.randrange(5 * DAY))
        due = now + rng.randrange(HOUR, 12 * DAY)
        out.append(
            (moment, (user, rng.choice(_PLANNED_TYPES), False, (due - moment) // 60, deal_id))
        )
    elif roll < PLANNED + OVERDUE:
        moment = max(created, now - rng.randrange(2 * DAY, 19 * DAY))
        due = min(moment + rng.randrange(HOUR, 2 * DAY), now - HOUR)
        out.append(
            (moment, (user, rng.choice(_PLANNED_TYPES), False, max(due - moment, 0) // 60, deal_id))
        )
    return [(m, (u, t, c, min(d, MAX_LEAD_MINUTES), o)) for m, (u, t, c, d, o) in out]


def todo_record(clock: Clock, activity_id: int, moment: int, todo: Todo) -> dict[str, Any]:
    user, type_id, completed, minutes, deal_id = todo
    provider, provider_type, subject = KINDS[type_id]
    deadline = moment + minutes * 60
    start = clock.iso(deadline if type_id in (1, 2) else moment)
    return {
        "ID": str(activity_id),
        "OWNER_ID": str(deal_id),
        "OWNER_TYPE_ID": "2",
        "TYPE_ID": str(type_id),
        "PROVIDER_ID": provider,
        "PROVIDER_TYPE_ID": provider_type,
        "SUBJECT": subject,
        "CREATED": clock.iso(moment),
        # Done at its deadline: the last change is the completion.
        "LAST_UPDATED": clock.iso(min(deadline, clock.now) if completed else moment),
        "START_TIME": start,
        "END_TIME": clock.iso(deadline),
        "DEADLINE": clock.iso(deadline),
        "COMPLETED": "Y" if completed else "N",
        "STATUS": "2" if completed else "1",
        "RESPONSIBLE_ID": str(user),
        "AUTHOR_ID": str(user),
        "EDITOR_ID": str(user),
        "PRIORITY": "2",
        "DESCRIPTION": "",
        "DESCRIPTION_TYPE": "1",
        "DIRECTION": "2" if type_id == 4 else "0",
    }
