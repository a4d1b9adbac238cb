"""One clear answer for a refused Bitrix24 request: the status and a sentence."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse, JSONResponse, Response

REASONS: dict[str, tuple[str, str]] = {
    "not_frame": (
        "Это не запрос Битрикс24: нет DOMAIN, member_id, AUTH_ID или SERVER_ENDPOINT.",
        "Not a Bitrix24 request: DOMAIN, member_id, AUTH_ID or SERVER_ENDPOINT is missing.",
    ),
    "untrusted_auth_server": (
        "Сервер авторизации из запроса не входит в ROP_APP_AUTH_SERVERS.",
        "The request's authorization server is not one of ROP_APP_AUTH_SERVERS.",
    ),
    "expired": (
        "Ключ доступа истёк: откройте приложение в Битрикс24 заново.",
        "The access token has expired: open the application in Bitrix24 again.",
    ),
    "auth_refused": (
        "Битрикс24 не подтвердил ключ доступа.",
        "Bitrix24 did not confirm the access token.",
    ),
    "auth_server_down": (
        "Сервер авторизации Битрикс24 не отвечает; попробуйте позже.",
        "Bitrix24's authorization server does not answer; try again later.",
    ),
    "wrong_app": (
        "Ключ доступа выдан другому приложению.",
        "The access token belongs to another application.",
    ),
    "wrong_portal": (
        "Ключ доступа выдан другому порталу (member_id или DOMAIN не совпадают).",
        "The access token belongs to another portal (member_id or DOMAIN differ).",
    ),
    "not_installed": (
        "Приложение не установлено на этом портале.",
        "The application is not installed on this portal.",
    ),
    "wrong_token": (
        "application_token не совпадает с выданным порталом при установке.",
        "The application_token differs from the one the portal gave at install.",
    ),
    "not_admin": (
        "Установить приложение может только администратор портала.",
        "Only a portal administrator can install the application.",
    ),
    "bad_event": (
        "Событие без имени, member_id или ts.",
        "An event without a name, member_id or ts.",
    ),
    "stale_event": (
        "Событие слишком старое (ts вне окна в 10 минут).",
        "The event is too old (ts outside the 10-minute window).",
    ),
    "replayed_event": (
        "Это событие уже было получено.",
        "This event was already received.",
    ),
    "rights_failed": (
        "Не удалось узнать у Битрикс24 ваши права в CRM; попробуйте открыть отчёт ещё раз.",
        "Bitrix24 did not tell us your CRM rights; try opening the report again.",
    ),
    "bind_failed": (
        "Битрикс24 не дал встроить приложение: {detail}",
        "Bitrix24 refused to bind the application: {detail}",
    ),
}


def text(reason: str, lang: str = "ru", **values: str) -> str:
    ru, en = REASONS[reason]
    return (en if lang == "en" else ru).format(**values)


def refuse(
    status: int, reason: str, lang: str = "ru", json: bool = False, **values: str
) -> Response:
    message = text(reason, lang, **values)
    if json:
        return JSONResponse({"error": reason, "message": message}, status_code=status)
    page = (
        f'<!doctype html><html lang="{lang}"><meta charset="utf-8"><title>{status}</title>'
        f'<body style="font:14px sans-serif;margin:2em"><p>{html.escape(message)}</p></body></html>'
    )
    return HTMLResponse(page, status_code=status)
