"""Data quality and activities: the checks that say which numbers to distrust,
and the activity figures, each defined once as data (docs/METRICS_DECISIONS.md
"Data quality").

Each check is a Figure over one of the relations below (one row per record
with a flag per problem), so the panel's number and its drill-down are
compiled from the same definition (rop.metrics.compile), and the viewer's
scope narrows both alike. Checks about the present ignore the period; the
unprocessed leads and the unbound calls are those of the period.

Named parameters besides the sources' own: ``$stale_before`` (UTC: no
movement or activity since then is "stale"), ``$lead_seconds`` (working
seconds a new lead may wait), ``$wh_from``/``$wh_to`` (the working hours of
every working day from the period's start to now, UTC, in pairs: the report
builds them from the production calendar, rop.report.quality).
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass

from rop.metrics.figure import Column, Figure
from rop.metrics.sources import (
    CALL_BASE,
    Cte,
    Options,
    Source,
    _pipes,
    among,
    deal_ctes,
    in_period,
    lead_ctes,
    text_step,
)
from rop.store.dialect import epoch_seconds

SECTION = "quality"
ACTIVITY_SECTION = "activities"

# The checks as the settings name them (ROP_QUALITY_CHECKS), in the panel's order.
CHECKS: tuple[str, ...] = (
    "deal_no_amount",
    "deal_no_client",
    "deal_overdue_close",
    "deal_stale",
    "deal_no_next_step",
    "lead_slow",
    "client_no_reach",
    "client_duplicate",
    "dismissed_owner",
    "call_unbound",
)


@dataclass(frozen=True)
class QualitySettings:
    """What the settings choose: the checks shown and their two thresholds."""

    checks: tuple[str, ...] = CHECKS
    stale_days: int = 14  # "no movement and no activity" for more than this
    lead_hours: int = 4  # working hours a new lead may wait to be processed


# An activity that is still to do: a next step (calls, meetings, tasks, to-dos,
# e-mails alike: any open activity counts as planned).
_OPEN_ACTIVITY = "coalesce(a.completed, FALSE) = FALSE"


def _deal_quality(opts: Options) -> list[Cte]:
    return [
        *deal_ctes(opts),
        Cte(
            "deal_acts_base",
            # Per deal: whether something is still to do, and its last activity.
            # Static (the data only): cached per data version like deal_base.
            f"""SELECT a.owner_id AS deal_id, bool_or({_OPEN_ACTIVITY}) AS planned,
    max(coalesce(a.last_updated, a.created)) AS last_activity
FROM activities a WHERE a.portal = $portal AND a.owner_type_id = 2 AND a.owner_id IS NOT NULL
GROUP BY a.owner_id""",
            static=True,
        ),
        Cte(
            "q_deal_rel",
            f"""SELECT b.id, b.manager_id, b.semantic, b.date_create, b.closedate, b.close_time,
    b.amount, b.company_id, b.contact_id, b.grp_source, b.grp_pipeline,
    b.semantic = 'P' AS is_open,
    (b.semantic = 'P' OR {in_period("b.date_create")} OR {in_period("b.close_time")}) AS in_view,
    b.amount_missing AS no_amount,
    b.company_id IS NULL AND b.contact_id IS NULL AS no_client,
    b.semantic = 'P' AND b.closedate < $today AS overdue_close,
    CASE WHEN b.last_move IS NULL OR b.last_move < b.date_create THEN b.date_create
        ELSE b.last_move END AS last_move,
    qa.last_activity,
    coalesce(qa.planned, FALSE) AS planned,
    u.active = FALSE AS owner_dismissed
FROM deal_base b
LEFT JOIN deal_acts_base qa ON qa.deal_id = b.id
LEFT JOIN (SELECT id, active FROM users WHERE portal = $portal) u ON u.id = b.manager_id
WHERE {_pipes("b", opts)}""",
        ),
    ]


def _earliest(*exprs: str) -> str:
    """The earliest non-NULL of some TIMESTAMP expressions (NULL if all are):
    spelled out, as DuckDB's and PostgreSQL's least() treat NULL alike only so."""
    out = exprs[0]
    for e in exprs[1:]:
        out = (
            f"CASE WHEN {out} IS NULL OR ({e} IS NOT NULL AND {e} < {out}) THEN {e} ELSE {out} END"
        )
    return out


def _lead_quality(opts: Options) -> list[Cte]:
    work = (
        f"({epoch_seconds('least(w.e, t.upto)')} - {epoch_seconds('greatest(w.s, t.date_create)')})"
    )
    return [
        *lead_ctes(opts),
        Cte(
            "lead_calls_base",
            "SELECT crm_entity_id AS lead_id, min(call_start_date) AS first_call FROM calls "
            "WHERE portal = $portal AND crm_entity_type = 'LEAD' GROUP BY crm_entity_id",
            static=True,
        ),
        Cte(
            "q_lead_touch",
            # A lead is processed by its first status change, its first call or
            # its close, whichever came first.
            f"""SELECT b.id, b.date_create, b.semantic,
    {_earliest("b.first_move", "c.first_call", "b.close_time")} AS processed_at
FROM lead_base b
LEFT JOIN lead_calls_base c ON c.lead_id = b.id
WHERE b.date_create >= $p_from AND b.date_create < $p_to""",
        ),
        Cte(
            "q_lead_wait",
            # Working seconds from creation to processing (to now if not yet).
            f"""SELECT t.id, t.processed_at, sum({work}) AS waited
FROM (SELECT id, date_create, processed_at,
        CASE WHEN processed_at IS NULL OR processed_at > $now THEN $now ELSE processed_at END
            AS upto
    FROM q_lead_touch) t
JOIN (SELECT unnest(CAST($wh_from AS TIMESTAMP[])) AS s,
        unnest(CAST($wh_to AS TIMESTAMP[])) AS e) w
    ON w.s < t.upto AND w.e > t.date_create
GROUP BY t.id, t.processed_at""",
        ),
        Cte(
            "q_lead_rel",
            """SELECT b.id, b.manager_id, b.semantic, b.date_create, b.grp_source, b.grp_pipeline,
    b.semantic = 'P' AS is_open,
    -- A lead closed at a time nobody recorded cannot be judged: not counted.
    w.id IS NOT NULL AND w.waited > $lead_seconds
        AND NOT (b.semantic <> 'P' AND t.processed_at IS NULL) AS slow,
    w.waited / 3600.0 AS waited_hours, t.processed_at,
    u.active = FALSE AS owner_dismissed
FROM lead_base b
LEFT JOIN q_lead_touch t ON t.id = b.id
LEFT JOIN q_lead_wait w ON w.id = b.id
LEFT JOIN (SELECT id, active FROM users WHERE portal = $portal) u ON u.id = b.manager_id""",
        ),
    ]


def _client_quality(kind: str) -> list[Cte]:
    table = "companies" if kind == "company" else "contacts"
    type_id = 4 if kind == "company" else 3  # the requisite's ENTITY_TYPE_ID
    name = (
        "x.title"
        if kind == "company"
        else "trim(coalesce(x.name, '') || ' ' || coalesce(x.last_name, ''))"
    )
    mine = "AND NOT coalesce(x.is_my_company, FALSE)" if kind == "company" else ""
    return [
        Cte(
            f"{kind}_twins_base",
            # Keys held by more than one client of the same kind (static: cached).
            f"""SELECT k FROM (
    SELECT phone_norm AS k FROM {table} x WHERE portal = $portal AND phone_norm IS NOT NULL {mine}
    UNION ALL
    SELECT email_norm AS k FROM {table} x WHERE portal = $portal AND email_norm IS NOT NULL {mine}
) keys GROUP BY k HAVING count(*) > 1""",
            static=True,
        ),
        Cte(
            f"{kind}_inns",
            # Each client's valid INNs (digits only) from its requisites; a
            # requisite of a record we do not hold (or of our own company) is not one.
            f"""SELECT DISTINCT q.entity_id AS id, q.inn_norm AS inn
FROM requisites q JOIN {table} x ON x.portal = q.portal AND x.id = q.entity_id {mine}
WHERE q.portal = $portal AND q.entity_type_id = {type_id} AND q.inn_norm IS NOT NULL""",
            static=True,
        ),
        Cte(
            f"{kind}_inn_twins_base",
            # Clients sharing an INN with another client of the same kind
            # (two requisites of one client with one INN are not a duplicate).
            f"""SELECT DISTINCT i.id FROM {kind}_inns i
WHERE i.inn IN (SELECT inn FROM {kind}_inns GROUP BY inn HAVING count(*) > 1)""",
            static=True,
        ),
        # What only a list shows (kept out of the counting query).
        text_step(
            f"{kind}_text",
            lambda ids: (
                f"""SELECT x.id, {name} AS title, x.phone, x.email, q.inn FROM {table} x
LEFT JOIN (SELECT entity_id, min(rq_inn) AS inn FROM requisites
    WHERE portal = $portal AND entity_type_id = {type_id}{among("entity_id", ids)} GROUP BY entity_id) q
    ON q.entity_id = x.id
WHERE x.portal = $portal{among("x.id", ids)}"""
            ),
        ),
        Cte(
            f"q_{kind}_rel",
            f"""SELECT x.id, x.assigned_by_id AS manager_id, x.date_create, TRUE AS is_open,
    CAST(NULL AS VARCHAR) AS grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline,
    x.phone_norm IS NULL AND x.email_norm IS NULL
        AND nullif(trim(coalesce(x.phone, '')), '') IS NULL
        AND nullif(trim(coalesce(x.email, '')), '') IS NULL AS no_reach,
    (x.phone_norm IN (SELECT k FROM {kind}_twins_base)
        OR x.email_norm IN (SELECT k FROM {kind}_twins_base)
        OR x.id IN (SELECT id FROM {kind}_inn_twins_base)) AS duplicate,
    u.active = FALSE AS owner_dismissed
FROM {table} x
LEFT JOIN (SELECT id, active FROM users WHERE portal = $portal) u ON u.id = x.assigned_by_id
WHERE x.portal = $portal AND x.assigned_by_id IS NOT NULL {mine}""",
        ),
    ]


def _company_quality(opts: Options) -> list[Cte]:
    return _client_quality("company")


def _contact_quality(opts: Options) -> list[Cte]:
    return _client_quality("contact")


def _call_quality(opts: Options) -> list[Cte]:
    return [
        CALL_BASE,
        Cte(
            "q_call_rel",
            f"""SELECT c.id, c.manager_id, c.call_type, c.call_duration, c.call_start_date,
    c.call_failed_code, c.crm_entity_type, c.crm_entity_id, cl.phone_number,
    CAST(NULL AS VARCHAR) AS grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline,
    c.crm_entity_id IS NULL AS unbound
FROM call_base c
LEFT JOIN (SELECT id, phone_number FROM calls WHERE portal = $portal) cl ON cl.id = c.id
WHERE c.manager_id IS NOT NULL AND {in_period("c.call_start_date")}""",
        ),
    ]


def _activity_rel(opts: Options) -> list[Cte]:
    return [
        Cte(
            "q_activity_rel",
            """SELECT a.id, a.responsible_id AS manager_id, a.type_id, a.subject, a.completed,
    a.deadline, a.created, a.last_updated, a.owner_type_id, a.owner_id,
    CAST(NULL AS VARCHAR) AS grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline
FROM activities a
WHERE a.portal = $portal AND a.responsible_id IS NOT NULL""",
        ),
    ]


_MANAGER = Column("manager", "manager_name", "Менеджер", "Manager")
_DISMISSED = Column("owner_dismissed", "owner_dismissed", "Уволен", "Dismissed", "bool")

SOURCES: dict[str, Source] = {
    "q_deal_rel": Source(
        "q_deal_rel", SECTION, "deal", _deal_quality, "TRUE",
        (
            Column("title", "title", "Сделка", "Deal"),
            _MANAGER,
            Column("stage", "stage_name", "Стадия", "Stage"),
            Column("amount", "amount", "Сумма", "Amount", "amount"),
            Column("date_create", "date_create", "Создана", "Created", "datetime"),
            Column("closedate", "closedate", "Плановая дата", "Planned close", "date"),
            Column("last_move", "last_move", "Последнее движение", "Last move", "datetime"),
            Column("last_activity", "last_activity", "Последнее дело", "Last activity",
                   "datetime"),
            Column("planned", "planned", "Есть план", "Planned", "bool"),
            _DISMISSED,
        ),
        "/crm/deal/details/{id}/",
        ("title", "stage_name"),
    ),
    "q_lead_rel": Source(
        "q_lead_rel", SECTION, "lead", _lead_quality, "TRUE",
        (
            Column("title", "title", "Лид", "Lead"),
            _MANAGER,
            Column("status", "status_name", "Статус", "Status"),
            Column("date_create", "date_create", "Создан", "Created", "datetime"),
            Column("processed_at", "processed_at", "Обработан", "Processed", "datetime"),
            Column("waited_hours", "waited_hours", "Ждал, рабочих часов", "Waited, working hours",
                   "days"),
            _DISMISSED,
        ),
        "/crm/lead/details/{id}/",
        ("status_name", "title"),
    ),
    "q_company_rel": Source(
        "q_company_rel", SECTION, "company", _company_quality, "TRUE",
        (
            Column("title", "title", "Компания", "Company"),
            _MANAGER,
            Column("phone", "phone", "Телефон", "Phone", "phone"),
            Column("email", "email", "E-mail", "E-mail"),
            Column("inn", "inn", "ИНН", "INN"),
            Column("date_create", "date_create", "Создана", "Created", "datetime"),
            _DISMISSED,
        ),
        "/crm/company/details/{id}/",
        ("title", "phone", "email", "inn"),
    ),
    "q_contact_rel": Source(
        "q_contact_rel", SECTION, "contact", _contact_quality, "TRUE",
        (
            Column("title", "title", "Контакт", "Contact"),
            _MANAGER,
            Column("phone", "phone", "Телефон", "Phone", "phone"),
            Column("email", "email", "E-mail", "E-mail"),
            Column("inn", "inn", "ИНН", "INN"),
            Column("date_create", "date_create", "Создан", "Created", "datetime"),
            _DISMISSED,
        ),
        "/crm/contact/details/{id}/",
        ("title", "phone", "email", "inn"),
    ),
    "q_call_rel": Source(
        "q_call_rel", SECTION, "call", _call_quality, "TRUE",
        (
            _MANAGER,
            Column("started", "call_start_date", "Начало", "Started", "datetime"),
            Column("call_type", "call_type", "Тип", "Type", "call_type"),
            Column("duration", "call_duration", "Длительность", "Duration", "seconds"),
            Column("phone", "phone_number", "Номер", "Number", "phone"),
        ),
        None,
    ),
    "q_activity_rel": Source(
        "q_activity_rel", ACTIVITY_SECTION, "activity", _activity_rel, "TRUE",
        (
            Column("subject", "subject", "Дело", "Activity"),
            _MANAGER,
            Column("type_id", "type_id", "Тип", "Type", "count"),
            Column("deadline", "deadline", "Срок", "Deadline", "datetime"),
            Column("completed", "completed", "Выполнено", "Completed", "bool"),
            Column("last_updated", "last_updated", "Изменено", "Updated", "datetime"),
            Column("owner_type_id", "owner_type_id", "Тип владельца", "Owner type", "count"),
            Column("owner_id", "owner_id", "ID владельца", "Owner ID", "count"),
        ),
        None,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Check:
    """One check of the settings: its figures (one per entity it looks at)."""

    name: str
    figures: tuple[Figure, ...]


def _fig(key, source, cond, ru, en, dru, den, now=True) -> Figure:
    section = SOURCES[source].section
    return Figure(key, section, source, "count", "count", cond, ru, en, dru, den, now=now)


_STALE = (
    "is_open AND last_move < $stale_before "
    "AND (last_activity IS NULL OR last_activity < $stale_before)"
)

QUALITY: tuple[Check, ...] = (
    Check("deal_no_amount", (_fig(
        "quality_deal_no_amount", "q_deal_rel", "in_view AND no_amount",
        "Сделки без суммы", "Deals without an amount",
        "Сделки в работе, созданные или закрытые в периоде, без суммы (или в валюте без курса): "
        "в суммах отчёта они считаются как 0 ₽.",
        "Deals in progress, created or closed in the period, with no amount (or in a currency "
        "with no rate): the report's amounts count them as 0.", now=False),)),
    Check("deal_no_client", (_fig(
        "quality_deal_no_client", "q_deal_rel", "in_view AND no_client",
        "Сделки без клиента", "Deals without a client",
        "Сделки в работе, созданные или закрытые в периоде, без компании и без контакта.",
        "Deals in progress, created or closed in the period, with neither a company nor a "
        "contact.", now=False),)),
    Check("deal_overdue_close", (_fig(
        "quality_deal_overdue_close", "q_deal_rel", "overdue_close",
        "Просрочена дата закрытия", "Close date passed",
        "Сделки в работе, у которых плановая дата закрытия уже прошла.",
        "Deals in progress whose planned close date has passed."),)),
    Check("deal_stale", (_fig(
        "quality_deal_stale", "q_deal_rel", _STALE,
        "Без движения и дел", "No movement, no activity",
        "Сделки в работе без смены стадии и без дел дольше заданного числа дней.",
        "Deals in progress with no stage change and no activity for longer than the set "
        "number of days."),)),
    Check("deal_no_next_step", (_fig(
        "quality_deal_no_next_step", "q_deal_rel", "is_open AND NOT planned",
        "Без следующего шага", "No next step",
        "Сделки в работе без запланированного дела (звонка, встречи, задачи, письма).",
        "Deals in progress with no planned activity (a call, meeting, task or e-mail)."),)),
    Check("lead_slow", (_fig(
        "quality_lead_slow", "q_lead_rel", "slow",
        "Лиды обработаны поздно", "Leads processed late",
        "Лиды, созданные в периоде, которые не сменили статус и не получили звонка за заданное "
        "число рабочих часов (производственный календарь РФ, 9:00–18:00 по времени портала).",
        "Leads created in the period with no status change and no call within the set "
        "working hours (Russian production calendar, 9:00-18:00 portal time).", now=False),)),
    Check("client_no_reach", (
        _fig("quality_company_no_reach", "q_company_rel", "no_reach",
             "Компании без телефона и e-mail", "Companies without phone or e-mail",
             "Компании, у которых нет ни телефона, ни e-mail.",
             "Companies with neither a phone nor an e-mail."),
        _fig("quality_contact_no_reach", "q_contact_rel", "no_reach",
             "Контакты без телефона и e-mail", "Contacts without phone or e-mail",
             "Контакты, у которых нет ни телефона, ни e-mail.",
             "Contacts with neither a phone nor an e-mail."),
    )),
    Check("client_duplicate", (
        _fig("quality_company_duplicate", "q_company_rel", "duplicate",
             "Похожие компании", "Likely duplicate companies",
             "Компании, у которых первый телефон (в международном виде), e-mail или ИНН из "
             "реквизитов совпадает с другой компанией.",
             "Companies whose first phone (in international form), e-mail or requisites' INN "
             "is another company's."),
        _fig("quality_contact_duplicate", "q_contact_rel", "duplicate",
             "Похожие контакты", "Likely duplicate contacts",
             "Контакты, у которых первый телефон (в международном виде), e-mail или ИНН из "
             "реквизитов совпадает с другим контактом.",
             "Contacts whose first phone (in international form), e-mail or requisites' INN "
             "is another contact's."),
    )),
    Check("dismissed_owner", (
        _fig("quality_deal_dismissed", "q_deal_rel", "is_open AND owner_dismissed",
             "Сделки уволенных", "Deals of dismissed users",
             "Сделки в работе, ответственный за которые уволен.",
             "Deals in progress whose responsible user is dismissed."),
        _fig("quality_lead_dismissed", "q_lead_rel", "is_open AND owner_dismissed",
             "Лиды уволенных", "Leads of dismissed users",
             "Лиды в работе, ответственный за которые уволен.",
             "Leads in progress whose responsible user is dismissed."),
        _fig("quality_company_dismissed", "q_company_rel", "owner_dismissed",
             "Компании уволенных", "Companies of dismissed users",
             "Компании, ответственный за которые уволен.",
             "Companies whose responsible user is dismissed."),
        _fig("quality_contact_dismissed", "q_contact_rel", "owner_dismissed",
             "Контакты уволенных", "Contacts of dismissed users",
             "Контакты, ответственный за которые уволен.",
             "Contacts whose responsible user is dismissed."),
    )),
    Check("call_unbound", (_fig(
        "quality_call_unbound", "q_call_rel", "unbound",
        "Звонки без привязки", "Calls bound to nothing",
        "Звонки периода, не привязанные ни к одной записи CRM.",
        "Calls of the period bound to no CRM record.", now=False),)),
)  # fmt: skip

ACTIVITIES: tuple[Figure, ...] = (
    _fig("activities_done", "q_activity_rel",
         f"completed AND {in_period('last_updated')}",
         "Дел выполнено", "Activities done",
         "Дела (звонки, встречи, задачи, письма), выполненные в периоде: завершённые, "
         "последнее изменение которых в периоде (у Bitrix24 нет времени завершения).",
         "Activities (calls, meetings, tasks, e-mails) done in the period: completed, with "
         "their last change in the period (Bitrix24 has no completion time).", now=False),
    _fig("activities_overdue", "q_activity_rel",
         "coalesce(completed, FALSE) = FALSE AND deadline < $now",
         "Дел просрочено", "Activities overdue",
         "Незавершённые дела со сроком в прошлом, сейчас.",
         "Open activities whose deadline has passed, now."),
)  # fmt: skip

# "Deals without a next step" is both an activity figure and a check: one definition.
NEXT_STEP = "quality_deal_no_next_step"

BY_KEY: dict[str, Figure] = {
    f.key: f for f in (*ACTIVITIES, *(g for c in QUALITY for g in c.figures))
}
# The records a manager's score is over ("open records"): per relation, which count.
OPEN: dict[str, str] = {
    "q_deal_rel": "is_open",
    "q_lead_rel": "is_open",
    "q_company_rel": "is_open",
    "q_contact_rel": "is_open",
}


def check_figures(settings: QualitySettings) -> list[Figure]:
    """The figures of the enabled checks, in the panel's order."""
    return [f for c in QUALITY if c.name in settings.checks for f in c.figures]


def check_of(key: str) -> str | None:
    """The settings' name of the check a figure belongs to."""
    return next((c.name for c in QUALITY if any(f.key == key for f in c.figures)), None)
