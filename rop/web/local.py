"""The command line on the same machine, reading through the server.

While `rop serve` holds the store, `rop report`, `rop drill` and `rop rights
show` ask it over HTTP (rop.cli.remote). They prove they could open the store
themselves by sending the token the server wrote, owner-only, into
``<db>.server.json`` (rop.store.holder); such a request reads as the command
line does: any viewer or none, and the rights. Anyone else gets the server's
own viewer, as before.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from rop.store.holder import LOCAL_TOKEN_HEADER
from rop.web import i18n
from rop.web.errors import WebError


def is_local_caller(request: Request) -> bool:
    token = getattr(request.app.state, "local_token", None)
    given = request.headers.get(LOCAL_TOKEN_HEADER)
    return bool(token and given and hmac.compare_digest(token, given))


def rights_json(request: Request) -> Response:
    """`rop rights show` while the server holds the store: local callers only."""
    from rop.report.scope import list_rights
    from rop.web.context import Json
    from rop.web.options import load_options

    lang = request.app.state.settings.language
    if not is_local_caller(request):
        raise WebError(403, i18n.text("forbidden", lang), "ask_admin")
    store = request.app.state.pool.get()
    portal = load_options(store, request.app.state.settings.portal).portal
    if portal is None:
        raise WebError(404, i18n.text("no_portal", lang))
    return Json({"portal": portal, **list_rights(store, portal)})
