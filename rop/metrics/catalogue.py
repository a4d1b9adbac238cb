"""Every figure of METRICS.md, each defined once as data.

A figure names its source relation (rop.metrics.sources), the condition that
selects its records and its measure. rop.metrics.compile turns the same
definition into the report's aggregate and into the drill-down list, so the
two cannot disagree.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

import hashlib

from rop.metrics.errors import ColumnChoice, ReportInputError
from rop.metrics.figure import Figure
from rop.metrics.quality import BY_KEY as QUALITY_BY_KEY
from rop.metrics.sources import DAYS, MOVED_BOUND, in_period
from rop.metrics.stages import stage_figure as stage_view_figure

_NEW_D = in_period("date_create")
_WON = f"semantic = 'S' AND {in_period('close_time')}"
_LOST = f"semantic = 'F' AND {in_period('close_time')}"
_CYCLE = DAYS("close_time", "date_create")
# "moved" (rop.metrics.sources.moved) is FALSE unless a movement is in the period.
_MOVED_BOUND = MOVED_BOUND


def _deal(key, measure, kind, cond, ru, en, dru, den, **kw) -> Figure:
    return Figure(key, "deals", "deal_rel", measure, kind, cond, ru, en, dru, den, **kw)


def _lead(key, measure, kind, cond, ru, en, dru, den, **kw) -> Figure:
    return Figure(key, "leads", "lead_rel", measure, kind, cond, ru, en, dru, den, **kw)


def _call(key, measure, kind, cond, ru, en, dru, den, **kw) -> Figure:
    return Figure(key, "calls", "call_rel", measure, kind, cond, ru, en, dru, den, **kw)


_AMOUNT = {"value": "amount", "value_label": ("Сумма", "Amount")}
_DAYS = {"value": _CYCLE, "value_label": ("Дней", "Days")}

DEALS: tuple[Figure, ...] = (
    _deal("deals_new", "count", "count", _NEW_D, "Новые", "New",
          "Сделки, созданные в периоде.", "Deals created in the period."),
    _deal("deals_new_amount", "sum", "amount", _NEW_D, "Сумма новых", "New amount",
          "Сумма новых сделок в базовой валюте.",
          "Amount of new deals in the base currency.", **_AMOUNT),
    _deal("deals_in_progress", "count", "count", "semantic = 'P'", "В работе", "In progress",
          "Сделки в работе сейчас (не закрыты).", "Deals in progress now (not closed).", now=True),
    _deal("deals_in_progress_amount", "sum", "amount", "semantic = 'P'", "Сумма в работе",
          "In progress amount", "Сумма сделок в работе сейчас.",
          "Amount of the deals in progress now.", **_AMOUNT, now=True),
    _deal("deals_moved", "count", "count", "moved", "С движениями по стадиям",
          "Moved through stages",
          "Сделки, которые в периоде меняли стадию или воронку.",
          "Deals that changed stage or pipeline in the period.", bound=_MOVED_BOUND),
    _deal("deals_won", "count", "count", _WON, "Успешные", "Won",
          "Сделки, закрытые успешно в периоде (по истории стадий).",
          "Deals won in the period (by stage history)."),
    _deal("deals_won_amount", "sum", "amount", _WON, "Сумма успешных", "Won amount",
          "Сумма успешных сделок периода.", "Amount of the deals won in the period.",
          **_AMOUNT),
    _deal("deals_avg_won", "mean", "amount", _WON, "Средний чек", "Average deal",
          "Сумма успешных, делённая на их число.", "Won amount divided by won deals.",
          **_AMOUNT),
    _deal("deals_lost", "count", "count", _LOST, "Неуспешные", "Lost",
          "Сделки, закрытые неуспешно в периоде.", "Deals lost in the period."),
    _deal("deals_lost_amount", "sum", "amount", _LOST, "Сумма неуспешных", "Lost amount",
          "Сумма неуспешных сделок периода.", "Amount of the deals lost in the period.",
          **_AMOUNT),
    _deal("deals_conversion_sale", "share", "share", _NEW_D, "Конверсия в продажу",
          "Conversion to sale", "Доля новых сделок периода, которые сейчас успешны.",
          "Share of the period's new deals that are won now.", numerator="semantic = 'S'"),
    _deal("deals_conversion_loss", "share", "share", _NEW_D, "Конверсия в отказ",
          "Conversion to loss", "Доля новых сделок периода, которые сейчас неуспешны.",
          "Share of the period's new deals that are lost now.", numerator="semantic = 'F'"),
    _deal("deals_win_rate", "share", "share", f"({_WON}) OR ({_LOST})", "Доля выигранных",
          "Win rate", "Успешные среди закрытых в периоде.",
          "Won among the deals closed in the period.", numerator="semantic = 'S'"),
    _deal("deals_sale_cycle_days", "mean", "days", _WON, "Цикл сделки, дней",
          "Sale cycle, days", "Среднее время от создания до успешного закрытия.",
          "Mean time from creation to winning.", **_DAYS),
    _deal("deals_loss_cycle_days", "mean", "days", _LOST, "Цикл отказа, дней",
          "Loss cycle, days",
          "Среднее время от создания до неуспешного закрытия (созданы когда угодно, "
          "закрыты в периоде).",
          "Mean time from creation to loss (created any time, lost in the period).", **_DAYS),
    _deal("deals_potential", "count", "count",
          "semantic = 'P' AND closedate >= $d_from AND closedate <= $d_to",
          "Потенциал продаж", "Sales potential",
          "Сделки в работе с плановой датой закрытия в периоде.",
          "Deals in progress planned to close in the period."),
    _deal("deals_potential_amount", "sum", "amount",
          "semantic = 'P' AND closedate >= $d_from AND closedate <= $d_to",
          "Сумма потенциала", "Potential amount", "Сумма сделок потенциала продаж.",
          "Amount of the sales potential.", **_AMOUNT),
    _deal("deals_overdue", "count", "count", "semantic = 'P' AND closedate < $today",
          "Просрочено", "Overdue", "Сделки в работе с плановой датой закрытия в прошлом.",
          "Deals in progress whose planned close date has passed.", now=True),
)  # fmt: skip

_NEW_L = in_period("date_create")
_CONV = f"semantic = 'S' AND {in_period('close_time')}"
_JUNK = f"semantic = 'F' AND {in_period('close_time')}"

LEADS: tuple[Figure, ...] = (
    _lead("leads_new", "count", "count", _NEW_L, "Новые лиды", "New leads",
          "Лиды, созданные в периоде.", "Leads created in the period."),
    _lead("leads_in_progress", "count", "count", "semantic = 'P'", "Лиды в работе",
          "Leads in progress", "Лиды в работе сейчас.", "Leads in progress now.", now=True),
    _lead("leads_moved", "count", "count", "moved", "С движениями по статусам",
          "Moved through statuses", "Лиды, менявшие статус в периоде.",
          "Leads that changed status in the period.", bound=_MOVED_BOUND),
    _lead("leads_converted", "count", "count", _CONV, "Сконвертированы", "Converted",
          "Лиды, успешно сконвертированные в периоде.", "Leads converted in the period."),
    _lead("leads_junk", "count", "count", _JUNK, "Некачественные", "Junk",
          "Лиды, закрытые как некачественные в периоде.",
          "Leads closed as junk in the period."),
    _lead("leads_conversion_sale", "share", "share", _NEW_L, "Конверсия лидов",
          "Lead conversion", "Доля новых лидов периода, которые сейчас сконвертированы.",
          "Share of the period's new leads that are converted now.",
          numerator="semantic = 'S'"),
    _lead("leads_conversion_loss", "share", "share", _NEW_L, "Конверсия в брак",
          "Conversion to junk", "Доля новых лидов периода, которые сейчас в браке.",
          "Share of the period's new leads that are junk now.", numerator="semantic = 'F'"),
    _lead("leads_conversion_cycle_days", "mean", "days", _CONV, "Цикл конверсии, дней",
          "Conversion cycle, days", "Среднее время от создания лида до конверсии.",
          "Mean time from a lead's creation to its conversion.", **_DAYS),
    _lead("leads_junk_cycle_days", "mean", "days", _JUNK, "Цикл отказа по лидам, дней",
          "Junk cycle, days", "Среднее время от создания лида до брака.",
          "Mean time from a lead's creation to junk.", **_DAYS),
)  # fmt: skip


def _clients(section: str, source: str, one_ru: str, many_ru: str, many_en: str):
    """``one_ru`` is the plural nominative ("Компании"), ``many_ru`` the plural
    genitive ("компаний"): "Новые компании", but "Всего компаний"."""
    key = section  # companies|contacts
    nominative = one_ru.lower()
    f = lambda k, m, kind, cond, ru, en, dru, den, **kw: Figure(  # noqa: E731
        f"{key}_{k}", section, source, m, kind, cond, ru, en, dru, den, **kw
    )
    return (
        f("new", "count", "count", in_period("date_create"), f"Новые {nominative}",
          f"New {many_en}", f"{one_ru} менеджера, созданные в периоде.",
          f"The manager's {many_en} created in the period."),
        f("total", "count", "count", "TRUE", f"Всего {many_ru}", f"All {many_en}",
          f"Все {nominative} менеджера сейчас (клиентский портфель).",
          f"All the manager's {many_en} now (the portfolio).", now=True),
        f("with_deals", "count", "count", "with_deals", "Со сделками", "With deals",
          f"{one_ru} менеджера, по которым в периоде создана сделка.",
          f"The manager's {many_en} with a deal created in the period."),
        f("with_sales", "count", "count", "with_sales", "С продажами", "With sales",
          f"{one_ru} менеджера с успешной сделкой, закрытой в периоде.",
          f"The manager's {many_en} with a deal won in the period."),
        f("coverage", "share", "share", "TRUE", "Проработка клиентской базы",
          "Client base coverage", f"Доля {many_ru}, по которым в периоде созданы сделки.",
          f"Share of the {many_en} with a deal created in the period.",
          numerator="with_deals"),
        f("sell_through", "share", "share", "TRUE", "Продаваемость в клиентскую базу",
          "Sell-through", f"Доля {many_ru} с успешной сделкой в периоде.",
          f"Share of the {many_en} with a deal won in the period.", numerator="with_sales"),
        f("not_called", "count", "count", "NOT called", "Без звонков", "Not called",
          f"{one_ru} менеджера без звонков в периоде (с учётом длительности).",
          f"The manager's {many_en} with no call in the period (within the duration bounds)."),
        f("not_sold", "count", "count", "NOT with_sales", "Без продаж", "Not sold",
          f"{one_ru} менеджера без успешных сделок в периоде.",
          f"The manager's {many_en} with no deal won in the period."),
    )  # fmt: skip


COMPANIES = _clients("companies", "company_rel", "Компании", "компаний", "companies")
CONTACTS = _clients("contacts", "contact_rel", "Контакты", "контактов", "contacts")

_INCOMING = "call_type IN (2, 3)"
_MISSED = f"{_INCOMING} AND coalesce(call_failed_code, '') <> '200'"
CALLS: tuple[Figure, ...] = (
    _call("calls_total", "count", "count", "TRUE", "Звонков", "Calls",
          "Звонки, начатые в периоде.", "Calls started in the period."),
    _call("calls_outgoing", "count", "count", "call_type = 1", "Исходящих", "Outgoing",
          "Исходящие звонки периода.", "Outgoing calls of the period."),
    _call("calls_incoming", "count", "count", _INCOMING, "Входящих", "Incoming",
          "Входящие звонки периода (включая переадресованные).",
          "Incoming calls of the period (redirected included)."),
    _call("calls_missed", "count", "count", _MISSED, "Пропущенных", "Missed",
          "Входящие звонки без ответа.", "Incoming calls not answered."),
    _call("calls_talk_seconds", "sum", "seconds", "TRUE", "Время разговоров", "Talk time",
          "Суммарная длительность звонков.", "Total duration of the calls.",
          value="call_duration", value_label=("Секунд", "Seconds")),
    _call("calls_avg_seconds", "mean", "seconds", "call_failed_code = '200'",
          "Средний звонок", "Average call", "Средняя длительность состоявшихся звонков.",
          "Mean duration of the calls that connected.",
          value="call_duration", value_label=("Секунд", "Seconds")),
)  # fmt: skip

STATIC: tuple[Figure, ...] = DEALS + LEADS + COMPANIES + CONTACTS + CALLS

# The period's missed calls that were called back: a later call with the same
# client connected (CALL_FAILED_CODE 200), outgoing or incoming, by anyone, up
# to the data's end. The same client: the same CRM binding, or the same number
# (calls.phone_norm, E.164). Connected calls count whatever the duration bounds.
# Uncorrelated, so each engine computes the set once per query; two equi-joins
# (a UNION, not an OR) from the period's few missed calls to the connected calls
# since the period began: 0.13 s at 1.9M calls, where grouping every connected
# call by client first took 2.3 s.
_MISSED_IN_P = (
    "(SELECT id, crm_entity_type, crm_entity_id, phone_norm, call_start_date FROM calls m "
    f"WHERE m.portal = $portal AND {in_period('m.call_start_date')} "
    "AND m.call_type IN (2, 3) AND coalesce(m.call_failed_code, '') <> '200')"
)
_BACK = (
    "b.portal = $portal AND b.call_start_date >= $p_from AND b.call_failed_code = '200' "
    "AND b.call_start_date > m.call_start_date"
)
_CALLED_BACK = (
    f"SELECT m.id FROM {_MISSED_IN_P} m JOIN calls b ON b.crm_entity_type = m.crm_entity_type "
    f"AND b.crm_entity_id = m.crm_entity_id WHERE {_BACK}\n"
    f"UNION SELECT m.id FROM {_MISSED_IN_P} m JOIN calls b ON b.phone_norm = m.phone_norm "
    f"WHERE {_BACK}"
)

# Figures a drill-down, a digest or the JSON may ask for by key, not report
# columns (METRICS.md's table is the columns; these are in METRICS_DECISIONS.md).
EXTRA: tuple[Figure, ...] = (
    _call("calls_not_called_back", "count", "count",
          f"{_MISSED} AND f.id NOT IN ({_CALLED_BACK})",
          "Пропущенные без перезвона", "Missed, not called back",
          "Пропущенные входящие звонки периода, после которых с этим клиентом (та же "
          "привязка в CRM или тот же номер) никто не поговорил до сих пор: ни исходящим, "
          "ни входящим звонком.",
          "Missed incoming calls of the period after which nobody has talked to that "
          "client (the same CRM binding or the same number) up to now, by an outgoing "
          "or an incoming call."),
)  # fmt: skip
_BY_KEY: dict[str, Figure] = {f.key: f for f in STATIC + EXTRA}

STAGE_PREFIX = "deal_stage:"
STATUS_PREFIX = "lead_status:"


def _param(key: str) -> str:
    # Parameter names come from code, never from data: a digest of the key.
    return "k_" + hashlib.sha1(key.encode()).hexdigest()[:10]


def _entered_figure(
    prefix: str,
    section: str,
    history: str,
    column: str,
    value: str,
    texts: tuple[str, str, str, str],
) -> Figure:
    """Records with a history row into ``value`` in the period (a key stage or status)."""
    key = prefix + value
    p = _param(key)
    cond = (
        f"EXISTS (SELECT 1 FROM {history} h WHERE h.portal = $portal "
        f"AND h.owner_id = f.id AND h.{column} = ${p} AND {in_period('h.created_time')})"
    )
    source = "deal_rel" if section == "deals" else "lead_rel"
    return Figure(
        key, section, source, "count", "count", cond, texts[0], texts[1], texts[2], texts[3],
        params=((p, value),),
    )  # fmt: skip


def stage_figure(stage_id: str, name: str | None = None) -> Figure:
    """The column of one key deal stage: deals that entered it in the period."""
    label = name or stage_id
    texts = (
        label,
        label,
        f"Сделки, попавшие в стадию «{label}» в периоде.",
        f"Deals that entered the stage “{label}” in the period.",
    )
    return _entered_figure(STAGE_PREFIX, "deals", "deal_stage_history", "stage_id", stage_id, texts)


def status_figure(status_id: str, name: str | None = None) -> Figure:
    """The column of one key lead status: leads that entered it in the period."""
    label = name or status_id
    texts = (
        label,
        label,
        f"Лиды, попавшие в статус «{label}» в периоде.",
        f"Leads that entered the status “{label}” in the period.",
    )
    return _entered_figure(
        STATUS_PREFIX, "leads", "lead_status_history", "status_id", status_id, texts
    )


FUNNEL_PREFIX = "deal_funnel:"


def _stage_pipeline(stage_id: str) -> int:
    """Bitrix24 names stages of pipeline n "C<n>:..."; the default pipeline's have no prefix."""
    head, sep, _ = stage_id.partition(":")
    if sep and head[:1] == "C" and head[1:].isdigit():
        return int(head[1:])
    return 0


def funnel_figure(stage_id: str, name: str | None = None) -> Figure:
    """One step of a pipeline's funnel (the page's picture): deals created in the
    period in that pipeline that reached this stage or a later working one (by
    stage history or their current stage; won deals passed them all). Lost
    stages are not steps. The first step is every deal created in the pipeline.
    """
    key = FUNNEL_PREFIX + stage_id
    pipe = _stage_pipeline(stage_id)
    entity = "DEAL_STAGE" if pipe == 0 else f"DEAL_STAGE_{pipe}"
    p_stage, p_pipe, p_entity = _param(key), _param(key + "#pipe"), _param(key + "#entity")
    step_sort = (
        f"(SELECT max(s.sort) FROM statuses s WHERE s.portal = $portal "
        f"AND s.entity_id = ${p_entity} AND s.status_id = ${p_stage})"
    )
    first_sort = (
        f"(SELECT min(s.sort) FROM statuses s WHERE s.portal = $portal "
        f"AND s.entity_id = ${p_entity} AND coalesce(s.semantics, '') <> 'F')"
    )
    reached = (
        "EXISTS (SELECT 1 FROM (SELECT h.stage_id FROM deal_stage_history h "
        "WHERE h.portal = $portal AND h.owner_id = f.id "
        "UNION ALL SELECT d.stage_id FROM deals d WHERE d.portal = $portal AND d.id = f.id) r "
        f"JOIN statuses st ON st.portal = $portal AND st.entity_id = ${p_entity} "
        "AND st.status_id = r.stage_id AND coalesce(st.semantics, '') <> 'F' "
        f"WHERE st.sort >= {step_sort})"
    )
    cond = (
        f"category_id = ${p_pipe} AND {in_period('date_create')} "
        f"AND ({step_sort} <= {first_sort} OR {reached})"
    )
    label = name or stage_id
    return Figure(
        key, "deals", "deal_rel", "count", "count", cond,
        f"Воронка: {label}", f"Funnel: {label}",
        f"Сделки, созданные в периоде в этой воронке и дошедшие до стадии «{label}» "
        "или дальше (по истории стадий или текущей стадии; успешные прошли все).",
        f"Deals created in the period in this pipeline that reached the stage “{label}” "
        "or a later one (by stage history or the current stage; won deals passed them all).",
        params=((p_stage, stage_id), (p_pipe, pipe), (p_entity, entity)),
    )  # fmt: skip


def figures(flt: ColumnChoice | None = None, names: dict[str, str] | None = None) -> list[Figure]:
    """The report's columns in order: the filter's sections, key stages after deals."""
    if flt is None:
        return list(STATIC)
    names = names or {}
    out: list[Figure] = []
    for section in flt.sections:
        out.extend(f for f in STATIC if f.section == section)
        if section == "deals":
            out.extend(stage_figure(s, names.get(STAGE_PREFIX + s)) for s in flt.key_stages)
        if section == "leads":
            out.extend(status_figure(s, names.get(STATUS_PREFIX + s)) for s in flt.key_statuses)
    return out


def figure(key: str) -> Figure:
    """The figure of ``key``; key stage/status columns are built on demand."""
    found = _BY_KEY.get(key) or QUALITY_BY_KEY.get(key)
    if found is not None:
        return found
    if key.startswith(STAGE_PREFIX) and len(key) > len(STAGE_PREFIX):
        return stage_figure(key[len(STAGE_PREFIX) :])
    if key.startswith(STATUS_PREFIX) and len(key) > len(STATUS_PREFIX):
        return status_figure(key[len(STATUS_PREFIX) :])
    if key.startswith(FUNNEL_PREFIX) and len(key) > len(FUNNEL_PREFIX):
        return funnel_figure(key[len(FUNNEL_PREFIX) :])
    view = stage_view_figure(key)
    if view is not None:
        return view
    choices = ", ".join(
        [*(f.key for f in STATIC + EXTRA), *QUALITY_BY_KEY, STAGE_PREFIX + "<stage>", STATUS_PREFIX + "<status>",
         FUNNEL_PREFIX + "<stage>",
         "deal_move:<pipeline>|<from>|<to>", "deal_time:<pipeline>|<stage>",
         "deal_time_open:<pipeline>|<stage>", "deal_reach:<pipeline>|<stage>",
         "deal_stuck:<pipeline>", "lead_move:0|<from>|<to>", "lead_time:0|<status>",
         "lead_time_open:0|<status>", "lead_reach:0|<status>", "lead_stuck:0"]
    )  # fmt: skip
    raise ReportInputError("unknown_figure", figure=key, choices=choices)
