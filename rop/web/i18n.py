"""The page's own words in Russian (the default) and English.

Figure labels and descriptions come from the metric catalogue via the report's
``columns``; this module holds only the interface text.
"""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("ru", "en")

_TEXT: dict[str, tuple[str, str]] = {
    # key: (ru, en)
    "title": ("Отчёт РОПа", "Sales head report"),
    "period": ("Период", "Period"),
    "from": ("с", "from"),
    "to": ("по", "to"),
    "custom": ("Свои даты", "Custom dates"),
    "date_placeholder": ("ДД.ММ.ГГГГ", "YYYY-MM-DD"),
    "date_invalid": (
        "Такой даты нет в календаре; нужен формат ДД.ММ.ГГГГ",
        "No such date in the calendar; use YYYY-MM-DD",
    ),
    "pick_date": ("Выбрать дату в календаре", "Pick a date in the calendar"),
    "pipelines": ("Воронки", "Pipelines"),
    "all_pipelines": ("Все воронки", "All pipelines"),
    "key_stages": ("Ключевые стадии", "Key stages"),
    "key_statuses": ("Ключевые статусы лидов", "Key lead statuses"),
    "departments": ("Отделы", "Departments"),
    "managers": ("Менеджеры", "Managers"),
    "everyone": ("Все", "Everyone"),
    "none_chosen": ("нет", "none"),
    "all_sections": ("все", "all"),
    "sections": ("Разделы", "Sections"),
    "section_deals": ("Сделки", "Deals"),
    "section_leads": ("Лиды", "Leads"),
    "section_companies": ("Компании", "Companies"),
    "section_contacts": ("Контакты", "Contacts"),
    "section_calls": ("Звонки", "Calls"),
    "calls_duration": ("Длительность звонка, с", "Call duration, s"),
    "calls_duration_hint": (
        "минимум больше 0 убирает и пропущенные звонки",
        "a minimum above 0 also leaves out missed calls",
    ),
    "min": ("от", "min"),
    "max": ("до", "max"),
    "rows_by": ("Строки", "Rows by"),
    "stuck_days": ("Зависла, дней", "Stuck after, days"),
    "stuck_days_by": ("Порог по воронкам", "Per pipeline"),
    "stages_open": ("Показать раздел", "Show the section"),
    "stages": ("Движение по стадиям", "Stage movement"),
    "stage_matrix": ("Матрица движения: было → стало", "Movement matrix: from → to"),
    "stage_time": ("Время в стадии, дней", "Time in stage, days"),
    "stage_funnel": ("Воронка по стадиям", "Stage funnel"),
    "stage_stuck": ("Зависшие сделки", "Stuck records"),
    "stage_from": ("Было (начало периода)", "From (period start)"),
    "stage_to": ("Стало (конец периода)", "To (period end)"),
    "stage_done": ("Ушли из стадии", "Left the stage"),
    "stage_open": ("Сейчас в стадии", "In the stage now"),
    "mean": ("Среднее", "Mean"),
    "median": ("Медиана", "Median"),
    "bottleneck": ("Узкое место", "Bottleneck"),
    "reached": ("Дошли", "Reached"),
    "went_on": ("Пошли дальше", "Went on"),
    "lead_statuses": ("Лиды по статусам", "Leads by status"),
    "stage_matrix_tip": (
        "Строки — стадия в начале периода (или «Новые в периоде»), столбцы — в конце "
        "периода (или сейчас). В матрице сделки в работе на начало периода, новые и те, что "
        "двигались в периоде. Смена воронки: «В другую воронку» / «Из другой воронки».",
        "Rows: the stage at the period's start (or new in the period); columns: at its end "
        "(or now). Records in progress at the start, new ones and those that moved in the "
        "period. A pipeline change: to/from another pipeline.",
    ),
    "stage_time_tip": (
        "Среднее и медиана дней в стадии по визитам, закончившимся в периоде; кто сейчас в "
        "стадии — отдельно, время до сейчас. Узкое место — стадия с наибольшим средним. "
        "«Дошли»: созданные в периоде, дошедшие хотя бы до этой стадии (пропуск стадии "
        "считается проходом; вернувшиеся назад — один раз, по дальней стадии).",
        "Mean and median days in the stage over the visits that ended in the period; those "
        "in the stage now apart, up to now. Bottleneck: the longest mean. Reached: created in "
        "the period, reached at least this stage (a skipped stage counts as passed; a record "
        "that went back counts once, at its furthest stage).",
    ),
    "stage_stuck_tip": (
        "В работе сейчас, без движения по стадиям дольше N дней (поле фильтра).",
        "In progress now, no stage movement for more than N days (a filter field).",
    ),
    "by_manager": ("по менеджерам", "manager"),
    "by_department": ("по отделам", "department"),
    "by_source": ("по источникам", "source"),
    "by_pipeline": ("по воронкам", "pipeline"),
    "compare": ("Сравнить с прошлым периодом", "Compare with previous period"),
    "previous_mode": ("Незавершённый период сравнивать", "A period not yet over compares with"),
    "previous_to_date": ("с теми же днями прошлого", "the same days of the previous one"),
    "previous_full": ("со всем прошлым периодом", "the whole previous period"),
    "compared_same_days": (
        "те же дни: {current} против {previous}",
        "the same days: {current} against {previous}",
    ),
    "compared_full_partial": (
        "весь прошлый период, хотя этот ещё идёт ({current})",
        "the whole previous period, though this one is not over ({current})",
    ),
    "compare_switch_full": ("сравнить со всем прошлым периодом", "compare with the whole period"),
    "compare_switch_to_date": ("сравнить те же дни", "compare the same days"),
    "apply": ("Показать", "Apply"),
    "more_choices": ("Ещё", "More"),
    "page_jump": ("Страница", "Page"),
    "listen": ("Запись", "Recording"),
    "reset": ("Сбросить", "Reset"),
    "data_as_of": ("Данные на", "Data as of"),
    "time_zone": ("Часовой пояс портала", "The portal's time zone"),
    "never_synced": ("данные ещё не загружены", "no data loaded yet"),
    "sync": ("Обновить данные", "Sync now"),
    "sync_full": ("Полная загрузка", "Full reload"),
    "sync_running": ("Загрузка…", "Syncing…"),
    "sync_done": ("Готово", "Done"),
    "sync_failed": ("Ошибка загрузки", "Sync failed"),
    "sync_full_admins": (
        "Полную копию портала запускает администратор отчёта: она тратит лимит запросов "
        "портала на часы. Обычная синхронизация доступна всем.",
        "A full copy of the portal is started by a report administrator: it spends the "
        "portal's request budget for hours. The ordinary sync is open to everyone.",
    ),
    "sync_unavailable": (
        "Синхронизация недоступна: не задан вебхук (--webhook или ROP_WEBHOOK)",
        "Sync unavailable: no webhook set (--webhook or ROP_WEBHOOK)",
    ),
    # Server mode (rop.web.queued_sync): the button queues a job for `rop worker`.
    "sync_queued": ("В очереди на загрузку…", "Waiting for a sync worker…"),
    "sync_queue_no_key": (
        "Портал загружают обработчики (`rop worker`), а вебхука этого портала у них нет: "
        "задайте ROP_APP_SECRET_KEY (ключ обработчиков) веб-серверу или один раз "
        "выполните `rop sync --queue --webhook URL`",
        "The workers (`rop worker`) sync this portal and have not got its webhook: set "
        "ROP_APP_SECRET_KEY (the workers' key) on the web server, or run "
        "`rop sync --queue --webhook URL` once",
    ),
    "sync_queue_missing": (
        "В хранилище нет очереди заданий: выполните `rop migrate --db URL --app-role ROLE` "
        "от имени владельца таблиц и запустите `rop worker`",
        "The store has no job queue: run `rop migrate --db URL --app-role ROLE` as the "
        "tables' owner, and start `rop worker`",
    ),
    "sync_queue_no_procrastinate": (
        "Серверный режим загружает через `rop worker`: pip install 'rop-report[server]'",
        "Server mode syncs through `rop worker`: pip install 'rop-report[server]'",
    ),
    "link_outside_rights": (
        "Ссылка называла менеджера или отдел, которых вам не видно: показан отчёт в "
        "пределах ваших прав за тот же период.",
        "The link named a manager or department outside your access: this is the report "
        "you may see, for the same period.",
    ),
    "export": ("Экспорт", "Export"),
    "export_report": ("Скачать весь отчёт:", "Download the whole report:"),
    "export_list": ("Скачать этот список:", "Download this list:"),
    "manager": ("Менеджер", "Manager"),
    "department": ("Отдел", "Department"),
    "source": ("Источник", "Source"),
    "pipeline": ("Воронка", "Pipeline"),
    "subtotal": ("Итого по отделу", "Department total"),
    "total": ("Итого", "Total"),
    "dismissed": ("уволен", "dismissed"),
    "user": ("Пользователь", "User"),
    "no_department": ("Без отдела", "No department"),
    "no_source": ("Без источника", "No source"),
    "no_pipeline": ("Без воронки", "No pipeline"),
    "unknown_user": ("неизвестный пользователь", "unknown user"),
    "previous": ("Прошлый период", "Previous period"),
    "no_rows": ("Нет данных за выбранный период", "No data for the chosen period"),
    "close": ("Закрыть", "Close"),
    "pages": ("Страницы списка", "List pages"),
    "search": ("Найти", "Search"),
    "skip_to_table": ("К таблице", "Skip to the table"),
    "jump_to": ("Перейти к разделу", "Jump to"),
    "open_profile": ("Открыть профиль в Битрикс24", "Open the profile in Bitrix24"),
    "open_manager": ("Все показатели менеджера", "All of the manager's figures"),
    "manager_page": ("Менеджер", "Manager"),
    "back_to_report": ("← К отчёту", "← Back to the report"),
    "print": ("Печать", "Print"),
    "figure": ("Показатель", "Figure"),
    "value": ("Значение", "Value"),
    "previous_value": ("Прошлый период", "Previous period"),
    "change": ("Изменение", "Change"),
    "department_average": ("Среднее по отделу", "Department average"),
    "department_average_tip": (
        "Количества и суммы — итог отдела, делённый на число его менеджеров в отчёте ({n}); "
        "доли и средние — показатель отдела целиком. Ссылка открывает записи отдела.",
        "Counts and sums: the department's total divided by its managers in the report "
        "({n}); shares and means: the department's own figure. The link lists the "
        "department's records.",
    ),
    "weeks_trend": ("Последние 12 недель", "The last 12 weeks"),
    "week_of": ("Неделя", "Week"),
    "calls": ("Звонки", "Calls"),
    "no_deals": ("Нет сделок, созданных в периоде.", "No deals created in the period."),
    "stuck_deals": ("Зависшие сделки", "Stuck deals"),
    "stuck_none": ("Зависших сделок нет.", "No stuck deals."),
    "stuck_more": ("все {n}", "all {n}"),
    "days_short": ("дн.", "d"),
    "data_quality": ("Качество данных", "Data quality"),
    "now_figure": (
        "Показатель о текущем моменте: у прошлого периода тот же",
        "A figure about now: the previous period has the same",
    ),
    "manager_of": ("Отдел", "Department"),
    "compared_with_short": ("Сравнение с", "Compared with"),
    "comparison": ("Сравнение", "Comparison"),
    "no_activity": (
        "За этот период в CRM нет ни новых, ни закрытых записей. Выберите другой период.",
        "Nothing was created or closed in the CRM in this period. Choose another period.",
    ),
    "no_sections": (
        "Не выбран ни один раздел: отметьте сделки, лиды, компании, контакты или звонки в фильтре «Разделы».",
        "No section chosen: tick deals, leads, companies, contacts or calls under “Sections”.",
    ),
    "no_chart_data": ("Нет данных за период", "No data for the period"),
    "records": ("записей", "records"),
    "no_records": ("Записей нет", "No records"),
    "open_card": ("Открыть карточку", "Open card"),
    "page_prev": ("← Назад", "← Previous"),
    "page_next": ("Далее →", "Next →"),
    "shown": ("Показаны", "Showing"),
    "of": ("из", "of"),
    "charts": ("Графики", "Charts"),
    "funnel": ("Воронка", "Funnel"),
    "funnel_about": (
        "Сделки, созданные в периоде: сколько дошло до каждой стадии (по истории стадий; "
        "успешные прошли все, проигранные — до стадии, где остановились)",
        "Deals created in the period: how many reached each stage (by stage history; won "
        "deals passed them all, lost ones count up to where they stopped)",
    ),
    "charts_hint": (
        "Нажмите на столбец или точку, чтобы увидеть записи",
        "Click a bar or a point to list its records",
    ),
    "won_by_manager": ("Сумма успешных и доля выигранных", "Won amount and win rate"),
    "trend": ("Новые, успешные и неуспешные сделки", "New, won and lost deals"),
    "new": ("Новые", "New"),
    "per_day": ("по дням", "per day"),
    "per_week": ("по неделям (с понедельника)", "per week (from Monday)"),
    "won": ("Успешные", "Won"),
    "lost": ("Неуспешные", "Lost"),
    "won_amount": ("Сумма успешных", "Won amount"),
    "win_rate": ("Доля выигранных", "Win rate"),
    "conversion": ("Конверсия", "Conversion"),
    "viewer": ("Смотрит", "Viewer"),
    "head_of": ("руководитель", "head of"),
    "error": ("Ошибка", "Error"),
    "bad_request": ("Неверный фильтр", "Bad filter"),
    "forbidden": ("Нет доступа", "Access denied"),
    "not_found": ("Не найдено", "Not found"),
    "server_error": ("Внутренняя ошибка", "Internal error"),
    "unavailable": ("Сервер занят", "Server busy"),
    "overloaded": (
        "Отчёту не хватило памяти, отведённой хранилищу (ROP_DB_MEMORY_LIMIT): "
        "сейчас строится слишком много отчётов сразу.",
        "The report ran out of the memory allotted to the store (ROP_DB_MEMORY_LIMIT): "
        "too many reports are being built at once.",
    ),
    "try_later": (
        "Повторите через несколько секунд или выберите период короче; "
        "администратор может увеличить ROP_DB_MEMORY_LIMIT.",
        "Try again in a few seconds or choose a shorter period; "
        "the administrator can raise ROP_DB_MEMORY_LIMIT.",
    ),
    "what_to_do": ("Что сделать", "What to do"),
    "fix_filter": (
        "Исправьте значение в фильтре или начните заново.",
        "Correct the value in the filter or start over.",
    ),
    "ask_admin": (
        "Выберите сотрудников из своей области видимости или обратитесь к администратору отчёта.",
        "Choose people within your scope or ask the report's administrator.",
    ),
    "go_home": ("Вернуться к отчёту", "Back to the report"),
    "bad_date": (
        "Даты «{value}» в поле {field} нет в календаре; нужен формат ДД.ММ.ГГГГ.",
        "The date “{value}” in {field} does not exist; use YYYY-MM-DD.",
    ),
    "xlsx_too_long": (
        "В списке {count} записей, больше {maximum}: так много строк Excel-файлом не выгружается. "
        "Выгрузите CSV (он открывается в Excel) или сузьте фильтр.",
        "The list has {count} records, more than {maximum}: too many for an XLSX download. "
        "Download the CSV (Excel opens it) or narrow the filter.",
    ),
    "bad_number": (
        "«{value}» в поле {field} — не целое число.",
        "“{value}” in {field} is not a whole number.",
    ),
    "number_too_small": (
        "«{value}» в поле {field}: должно быть не меньше {minimum}.",
        "“{value}” in {field} must be {minimum} or more.",
    ),
    "number_too_large": (
        "«{value}» в поле {field}: слишком большое число (не больше {maximum}).",
        "“{value}” in {field} is too large (at most {maximum}).",
    ),
    "day_out_of_range": (
        "Дата {day} в поле {field} вне допустимых: с {first} по {last}.",
        "The day {day} in {field} is outside the days a report covers: {first} to {last}.",
    ),
    "period_too_long": (
        "Период {date_from} — {date_to} ({field}) длиннее {days} дней.",
        "The period {date_from} to {date_to} ({field}) is longer than {days} days.",
    ),
    "sync_other_portal": (
        "этот сервер загружает портал {served}, а не {asked}: чтобы загрузить {asked}, "
        "остановите `rop serve` или укажите другое хранилище (--db)",
        "this server syncs portal {served}, not {asked}: to sync {asked}, stop "
        "`rop serve` or give another store (--db)",
    ),
    "bad_choice": (
        "«{value}» в поле {field} — допустимо: {choices}.",
        "“{value}” in {field} is not allowed; choose one of: {choices}.",
    ),
    "unknown_pipeline": (
        "Воронки с номером {value} нет на портале; есть: {choices}.",
        "There is no pipeline {value} on the portal; choose from {choices}.",
    ),
    "unknown_stage": (
        "Стадии сделки «{value}» нет на портале.",
        "There is no deal stage “{value}” on the portal.",
    ),
    "unknown_status": (
        "Статуса лида «{value}» нет на портале.",
        "There is no lead status “{value}” on the portal.",
    ),
    "unknown_department": (
        "Отдела с номером {value} нет на портале.",
        "There is no department {value} on the portal.",
    ),
    "unknown_figure": ("Показателя «{value}» нет в отчёте.", "There is no figure “{value}”."),
    "missing": ("Не задано поле {field}.", "The field {field} is missing."),
    "no_portal": (
        "Хранилище пусто: сначала загрузите портал (rop sync или rop demo).",
        "The store is empty: load a portal first (rop sync or rop demo).",
    ),
    "lang_switch": ("English", "Русский"),
    "filter_sentence": ("Фильтр", "Filter"),
    "compared_with": ("▲▼ — сравнение с периодом", "▲▼ compare with"),
    "tooltip_prev": ("Прошлый период: {value}", "Previous period: {value}"),
}

_PRESET_LABELS: dict[str, tuple[str, str]] = {
    "today": ("Сегодня", "Today"),
    "yesterday": ("Вчера", "Yesterday"),
    "this_week": ("Эта неделя", "This week"),
    "last_week": ("Прошлая неделя", "Last week"),
    "this_month": ("Этот месяц", "This month"),
    "last_month": ("Прошлый месяц", "Last month"),
    "this_quarter": ("Этот квартал", "This quarter"),
    "last_quarter": ("Прошлый квартал", "Last quarter"),
    "this_year": ("Этот год", "This year"),
    "last_7_days": ("Последние 7 дней", "Last 7 days"),
    "last_30_days": ("Последние 30 дней", "Last 30 days"),
}


# URL parameters as the filter bar labels them, for error messages: the label
# is what the reader sees on the page, the parameter what they see in the URL.
_FIELDS: dict[str, tuple[str, str]] = {
    "from": ("Период: с", "Period: from"),
    "to": ("Период: по", "Period: to"),
    "period": ("Период", "Period"),
    "pipeline": ("Воронки", "Pipelines"),
    "key_stage": ("Ключевые стадии", "Key stages"),
    "key_status": ("Ключевые статусы лидов", "Key lead statuses"),
    "section": ("Разделы", "Sections"),
    "department": ("Отделы", "Departments"),
    "manager": ("Менеджеры", "Managers"),
    "min_call": ("Длительность звонка: от", "Call duration: min"),
    "max_call": ("Длительность звонка: до", "Call duration: max"),
    "by": ("Строки", "Rows by"),
    "compare": ("Сравнить с прошлым периодом", "Compare with previous period"),
    "previous": ("Незавершённый период сравнивать", "A period not yet over compares with"),
    "lang": ("Язык", "Language"),
}


def field(name: str, lang: str) -> str:
    """A parameter named for a message: «Период: с» (from), or «user» when it has no label."""
    pair = _FIELDS.get(name)
    if pair is None:
        return f"«{name}»" if lang == "ru" else f"“{name}”"
    label = pair[1] if lang == "en" else pair[0]
    return f"«{label}» ({name})" if lang == "ru" else f"“{label}” ({name})"


def text(key: str, lang: str, **args: object) -> str:
    """The interface text ``key`` in ``lang``; unknown keys show as themselves.

    A ``field`` argument (a URL parameter name) is shown with its label.
    """
    pair = _TEXT.get(key)
    if pair is None:
        return key
    template = pair[1] if lang == "en" else pair[0]
    if "field" in args:
        args = {**args, "field": field(str(args["field"]), lang)}
    return template.format(**args) if args else template


def preset_label(key: str, lang: str) -> str:
    pair = _PRESET_LABELS.get(key)
    if pair is None:
        return key.replace("_", " ")
    return pair[1] if lang == "en" else pair[0]


def translator(lang: str) -> Callable[..., str]:
    """``t("key", **args)`` bound to one language, for templates."""

    def t(key: str, **args: object) -> str:
        return text(key, lang, **args)

    return t


def records_after_of(n: int, lang: str) -> str:
    """The word after "из N" / "of N": из 21 записи, из 5 записей; of 1 record."""
    if lang == "en":
        return "record" if n == 1 else "records"
    return "записи" if n % 10 == 1 and n % 100 != 11 else "записей"


# What the sync copies, as the sync button's progress names it.
ENTITIES: dict[str, tuple[str, str]] = {
    "deals": ("сделки", "deals"),
    "leads": ("лиды", "leads"),
    "companies": ("компании", "companies"),
    "contacts": ("контакты", "contacts"),
    "deal_history": ("история стадий сделок", "deal stage history"),
    "lead_history": ("история статусов лидов", "lead status history"),
    "calls": ("звонки", "calls"),
    "activities": ("дела", "activities"),
    "requisites": ("реквизиты", "requisites"),
    "users": ("сотрудники", "users"),
    "departments": ("отделы", "departments"),
    "pipelines": ("воронки", "pipelines"),
    "statuses": ("стадии и статусы", "stages and statuses"),
    "currencies": ("валюты", "currencies"),
}


def entity_names(lang: str) -> dict[str, str]:
    return {k: (en if lang == "en" else ru) for k, (ru, en) in ENTITIES.items()}
