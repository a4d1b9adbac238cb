"""The ASGI app: REST, OAuth token endpoint, record cards, optional test API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from rop.emulator import authserver, portalui, testapi
from rop.emulator.cards import render_card
from rop.emulator.config import EmulatorConfig
from rop.emulator.data import load_portal
from rop.emulator.engine import Engine

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Max-Age": "600",
}


def create_app(portal_dir: str | Path, config: EmulatorConfig | None = None) -> Starlette:
    """Serve the snapshot folder as a Bitrix24 portal. Raises PortalError for a bad folder."""
    config = config or EmulatorConfig()
    portal = load_portal(portal_dir)
    engine = Engine(portal, config)

    async def rest(request: Request) -> Response:
        # The frame SDK calls REST from the app's origin: Bitrix24's REST answers CORS.
        if request.method == "OPTIONS":
            asked = request.headers.get("access-control-request-headers", "Content-Type")
            return Response(
                status_code=204, headers={**_CORS, "Access-Control-Allow-Headers": asked}
            )
        response = await engine.handle(request)
        response.headers.update(_CORS)
        return response

    def card(kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def page(request: Request) -> Response:
            raw = request.path_params["rid"]
            html = render_card(portal, kind, int(raw)) if raw.isdigit() else None
            if html is None:
                return HTMLResponse(f"<h1>{kind} not found</h1>", status_code=404)
            return HTMLResponse(html)

        return page

    routes = [
        Route("/rest/{path:path}", rest, methods=["GET", "POST", "OPTIONS"]),
        *authserver.routes(engine),
        Route("/crm/deal/details/{rid}/", card("deal")),
        Route("/crm/lead/details/{rid}/", card("lead")),
        Route("/crm/company/details/{rid}/", card("company")),
        Route("/crm/contact/details/{rid}/", card("contact")),
        Route("/company/personal/user/{rid}/", card("user")),
        *portalui.routes(engine),
    ]
    if config.test_api:
        routes += testapi.routes(engine)
    app = Starlette(routes=routes)
    app.state.portal = portal
    app.state.engine = engine
    app.state.config = config
    return app
