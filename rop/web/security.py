"""Who may talk to the server, and what every answer tells the browser.

Three ASGI middlewares, each one concept, installed once by ``create_app``:

- ``TrustedHosts``: Starlette's TrustedHostMiddleware over ``ROP_ALLOWED_HOSTS``,
  so a DNS-rebinding page (its own name pointed at 127.0.0.1) is refused and
  cannot read ``/report.json``; the refusal names the setting.
- ``SameOriginGuard``: a request that changes state (any method but GET, HEAD,
  OPTIONS) must come from our own pages (``Sec-Fetch-Site: same-origin``, else
  an ``Origin`` equal to the host asked for, else a token: the pages'
  ``X-ROP-Token`` or the command line's ``X-ROP-Local-Token``) and carry JSON. A form POST or a ``text/plain`` body from
  another site is refused before any route runs. Routes that take cross-site
  requests verified by their own means (the Bitrix24 app's install and event
  handlers, signed by Bitrix24's tokens) are marked with ``@cross_site``.
- ``SecurityHeaders``: a Content-Security-Policy (our own scripts and styles
  only; ``frame-ancestors`` from ``frame_ancestors(app)``, which the app mode
  widens to the installed portals), ``X-Content-Type-Options: nosniff`` and a
  ``Referrer-Policy`` on every answer.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_HEADER = "x-rop-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

E = TypeVar("E")

# (ru, en); these refusals are read by programs more than people, so they are
# here rather than among the page's words.
_TEXT: dict[str, tuple[str, str]] = {
    "cross_site": (
        "запрос с другого сайта отклонён: менять данные можно только со страниц отчёта",
        "a request from another site was refused: only the report's own pages may change data",
    ),
    "no_origin": (
        "запрос без Origin и Sec-Fetch-Site должен нести токен сервера "
        "(X-ROP-Local-Token из файла <store>.server.json, его шлёт rop sync)",
        "a request without Origin and Sec-Fetch-Site must carry the server's token "
        "(X-ROP-Local-Token from <store>.server.json, which rop sync sends)",
    ),
    "not_json": (
        "тело запроса должно быть JSON (Content-Type: application/json)",
        "the request body must be JSON (Content-Type: application/json)",
    ),
    "bad_host": (
        "сервер не отвечает на имя {host}; имена, на которые он отвечает, задаёт ROP_ALLOWED_HOSTS",
        "this server does not answer to the name {host}; ROP_ALLOWED_HOSTS lists the names it does",
    ),
    "too_large": (
        "тело запроса больше {limit} байт (ROP_MAX_BODY_BYTES)",
        "the request body is larger than {limit} bytes (ROP_MAX_BODY_BYTES)",
    ),
    "refused": ("Запрос отклонён", "Request refused"),
    "what_to_do": (
        "Откройте отчёт по его адресу и повторите действие на его странице.",
        "Open the report at its own address and repeat the action on its page.",
    ),
}


def say(key: str, lang: str, **args: object) -> str:
    ru, en = _TEXT[key]
    return (en if lang == "en" else ru).format(**args)


def say_limit(scope: Scope, limit: int) -> str:
    return say("too_large", _lang(scope), limit=limit)


def _lang(scope: Scope) -> str:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    lang = (query.get("lang") or [""])[0]
    if lang in ("ru", "en"):
        return lang
    app = scope.get("app")
    settings = getattr(getattr(app, "state", None), "settings", None)
    return str(getattr(settings, "language", "ru") or "ru")


async def refuse(
    scope: Scope,
    send: Send,
    status: int,
    message: str,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer ``status`` with the project's error JSON, without running any route."""
    lang = _lang(scope)
    body = json.dumps(
        {
            "error": {
                "status": status,
                "title": say("refused", lang),
                "message": message[:1].upper() + message[1:],
                "what_to_do": say("what_to_do", lang),
            }
        },
        ensure_ascii=False,
    ).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- host names ---------------------------------------------------------------


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's host check; its refusal says which setting lists the names."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        async def passed(scope: Scope, receive: Receive, send: Send) -> None:
            scope["rop.host_trusted"] = True
            await app(scope, receive, send)

        super().__init__(passed, allowed_hosts=list(allowed_hosts), www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        refused = False

        async def relay(message: Message) -> None:
            nonlocal refused
            if scope.get("rop.host_trusted"):
                await send(message)
            elif not refused:  # Starlette's plain "Invalid host header", replaced
                refused = True
                host = Headers(scope=scope).get("host", "")[:100]
                await refuse(scope, send, 400, say("bad_host", _lang(scope), host=repr(host)))

        await super().__call__(scope, receive, relay)


# -- same origin --------------------------------------------------------------


def cross_site(endpoint: E) -> E:
    """Mark a route's endpoint as taking requests from other sites.

    Only for routes that check the caller themselves (Bitrix24's app install
    and event handlers carry its tokens); the same-origin guard lets them
    through with any Origin and content type. The body size limit still holds.
    """
    endpoint.rop_cross_site = True  # type: ignore[attr-defined]
    return endpoint


def _exempt(scope: Scope) -> bool:
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            target = getattr(route, "endpoint", None) or getattr(route, "app", None)
            return bool(getattr(target, "rop_cross_site", False))
    return False


def _netloc(origin: str) -> str | None:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def origin_problem(headers: Headers, tokens: dict[str, str | None]) -> str | None:
    """Why this state-changing request is not our own page's (a text key), or None.

    Browsers send ``Sec-Fetch-Site`` (since 2020-2023) and ``Origin`` on every
    POST; either settles it. A client with neither is not a browser a page
    could drive, so it must show a token: the one in our pages
    (``X-ROP-Token``) or the command line's from ``<db>.server.json``
    (``X-ROP-Local-Token``, rop.store.holder).
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return None if site == "same-origin" else "cross_site"
    origin = headers.get("origin")
    if origin is not None:
        host = headers.get("host", "").lower()
        return None if host and _netloc(origin) == host else "cross_site"
    for header, token in tokens.items():
        given = headers.get(header, "")
        if token and given and hmac.compare_digest(given.encode(), token.encode()):
            return None
    return "no_origin"


def request_tokens(app: Any) -> dict[str, str | None]:
    """The tokens a non-browser client may show, by header: the pages' one,
    and the command line's (set when the server announces itself)."""
    from rop.store.holder import LOCAL_TOKEN_HEADER

    state = app.state
    return {
        TOKEN_HEADER: getattr(state, "token", None),
        LOCAL_TOKEN_HEADER: getattr(state, "local_token", None),
    }


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class SameOriginGuard:
    """State changes only from our own pages (or the token's holder), as JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or _exempt(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = origin_problem(headers, request_tokens(scope["app"]))
        if problem is not None:
            await refuse(scope, send, 403, say(problem, _lang(scope)), [(b"connection", b"close")])
            return
        if not is_json(headers.get("content-type")):
            await refuse(
                scope, send, 415, say("not_json", _lang(scope)), [(b"connection", b"close")]
            )
            return
        await self.app(scope, receive, send)


# -- headers on every answer ----------------------------------------------------


def frame_ancestors(app: Any) -> list[str]:
    """Who may show our pages in a frame: ``'self'`` unless the app says more.

    The app mode sets ``app.state.frame_ancestors`` to a callable returning the
    installed portals' origins (``https://example.bitrix24.ru``); it is asked on
    every answer, so a portal installed a minute ago is admitted at once.
    """
    extra: Callable[[], Iterable[str]] | None = getattr(app.state, "frame_ancestors", None)
    sources = ["'self'"]
    if extra is not None:
        for origin in extra():
            # Only scheme://host[:port] reaches the policy: a stray ";" or space
            # would add a directive or a source.
            match = _ORIGIN.match(str(origin).strip().lower())
            if match is not None:
                sources.append(match.group(1))
    return list(dict.fromkeys(sources))


_ORIGIN = re.compile(r"^(https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::\d{1,5})?)(?:/.*)?$")


def content_security_policy(ancestors: Iterable[str], scripts: Iterable[str] = ()) -> str:
    """The policy our pages need; ``scripts``: more script origins for a route
    that sets its own header (e.g. Bitrix24's BX24 library on an app page)."""
    # Scripts only from our files (no inline script, no eval: the pages keep
    # their data in <script type="application/json"> blocks, which are not
    # run). Style sheets likewise; style *attributes* stay allowed because
    # ECharts draws its tooltips and SVG with them, and autoescaping keeps CRM
    # strings out of attributes anyway.
    return "; ".join(
        [
            "default-src 'self'",
            " ".join(["script-src 'self'", *scripts]),
            "style-src 'self'",
            "style-src-elem 'self'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors " + " ".join(ancestors),
        ]
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                given = {k.lower() for k, _ in headers}
                # A route that sets one of these itself (an app page that loads
                # Bitrix24's script) keeps its own; every other answer gets ours.
                if b"content-security-policy" not in given:
                    csp = content_security_policy(frame_ancestors(scope["app"]))
                    headers.append((b"content-security-policy", csp.encode("latin-1")))
                if b"x-content-type-options" not in given:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"referrer-policy" not in given:
                    headers.append((b"referrer-policy", b"same-origin"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
