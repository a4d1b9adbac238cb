"""The gate in front of the report in application mode.

Every report URL (page, htmx fragment, drill-down, export, sync API) must
carry a valid viewer token (``vt`` in the query, or the ``X-Rop-Viewer``
header); it names the portal and the user, and the request sees only that
portal. Without one, the request is refused (401), unless the server also
has a webhook: then it is the webhook's portal, exactly as without app mode.
Bitrix24's own entry points (``/app``, ``/app/install``, ``/app/events``)
check their callers themselves; static files are public.
"""

from __future__ import annotations

import html
import json
from typing import Any

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rop.bitrix.installs import Install
from rop.web.appmode.state import AppMode, AppViewer
from rop.web.appmode.viewer_token import HEADER, PARAM, ViewerTokenError
from rop.web.urls import VIEWER_ADMIN, VIEWER_TOKEN

OPEN_PATHS = ("/app", "/app/install", "/app/events")

MESSAGES = {
    "missing": (
        "Откройте отчёт из Битрикс24: эта страница показывается только внутри портала.",
        "Open the report from Bitrix24: this page is shown only inside the portal.",
    ),
    "expired": (
        "Сеанс отчёта истёк: откройте приложение в Битрикс24 заново.",
        "The report's session has expired: open the application in Bitrix24 again.",
    ),
    "invalid": (
        "Ссылка повреждена или подделана: откройте приложение в Битрикс24 заново.",
        "The link is damaged or forged: open the application in Bitrix24 again.",
    ),
    "not_installed": (
        "Приложение не установлено на этом портале.",
        "The application is not installed on this portal.",
    ),
}


def _wants_json(scope: Scope) -> bool:
    path = scope["path"]
    return path.endswith(".json") or path.startswith("/api/")


async def deny(scope: Scope, send: Send, status: int, reason: str, lang: str = "ru") -> None:
    ru, en = MESSAGES[reason]
    text = en if lang == "en" else ru
    if _wants_json(scope):
        body = json.dumps({"error": reason, "message": text}, ensure_ascii=False).encode()
        kind = b"application/json"
    else:
        body = (
            f'<!doctype html><html lang="{lang}"><meta charset="utf-8">'
            f'<title>{status}</title><body style="font:14px sans-serif;margin:2em">'
            f"<p>{html.escape(text)}</p></body></html>"
        ).encode()
        kind = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _has_data(cursor: Any, install: Install) -> bool:
    return bool(cursor.scalar("SELECT count(*) FROM portals WHERE portal = ?", [install.portal]))


class ViewerGate:
    def __init__(self, app: ASGIApp, mode: AppMode, webhook_portal: str | None = None) -> None:
        self.app = app
        self.mode = mode
        self.webhook_portal = webhook_portal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in OPEN_PATHS or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        lang = "en" if query.get("lang") == "en" else "ru"
        token = query.get(PARAM)
        if not token:
            for name, value in scope.get("headers", []):
                if name.decode("latin-1").lower() == HEADER:
                    token = value.decode("latin-1")
        if not token:
            if self.webhook_portal is None:
                await deny(scope, send, 401, "missing", lang)
                return
            scope["rop.portal"] = self.webhook_portal
            await self.app(scope, receive, send)
            return
        try:
            claim = self.mode.viewers.read(token)
        except ViewerTokenError as problem:
            await deny(scope, send, 401, problem.reason, lang)
            return
        cursor = scope["app"].state.pool.get()
        install = self.mode.installs(cursor).get(claim.member_id)
        if install is None or not install.active:
            await deny(scope, send, 403, "not_installed", lang)
            return
        scope["rop.viewer"] = AppViewer(claim.member_id, install.portal, claim.user_id, claim.admin)
        if path != "/app/status" and not path.startswith("/api/") and _has_data(cursor, install):
            # What this viewer may read, from Bitrix24 with their own token
            # (worked out once, then refreshed in the background).
            import anyio.to_thread

            ready = await anyio.to_thread.run_sync(
                self.mode.ensure_grant, install.portal, claim.user_id
            )
            if not ready:
                await deny(scope, send, 401, "expired", lang)
                return

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The token rides in URLs: never let it leave in a Referer.
                headers = list(message.get("headers", []))
                headers.append((b"referrer-policy", b"same-origin"))
                message = {**message, "headers": headers}
            await send(message)

        reset = VIEWER_TOKEN.set(token)
        reset_admin = VIEWER_ADMIN.set(claim.admin)
        try:
            await self.app(scope, receive, send_private)
        finally:
            VIEWER_ADMIN.reset(reset_admin)
            VIEWER_TOKEN.reset(reset)
