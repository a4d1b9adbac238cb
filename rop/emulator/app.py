"""The ASGI app: REST, OAuth token endpoint, record cards, optional test API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from rop.emulator import testapi
from rop.emulator.cards import render_card
from rop.emulator.config import EmulatorConfig
from rop.emulator.data import load_portal
from rop.emulator.engine import Engine, JsonResponse
from rop.emulator.oauth import OAuthError


def create_app(portal_dir: str | Path, config: EmulatorConfig | None = None) -> Starlette:
    """Serve the snapshot folder as a Bitrix24 portal. Raises PortalError for a bad folder."""
    config = config or EmulatorConfig()
    portal = load_portal(portal_dir)
    engine = Engine(portal, config)

    async def rest(request: Request) -> Response:
        return await engine.handle(request)

    async def oauth_token(request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            form = await request.form()
            params.update({k: str(v) for k, v in form.items()})
        try:
            endpoint = str(request.base_url) + "rest/"
            return JsonResponse(engine.tokens.token(params, endpoint))
        except OAuthError as error:
            return JsonResponse(error.body(), status_code=error.status)

    async def oauth_authorize(request: Request) -> Response:
        # No login screen: the emulator-only `user_id` parameter says who "logged in"
        # (default: the webhook's user). Redirects like the portal does.
        query = request.query_params
        if query.get("client_id") != engine.tokens.client_id:
            return JsonResponse(
                {"error": "invalid_client", "error_description": "Unknown client_id"}, 400
            )
        target = query.get("redirect_uri") or str(portal.info.get("app", {}).get("handler", ""))
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
            "scope": "crm,user,department,telephony",
            "server_domain": "oauth.bitrix.info",
        }
        joiner = "&" if "?" in target else "?"
        return RedirectResponse(target + joiner + urlencode(answer), status_code=302)

    def card(kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def page(request: Request) -> Response:
            raw = request.path_params["rid"]
            html = render_card(portal, kind, int(raw)) if raw.isdigit() else None
            if html is None:
                return HTMLResponse(f"<h1>{kind} not found</h1>", status_code=404)
            return HTMLResponse(html)

        return page

    routes = [
        Route("/rest/{path:path}", rest, methods=["GET", "POST"]),
        Route("/oauth/token/", oauth_token, methods=["GET", "POST"]),
        Route("/oauth/authorize/", oauth_authorize, methods=["GET"]),
        Route("/crm/deal/details/{rid}/", card("deal")),
        Route("/crm/lead/details/{rid}/", card("lead")),
        Route("/crm/company/details/{rid}/", card("company")),
        Route("/crm/contact/details/{rid}/", card("contact")),
        Route("/company/personal/user/{rid}/", card("user")),
    ]
    if config.test_api:
        routes += testapi.routes(engine)
    app = Starlette(routes=routes)
    app.state.portal = portal
    app.state.engine = engine
    app.state.config = config
    return app
