"""Bitrix24's authorization server (oauth.bitrix.info), served under ``/oauth/``.

``/oauth/token/`` (also ``/oauth/oauth/token/``: the real server's path beside
``server_endpoint`` minus ``/rest/``) exchanges codes and refresh tokens;
``/oauth/rest/app.info`` tells an app, from an access token, which portal and
user it belongs to (BITRIX24_APP.md §1.5, b24pysdk's ``get_app_info``);
``/oauth/authorize/`` is the portal's authorize redirect.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rop.emulator.engine import Engine, JsonResponse
from rop.emulator.errors import ApiError
from rop.emulator.oauth import OAuthError


def routes(engine: Engine) -> list[Route]:
    portal = engine.portal
    host = engine.host

    async def token(request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            form = await request.form()
            params.update({k: str(v) for k, v in form.items()})
        try:
            endpoint = str(request.base_url) + "rest/"
            return JsonResponse(engine.tokens.token(params, endpoint))
        except OAuthError as error:
            return JsonResponse(error.body(), status_code=error.status)

    async def authorize(request: Request) -> Response:
        # No login screen: the emulator-only `user_id` parameter says who "logged in"
        # (default: the webhook's user). Redirects like the portal does.
        query = request.query_params
        if query.get("client_id") != engine.tokens.client_id:
            return JsonResponse(
                {"error": "invalid_client", "error_description": "Unknown client_id"}, 400
            )
        if host.app.registered and not host.app.present:
            # settings/oauth/index.md: the app must be installed on the portal first.
            return JsonResponse(
                {"error": "NOT_INSTALLED", "error_description": "Application not installed"}, 400
            )
        settings = host.app.settings
        target = (
            query.get("redirect_uri")
            or (settings.handler if settings else "")
            or str(portal.info.get("app", {}).get("handler", ""))
        )
        if not target:
            return JsonResponse(
                {"error": "invalid_request", "error_description": "No redirect_uri"}, 400
            )
        raw_user = query.get("user_id", str(portal.webhook_user_id))
        user_id = int(raw_user) if raw_user.isdigit() else portal.webhook_user_id
        answer = {
            "code": engine.tokens.authorization_code(user_id),
            "state": query.get("state", ""),
            "domain": request.url.netloc,
            "member_id": engine.tokens.member_id,
            "scope": host.app.scope or "crm,user,department,telephony",
            "server_domain": "oauth.bitrix.info",
        }
        joiner = "&" if "?" in target else "?"
        return RedirectResponse(target + joiner + urlencode(answer), status_code=302)

    async def app_info(request: Request) -> Response:
        started = portal.clock.now()
        auth = request.query_params.get("auth", "")
        if request.method == "POST" and not auth:
            form = await request.form()
            auth = str(form.get("auth") or "")
        if not auth:
            return JsonResponse(
                {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}, 401
            )
        try:
            user_id = engine.tokens.user_of(auth)
        except ApiError as error:
            return JsonResponse(error.body(), status_code=error.status)
        settings = host.app.settings
        scope = host.app.scope or engine.tokens.scope
        expires = datetime.fromtimestamp(engine.tokens.expires_at(auth), portal.clock.zone)
        result = {
            "client_id": settings.client_id if settings else engine.tokens.client_id,
            "scope": scope,
            "expires": expires.isoformat(timespec="seconds"),
            "user_id": user_id,
            "install": {
                "installed": host.app.installed,
                "version": host.app.version,
                "status": engine.tokens.status,
                "scope": scope,
                "domain": host.domain,
                "uri": host.base_url,
                "client_endpoint": host.client_endpoint,
                "member_id": engine.tokens.member_id,
                "member_type": "PORTAL",
            },
        }
        finished = portal.clock.now()
        timing = {
            "start": round(started, 6),
            "finish": round(finished, 6),
            "duration": round(finished - started, 6),
            "processing": round(finished - started, 6),
            "date_start": portal.clock.iso(started),
            "date_finish": portal.clock.iso(finished),
        }
        return JsonResponse({"result": result, "time": timing})

    return [
        Route("/oauth/token/", token, methods=["GET", "POST"]),
        Route("/oauth/oauth/token/", token, methods=["GET", "POST"]),
        Route("/oauth/authorize/", authorize, methods=["GET"]),
        Route("/oauth/rest/app.info", app_info, methods=["GET", "POST"]),
        Route("/oauth/rest/app.info/", app_info, methods=["GET", "POST"]),
        Route("/oauth/rest/app.info.json", app_info, methods=["GET", "POST"]),
    ]
