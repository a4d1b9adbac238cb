"""One error handler: every failure becomes a page (or JSON) saying what was
wrong and what to do, with the right status; bad input is 400, never 500."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rop.web import i18n

log = logging.getLogger("rop.web")


class WebError(Exception):
    """An error with a status, a message for the user and a hint what to do."""

    def __init__(self, status: int, message: str, hint_key: str = "fix_filter") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint_key = hint_key


class BadInput(WebError):
    """A filter or URL value that cannot be used (HTTP 400).

    ``field`` (the URL parameter) and ``value`` (the bad one of its values)
    let the report page keep the rest of the filter and show the message.
    """

    def __init__(self, message: str, field: str | None = None, value: object = None) -> None:
        super().__init__(400, message, "fix_filter")
        self.field = field
        self.value = value


def _title_key(status: int) -> str:
    titles = {400: "bad_request", 403: "forbidden", 404: "not_found", 503: "unavailable"}
    return titles.get(status, "server_error")


def wants_json(request: Request) -> bool:
    path = request.url.path
    if path.endswith(".json") or path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang")
    if lang in i18n.LANGS:
        return lang
    settings = getattr(request.app.state, "settings", None)
    return getattr(settings, "language", "ru") or "ru"


def _in_lang(exc: BaseException, lang: str) -> str:
    """The report's own errors speak both languages (``message(lang)``)."""
    message = getattr(exc, "message", None)
    if callable(message):
        return str(message(lang))
    return str(exc)


def classify(exc: BaseException, lang: str = "ru") -> tuple[int, str, str]:
    """Map any exception to (status, message in ``lang``, hint key)."""
    from rop.report.filter import AccessDenied, ReportInputError
    from rop.store.db import StoreOverloaded

    if isinstance(exc, WebError):
        return exc.status, exc.message, exc.hint_key
    if isinstance(exc, AccessDenied):
        return 403, _in_lang(exc, lang), "ask_admin"
    if isinstance(exc, ReportInputError):
        return 400, _in_lang(exc, lang), "fix_filter"
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail), "go_home"
    if isinstance(exc, StoreOverloaded):
        # Too many builds at once for ROP_DB_MEMORY_LIMIT: the request is fine
        # and succeeds later, so it is the server's 503, not the user's 400.
        log.warning("%s", exc)
        return 503, i18n.text("overloaded", lang), "try_later"
    log.exception("unexpected error", exc_info=exc)
    return 500, f"{type(exc).__name__}: {exc}", "go_home"


def describe(status: int, message: str, hint_key: str, lang: str) -> dict[str, Any]:
    """The error as pages and the JSON twin show it."""
    return {
        "status": status,
        "title": i18n.text(_title_key(status), lang),
        # The engine's messages start in lower case (they also end CLI lines).
        "message": message[:1].upper() + message[1:],
        "what_to_do": i18n.text(hint_key, lang),
    }


RETRY_SECONDS = "10"  # a crowd of builds over the memory limit drains in seconds


async def handle(request: Request, exc: Exception) -> Response:
    lang = _lang(request)
    status, message, hint_key = classify(exc, lang)
    body: dict[str, Any] = {"error": describe(status, message, hint_key, lang)}
    headers = {"Retry-After": RETRY_SECONDS} if status == 503 else None
    if wants_json(request):
        return JSONResponse(body, status_code=status, headers=headers)
    templates = request.app.state.templates
    urls = request.app.state.urls
    fragment = request.headers.get("hx-request") == "true"
    return templates.TemplateResponse(
        request,
        "error_fragment.html" if fragment else "error.html",
        {
            "error": body["error"],
            "lang": lang,
            "t": i18n.translator(lang),
            "home_url": urls.home(lang=lang),
            "lang_url": urls.home(lang="en" if lang == "ru" else "ru"),
            "urls": urls,
            "fragment": fragment,
        },
        status_code=status,
        headers=headers,
    )
