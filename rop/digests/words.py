"""The digest's own words, Russian and English side by side."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "title": ("Отчёт РОПа", "ROP Report"),
    "daily": ("за день", "daily"),
    "weekly": ("за неделю", "weekly"),
    "monthly": ("за месяц", "monthly"),
    "for": ("для", "for"),
    "period": ("Период", "Period"),
    "previous": ("сравнение с", "compared with"),
    "key": ("Главное", "Key figures"),
    "attention": ("Требует внимания", "Needs attention"),
    "overdue_list": ("Просроченные сделки", "Overdue deals"),
    "managers": ("Менеджеры", "Managers"),
    "manager": ("Менеджер", "Manager"),
    "rank": ("Место по сумме успешных", "Place by won amount"),
    "of": ("из", "of"),
    "open": ("Открыть отчёт", "Open the report"),
    "more": ("и ещё", "and"),
    "more_tail": ("— в отчёте", "more in the report"),
    "nothing": ("Ничего не требует внимания.", "Nothing needs attention."),
    "xlsx": ("Отчёт целиком — во вложении (XLSX).", "The whole report is attached (XLSX)."),
    "footer": (
        "Вы получаете это письмо, потому что подписаны на отчёт РОПа. "
        "Изменить подписку можно в настройках отчёта.",
        "You get this because you subscribed to the ROP Report. "
        "Change the subscription in the report's settings.",
    ),
    "change": ("изм.", "change"),
}


def word(key: str, lang: str) -> str:
    ru, en = WORDS[key]
    return ru if lang == "ru" else en
