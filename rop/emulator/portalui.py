"""The portal's own pages: who you are, the left menu, install buttons, the app page.

- ``/`` (also ``/portal/``): a user picker (``?as=N`` or the form; kept in the
  ``emu_user`` cookie; default the first admin), the left menu with the app's items
  once installed (its own page, ``LEFT_MENU``, ``CRM_ANALYTICS_MENU``), and
  Install / Uninstall (keep data / clean) for admins.
- ``/marketplace/app/<ID>/[?placement=CODE]``: the application page. It frames
  the app the way Bitrix24 does (BITRIX24_APP.md §1.3): a form with
  ``target`` = the frame's name POSTs ``AUTH_ID``, ``REFRESH_ID`` … to the
  handler with ``DOMAIN``, ``PROTOCOL``, ``LANG``, ``APP_SID`` in the query; the
  frame's name ``DOMAIN|PROTOCOL|APP_SID`` becomes its ``window.name``; and
  ``static/frame-parent.js`` answers the frame library's messages. An admin's first
  open before ``installFinish`` frames the install URL instead.
- ``/marketplace/app/<ID>/frame/<APP_SID>/{install,finish,refresh}``: what the
  parent script asks the portal for (same-origin fetch).

Every value from the snapshot or the app is escaped.
"""

from __future__ import annotations

import json
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from rop.emulator.apphost import LANGUAGE_ID
from rop.emulator.application import APP_ID, INSTALLING
from rop.emulator.engine import Engine, JsonResponse

COOKIE = "emu_user"
_STYLE = """
body{margin:0;font:14px/1.4 "Open Sans",Helvetica,Arial,sans-serif;background:#eef2f4;color:#333}
header{display:flex;gap:16px;align-items:center;background:#2fc6f6;color:#fff;padding:8px 16px}
header b{font-size:18px}header form{margin-left:auto}
.wrap{display:flex;min-height:calc(100vh - 48px)}
nav{width:220px;background:#1f2f3d;color:#cfd8dc;padding:12px 0;flex:none}
nav a{display:block;color:#e3e9ec;padding:6px 18px;text-decoration:none}nav a:hover{background:#30475a}
nav h4{margin:14px 18px 4px;font-size:11px;text-transform:uppercase;color:#8fa3ad}
main{flex:1;padding:16px 20px;min-width:0}
#app-frame{width:100%;height:600px;border:0;background:#fff;display:block}
#slider{position:fixed;top:0;right:0;bottom:0;width:min(1000px,85vw);background:#fff;
box-shadow:-4px 0 24px rgba(0,0,0,.3);z-index:10}
#slider iframe{width:100%;height:100%;border:0}
#slider-close{position:absolute;left:-44px;top:16px;width:40px;height:40px;border:0;
border-radius:20px 0 0 20px;background:#2fc6f6;color:#fff;font-size:20px;cursor:pointer}
.note{background:#fff;padding:16px;border-radius:4px}
"""


def link_params(request: Request) -> dict[str, Any]:
    """``params[k]=v`` of a link -> PLACEMENT_OPTIONS (app-url.md), read as PHP reads
    a query: a repeated ``params[k]`` keeps the last value, ``params[k][]`` makes a list."""
    options: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if not key.startswith("params["):
            continue
        if key.endswith("][]"):
            name = key[7:-3]
            listed = options.get(name)
            options[name] = [*listed, value] if isinstance(listed, list) else [value]
        elif key.endswith("]"):
            options[key[7:-1]] = value
    return options


def _json_script(value: Any) -> str:
    """JSON safe inside <script> (no </script>, no <!--)."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def routes(engine: Engine) -> list[Route]:
    portal = engine.portal
    host = engine.host
    app = host.app

    def users() -> dict[int, dict[str, Any]]:
        return dict(portal.tables["user"].rows)

    def viewer_of(request: Request) -> int:
        raw = request.query_params.get("as") or request.cookies.get(COOKIE) or ""
        known = users()
        if raw.isdigit() and (int(raw) in known or int(raw) in portal.admins):
            return int(raw)
        return min(portal.admins) if portal.admins else portal.webhook_user_id

    def name_of(user_id: int) -> str:
        user = users().get(user_id) or {}
        name = " ".join(str(user.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()
        return name or f"user {user_id}"

    def elsewhere(request: Request) -> Response | None:
        """A page asked at another address of ours: go to the portal's one address,
        where the frame SDK expects its parent (DOMAIN is part of window.name)."""
        host.seen(str(request.base_url))
        here = str(request.base_url).rstrip("/")
        if here == host.base_url:
            return None
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(host.base_url + request.url.path + query, status_code=302)

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        return origin is None or origin == str(request.base_url).rstrip("/")

    def menu() -> str:
        items = ['<a href="/">Portal</a>']
        settings = app.settings
        if settings is not None and app.installed:
            items.append("<h4>Applications</h4>")
            items.append(
                f'<a id="menu-app" href="/marketplace/app/{APP_ID}/">{escape(settings.title)}</a>'
            )
            for p in app.placements:
                if p.placement == "LEFT_MENU":
                    items.append(
                        f'<a class="menu-left" href="/marketplace/app/{APP_ID}/?placement=LEFT_MENU">'
                        f"{escape(p.title or settings.title)}</a>"
                    )
            analytics = [p for p in app.placements if p.placement == "CRM_ANALYTICS_MENU"]
            if analytics:
                items.append("<h4>CRM Analytics</h4>")
                for p in analytics:
                    items.append(
                        f'<a class="menu-analytics" href="/marketplace/app/{APP_ID}/'
                        f'?placement=CRM_ANALYTICS_MENU">{escape(p.title or settings.title)}</a>'
                    )
        return "\n".join(items)

    def layout(viewer: int, title: str, body: str, head: str = "", status: int = 200) -> Response:
        options = "".join(
            f'<option value="{uid}"{" selected" if uid == viewer else ""}>'
            f"{escape(name_of(uid))} (#{uid}{', admin' if uid in portal.admins else ''})</option>"
            for uid in sorted(users())
        )
        html = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style>{head}</head><body>\n"
            f"<header><b>Bitrix24</b> <span>{escape(host.domain)}</span>"
            f'<form method="get" action="/" id="user-picker"><label>Act as '
            f'<select name="as" id="as">{options}</select></label> '
            f'<button type="submit">Switch</button></form></header>\n'
            f'<div class="wrap"><nav>{menu()}</nav><main>{body}</main></div>\n</body></html>\n'
        )
        response = HTMLResponse(html, status_code=status)
        response.set_cookie(COOKIE, str(viewer), path="/", samesite="lax")
        return response

    async def home(request: Request) -> Response:
        if (moved := elsewhere(request)) is not None:
            return moved
        viewer = viewer_of(request)
        admin = viewer in portal.admins
        settings = app.settings
        parts = [f"<h1>{escape(portal.domain)}</h1>"]
        parts.append(f'<p>You are <b id="viewer">{escape(name_of(viewer))}</b>.</p>')
        if settings is None:
            parts.append('<p class="note">No application registered (POST /_emulator/app).</p>')
        else:
            parts.append(
                f'<p class="note">Application <b>{escape(settings.title)}</b> '
                f'({escape(settings.client_id)}): <span id="app-state">{escape(app.state)}</span>'
                f", version {app.version}.</p>"
            )
            if not admin:
                parts.append("<p>Only portal administrators install applications.</p>")
            elif not app.present:
                parts.append(
                    '<form method="post" action="/portal/install">'
                    '<button id="install" type="submit">Install</button></form>'
                )
            else:
                parts.append(
                    '<form method="post" action="/portal/uninstall" style="display:inline">'
                    '<input type="hidden" name="clean" value="0">'
                    '<button id="uninstall-keep" type="submit">Uninstall (keep data)</button>'
                    "</form> "
                    '<form method="post" action="/portal/uninstall" style="display:inline">'
                    '<input type="hidden" name="clean" value="1">'
                    '<button id="uninstall-clean" type="submit">Uninstall (clean)</button></form>'
                )
        return layout(viewer, f"Bitrix24: {portal.domain}", "\n".join(parts))

    async def install(request: Request) -> Response:
        host.seen(str(request.base_url))
        viewer = viewer_of(request)
        if not same_origin(request):
            return HTMLResponse("<h1>Cross-site request refused</h1>", status_code=403)
        if app.settings is None:
            return HTMLResponse("<h1>No application registered</h1>", status_code=409)
        if viewer not in portal.admins:
            return HTMLResponse("<h1>Only administrators install applications</h1>", 403)
        if not app.present:
            host.install(viewer)
        return RedirectResponse(f"/marketplace/app/{APP_ID}/", status_code=303)

    async def uninstall(request: Request) -> Response:
        host.seen(str(request.base_url))
        viewer = viewer_of(request)
        if not same_origin(request):
            return HTMLResponse("<h1>Cross-site request refused</h1>", status_code=403)
        if viewer not in portal.admins:
            return HTMLResponse("<h1>Only administrators uninstall applications</h1>", 403)
        form = await request.form()
        host.uninstall(str(form.get("clean") or "0") == "1")
        return RedirectResponse("/", status_code=303)

    async def app_page(request: Request) -> Response:
        if (moved := elsewhere(request)) is not None:
            return moved
        if request.path_params["app_id"] != str(APP_ID):
            return missing(request)
        placement = request.query_params.get("placement", "DEFAULT").upper()
        return open_app(request, placement, link_params(request))

    async def view_page(request: Request) -> Response:
        """A link ``/marketplace/view/<code>/?params[k]=v`` (app-url.md): the app's
        REST_APP_URI handler, with the params as PLACEMENT_OPTIONS. Bitrix24 opens
        it in a slider over the page the link was on; here it is the app's page."""
        if (moved := elsewhere(request)) is not None:
            return moved
        settings = app.settings
        if settings is None or request.path_params["code"] != settings.client_id:
            return missing(request)
        return open_app(request, "REST_APP_URI", link_params(request))

    def missing(request: Request) -> Response:
        note = '<p class="note" id="app-missing">The application is not installed.</p>'
        return layout(viewer_of(request), "Application", note, status=404)

    def open_app(request: Request, placement: str, options: dict[str, Any]) -> Response:
        viewer = viewer_of(request)
        settings = app.settings
        if settings is None or not app.present:
            return missing(request)
        admin = viewer in portal.admins
        installing = app.state == INSTALLING
        if installing:
            if not admin:
                note = (
                    '<p class="note" id="app-not-ready">The application is not fully installed '
                    "yet. Please contact your administrator.</p>"
                )
                return layout(viewer, settings.title, note)
            target = settings.install_url or settings.handler
            placement = "DEFAULT"
        elif placement == "DEFAULT":
            target = settings.handler
        else:
            bound = app.placement_handler(placement)
            if bound is None:
                note = f'<p class="note">No handler for placement {escape(placement)}.</p>'
                return layout(viewer, settings.title, note, status=404)
            target = bound.handler
        if not target:
            note = '<p class="note">The application has no handler URL.</p>'
            return layout(viewer, settings.title, note, status=404)
        issued = host.issue(viewer)
        sid = app.open_session(viewer, placement, options)
        first_run = installing and app.first_run
        query = {
            "DOMAIN": host.domain,
            "PROTOCOL": host.protocol,
            "LANG": LANGUAGE_ID,
            "APP_SID": sid,
        }
        action = target + ("&" if "?" in target else "?") + urlencode(query)
        fields = {
            "AUTH_ID": issued["access_token"],
            "AUTH_EXPIRES": str(issued["expires_in"]),
            "REFRESH_ID": issued["refresh_token"],
            "SERVER_ENDPOINT": issued["server_endpoint"],
            "APPLICATION_TOKEN": app.application_token,
            "APPLICATION_SCOPE": app.scope,
            "member_id": issued["member_id"],
            "status": issued["status"],
            "PLACEMENT": placement,
            "PLACEMENT_OPTIONS": json.dumps(options, ensure_ascii=False),
        }
        init = {
            "DOMAIN": host.domain,
            "PROTOCOL": host.protocol,
            "PATH": f"/marketplace/app/{APP_ID}/",
            "LANG": LANGUAGE_ID,
            "AUTH_ID": issued["access_token"],
            "REFRESH_ID": issued["refresh_token"],
            "AUTH_EXPIRES": str(issued["expires_in"]),
            "MEMBER_ID": issued["member_id"],
            "IS_ADMIN": admin,
            "APP_OPTIONS": dict(app.options),
            "USER_OPTIONS": {},
            "PLACEMENT": placement,
            "PLACEMENT_OPTIONS": options,
            "INSTALL": installing,
            "FIRST_RUN": first_run,
        }
        origins = sorted(
            {
                f"{urlsplit(u).scheme}://{urlsplit(u).netloc}"
                for u in (target, settings.handler, settings.install_url)
                if u
            }
        )
        config = {
            "sid": sid,
            "origins": origins,
            "actions": f"/marketplace/app/{APP_ID}/frame/{sid}/",
            "init": init,
        }
        name = f"{host.domain}|{host.protocol}|{sid}"
        inputs = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
            for k, v in fields.items()
        )
        body = (
            f'<h2 id="app-title">{escape(settings.title)}</h2>\n'
            f'<iframe id="app-frame" name="{escape(name)}" '
            'allow="clipboard-write" title="application"></iframe>\n'
            f'<form id="app-form" method="post" target="{escape(name)}" '
            f'action="{escape(action)}" hidden>{inputs}</form>\n'
            '<div id="slider" hidden><button id="slider-close" type="button" '
            'aria-label="Close">&times;</button><iframe id="slider-frame" title="slider">'
            "</iframe></div>\n"
            f'<script type="application/json" id="emu-config">{_json_script(config)}</script>\n'
            '<script src="/_portal/frame-parent.js"></script>'
        )
        return layout(viewer, settings.title, body)

    async def frame_action(request: Request) -> Response:
        session = app.sessions.get(request.path_params["sid"])
        action = request.path_params["action"]
        if session is None or not same_origin(request):
            return JsonResponse(
                {"error": "UNKNOWN_FRAME", "error_description": "No such frame"}, 404
            )
        if action == "refresh":
            issued = host.issue(session.user_id)
            return JsonResponse(
                {
                    "AUTH_ID": issued["access_token"],
                    "REFRESH_ID": issued["refresh_token"],
                    "AUTH_EXPIRES": str(issued["expires_in"]),
                }
            )
        if action == "install":
            app.first_run = False
            return JsonResponse({"result": True})
        if action == "finish":
            if not session.install or session.user_id not in portal.admins:
                return JsonResponse({"result": False}, 409)
            return JsonResponse({"result": host.finish()})
        return JsonResponse({"error": "UNKNOWN_ACTION", "error_description": action}, 404)

    async def parent_script(request: Request) -> Response:
        text = resources.files("rop.emulator").joinpath("static/frame-parent.js").read_text("utf-8")
        return Response(text, media_type="text/javascript; charset=utf-8")

    return [
        Route("/", home, methods=["GET"]),
        Route("/portal/", home, methods=["GET"]),
        Route("/portal/install", install, methods=["POST"]),
        Route("/portal/uninstall", uninstall, methods=["POST"]),
        Route("/marketplace/app/{app_id}/", app_page, methods=["GET"]),
        Route("/marketplace/view/{code}/", view_page, methods=["GET"]),
        Route("/marketplace/app/{app_id}/frame/{sid}/{action}", frame_action, methods=["POST"]),
        Route("/_portal/frame-parent.js", parent_script, methods=["GET"]),
    ]
