"""Errors the report raises; rop.report.filter re-exports them.

A ReportInputError carries a ``code`` and its ``params`` as well as its text:
``str(exc)`` is English (the CLI prints it), and ``exc.message(lang)`` says
the same in the page's language (ru or en). Every code's wording lives in
``MESSAGES`` below, so both languages stay side by side.
"""

from __future__ import annotations

from typing import Any, Protocol

# code -> (ru, en); placeholders are filled from the error's params.
MESSAGES: dict[str, tuple[str, str]] = {
    "unknown_figure": (
        "нет показателя {figure!r}; есть: {choices}",
        "unknown figure {figure!r}; choose from {choices}",
    ),
    "hidden_section": (
        "показатель {figure!r} из скрытого раздела {section!r}",
        "figure {figure!r} is in the hidden section {section!r}",
    ),
    "period_reversed": (
        "период начинается позже, чем кончается: {date_from} > {date_to}",
        "the period starts after it ends: {date_from} > {date_to}",
    ),
    "unknown_section": (
        "нет раздела {section!r}; есть: {choices}",
        "unknown section {section!r}; choose from {choices}",
    ),
    "unknown_grouping": (
        "нельзя сгруппировать по {by!r}; можно: {choices}",
        "unknown grouping {by!r}; choose from {choices}",
    ),
    "max_call_below_min": (
        "максимальная длительность звонка ({high} с) меньше минимальной ({low} с)",
        "the maximum call duration ({high} s) is below the minimum ({low} s)",
    ),
    "unknown_pipeline": (
        "нет воронки {pipeline}; есть: {choices}",
        "unknown pipeline {pipeline}; choose from {choices}",
    ),
    "stuck_days_twice": (
        "порог зависания для воронки {pipeline} задан дважды",
        "the stuck threshold of pipeline {pipeline} is given twice",
    ),
    "bad_stuck_override": (
        "{what}: ожидается ВОРОНКА=ДНИ (например 1=30), получено {text!r}",
        "{what}: expected PIPELINE=DAYS (e.g. 1=30), got {text!r}",
    ),
    "unknown_stage": ("нет стадии сделки {stage!r}", "unknown deal stage {stage!r}"),
    "stage_outside_pipelines": (
        "стадия {stage!r} не из выбранных воронок",
        "deal stage {stage!r} is not in the chosen pipelines",
    ),
    "unknown_status": ("нет статуса лида {status!r}", "unknown lead status {status!r}"),
    "unknown_department": ("нет отдела {department}", "unknown department {department}"),
    "unknown_user": (
        "нет пользователя {user} на портале {portal}",
        "no user {user} on portal {portal}",
    ),
    "unknown_portal": ("в хранилище нет портала {portal!r}", "no portal {portal!r} in the store"),
    "no_portal": (
        "в хранилище ещё нет портала: сначала выполните `rop sync`",
        "the store holds no portal yet: run `rop sync` first",
    ),
    "several_portals": (
        "в хранилище несколько порталов ({portals}): выберите один",
        "the store holds several portals ({portals}): choose one",
    ),
    "unknown_period": (
        "нет периода {period!r}; есть: {choices}",
        "unknown period {period!r}; choose one of: {choices}",
    ),
    "unknown_compare_mode": (
        "нет сравнения {mode!r}; есть: {choices}",
        "unknown comparison {mode!r}; choose one of: {choices}",
    ),
    "unknown_timezone": ("неизвестный часовой пояс {zone!r}", "unknown time zone {zone!r}"),
    "bad_date": (
        "неверная дата в {what}: {text!r} (нужно ГГГГ-ММ-ДД)",
        "bad date for {what}: {text!r} (expected YYYY-MM-DD)",
    ),
    "preset_and_dates": (
        "укажите либо готовый период, либо --from/--to, но не то и другое",
        "give either a preset period or --from/--to, not both",
    ),
    "half_period": ("укажите и --from, и --to", "give both --from and --to"),
    "day_out_of_range": (
        "{field}: дата {day} вне допустимых ({first} — {last})",
        "{field}: the day {day} is outside the days a report covers ({first} to {last})",
    ),
    "period_too_long": (
        "{field}: период {date_from} — {date_to} длиннее {days} дней",
        "{field}: the period {date_from} to {date_to} is longer than {days} days",
    ),
    "number_too_small": (
        "{field}: {value} — должно быть не меньше {minimum}",
        "{field}: {value} must be {minimum} or more",
    ),
    "number_too_large": (
        "{field}: {value} — слишком большое число (не больше {maximum})",
        "{field}: {value} is too large (at most {maximum})",
    ),
    "bad_sort": (
        "нельзя сортировать по {sort!r}; колонки: {choices}",
        "cannot sort by {sort!r}; columns: {choices}",
    ),
    "bad_row_key": ("неверный ключ строки {key!r}", "bad row key {key!r}"),
    "empty_row_key": (
        "пустой ключ строки: строку «—» (без отдела, источника, воронки) выбирает --none-row",
        'an empty row key: the "—" row (no department, source, pipeline) is --none-row',
    ),
    "several_rows": (
        "выберите одну строку: менеджера, отдел, ключ строки или строку «—»",
        'choose one row: a manager, a department, a row key or the "—" row',
    ),
    "bad_plan_period": (
        "неверный период плана {text!r} (нужно ГГГГ-ММ или ГГГГ-Q1..Q4)",
        "bad plan period {text!r} (expected YYYY-MM or YYYY-Q1..Q4)",
    ),
    "unplannable_figure": (
        "на показатель {figure!r} нельзя поставить план; можно: {choices}",
        "figure {figure!r} cannot be planned; choose from {choices}",
    ),
    "bad_plan_value": (
        "неверное значение плана {text!r} (нужно число не меньше 0)",
        "bad plan value {text!r} (expected a number, 0 or more)",
    ),
    "bad_plan_subject": (
        "план ставится менеджеру или отделу, не {subject!r}",
        "a plan is for a manager or a department, not {subject!r}",
    ),
    "bad_plan_file": ("файл планов: {problem}", "plans file: {problem}"),
}


class ReportInputError(ValueError):
    """Bad input to the report; the message names the problem.

    ``ReportInputError("unknown_pipeline", pipeline=7)``: a code of
    ``MESSAGES`` with its params. Text that is not a known code is kept as it
    is, in both languages (for callers outside the catalogue).
    """

    def __init__(self, code: str, **params: Any) -> None:
        known = code in MESSAGES
        self.code = code if known else "other"
        self.params = params
        self._text = None if known else code
        super().__init__(self.message("en"))

    def message(self, lang: str = "en") -> str:
        """The error in ``lang`` ("ru" or "en"; anything else is English)."""
        if self._text is not None:
            return self._text
        ru, en = MESSAGES[self.code]
        return (ru if lang == "ru" else en).format(**self.params)


class AccessDenied(PermissionError):
    """A user or department outside the viewer's scope (a filter choice or a drill-down)."""

    def __init__(self, user_id: int | None = None, *, department: int | None = None) -> None:
        self.code = "outside_scope"
        self.params: dict[str, Any] = (
            {"department": department} if department is not None else {"user": user_id}
        )
        super().__init__(self.message("en"))

    def message(self, lang: str = "en") -> str:
        if "department" in self.params:
            department = self.params["department"]
            if lang == "ru":
                return f"отдел {department} вне вашей области видимости"
            return f"department {department} is outside the viewer's scope"
        user = self.params["user"]
        if lang == "ru":
            return f"пользователь {user} вне вашей области видимости"
        return f"user {user} is outside the viewer's scope"


class ColumnChoice(Protocol):
    """What the catalogue reads from a report filter (rop.report.filter.ReportFilter)."""

    @property
    def sections(self) -> tuple[str, ...]: ...
    @property
    def key_stages(self) -> tuple[str, ...]: ...
    @property
    def key_statuses(self) -> tuple[str, ...]: ...
