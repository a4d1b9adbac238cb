"""The report's own rights overrides, managed inside the portal (what `rop rights` does).

``GET /app/rights``: the page (portal administrators only: the viewer token's
``admin``, from ``profile``'s ``ADMIN`` when the app was opened); ``POST
/app/rights``: one change as JSON, ``{"action": "allow"|"deny"|"clear"|
"admin"|"unadmin", "viewer": ID, "user": ID}``. Both sit behind the gate (a
valid viewer token, that portal only); the POST behind the same-origin guard
(JSON from our own page: the portal's frame is our origin). Anyone else gets
403 and nothing changes. After a change the cached reports go: the overrides
change what viewers see.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from rop.web import i18n
from rop.web.errors import BadInput, WebError
from rop.web.jsonbody import json_object

MAX_BODY = 4096
ACTIONS = ("allow", "deny", "clear", "admin", "unadmin")

_FORBIDDEN = (
    "Настройки доступа меняют только администраторы портала.",
    "Only the portal's administrators change the access settings.",
)


def _lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "ru"


def _admin_viewer(request: Request) -> Any:
    viewer = request.scope.get("rop.viewer")
    lang = _lang(request)
    if viewer is None:
        # Only inside the portal: the webhook's server has `rop rights`.
        raise WebError(404, i18n.text("no_portal", lang))
    if not viewer.admin:
        raise WebError(403, _FORBIDDEN[1 if lang == "en" else 0], "ask_admin")
    return viewer


def _people(store: Any, portal: str) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT id, trim(concat_ws(' ', name, last_name)), coalesce(active, TRUE) "
        "FROM users WHERE portal = ? ORDER BY last_name, name, id",
        [portal],
    )
    return [{"id": int(i), "name": n or f"#{i}", "active": bool(a)} for i, n, a in rows]


def rights_page(request: Request) -> Response:
    from rop.report.scope import list_rights

    viewer = _admin_viewer(request)
    lang = _lang(request)
    store = request.app.state.pool.get()
    people = _people(store, viewer.portal)
    names = {p["id"]: p["name"] for p in people}
    rights = list_rights(store, viewer.portal)
    urls = request.app.state.urls
    template = request.app.state.templates.get_template("app_rights.html")
    body = template.render(
        {
            "lang": lang,
            "t": i18n.translator(lang),
            "people": people,
            "names": names,
            "rights": rights,
            "save_url": urls.app_rights(lang),
            "report_url": urls.report([("lang", lang)]),
            "lang_url": urls.app_rights("en" if lang == "ru" else "ru"),
        }
    )
    return HTMLResponse(body, headers={"cache-control": "no-store"})


async def rights_change(request: Request) -> Response:
    from rop.report.scope import clear_override, list_rights, set_override, set_report_admin

    viewer = _admin_viewer(request)
    data = await json_object(request, MAX_BODY)
    action = data.get("action")
    if action not in ACTIONS:
        raise BadInput(f"action: {action!r} (one of {', '.join(ACTIONS)})", field="action")
    ids: dict[str, int | None] = {}
    for key in ("viewer", "user"):
        value = data.get(key)
        if value in (None, "") and (key == "viewer" or action == "clear"):
            ids[key] = None
            continue
        if isinstance(value, bool) or not str(value).isdigit():
            raise BadInput(f"{key}: {value!r} (a user ID)", field=key)
        ids[key] = int(str(value))
    store = request.app.state.pool.get()
    portal = viewer.portal
    who, whom = ids.get("viewer"), ids.get("user")
    if action in ("admin", "unadmin"):
        assert whom is not None
        set_report_admin(store, portal, whom, action == "admin")
    elif who is None:
        raise BadInput("viewer: a user ID", field="viewer")
    elif action == "clear":
        clear_override(store, portal, who, whom)
    else:
        assert whom is not None
        set_override(store, portal, who, whom, action == "allow")
    request.app.state.appmode.changed()  # what viewers see has changed
    return JSONResponse({"portal": portal, **list_rights(store, portal)})
