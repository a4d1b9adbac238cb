"""Test-only HTTP API for out-of-process tests (on only with ``test_api=True``).

``POST /_emulator/{kind}/add``     body: the record (or ``{"fields": {...}}``) -> ``{"result": id}``
``POST /_emulator/{kind}/update``  body: ``{"id": N, "fields": {...}}``
``POST /_emulator/{kind}/delete``  body: ``{"id": N}``
``POST /_emulator/oauth/issue``    body: ``{"user_id": N}`` -> OAuth tokens
``POST /_emulator/oauth/expire``   body: ``{"access_token": "..."}``
``GET  /_emulator/stats``          fault counts, rate-limit level (now, peak, refused), event deliveries
``POST /_emulator/app``            body: AppSettings fields -> registers the application
``POST /_emulator/app/install``    body: ``{"user_id": N}`` (an admin) -> install begins
``POST /_emulator/app/finish``     installFinish without a frame
``POST /_emulator/app/uninstall``  body: ``{"clean": true|false}`` -> ONAPPUNINSTALL
``POST /_emulator/app/update``     body: ``{"version": N}`` -> ONAPPUPDATE, new application_token
``GET  /_emulator/app``            the app's state: installed, application_token, placements, bindings

Record changes take an optional ``"user_id"``: the user who made it (their tokens
ride on the events it fires; default the webhook's user, ``null``: no user), and
``"history": true`` beside ``fields``: a deal's or lead's stage history row too.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rop.emulator.config import AppSettings
from rop.emulator.data import PortalError
from rop.emulator.engine import Engine, JsonResponse


def _problem(text: str, status: int = 400) -> Response:
    return JsonResponse({"error": "INVALID_REQUEST", "error_description": text}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise PortalError("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise PortalError("body must be a JSON object")
    return data


_SETTING_NAMES = frozenset(
    {
        "client_id",
        "client_secret",
        "handler",
        "install_url",
        "install_handler",
        "scopes",
        "version",
        "title",
    }
)


def _settings(data: dict[str, Any]) -> AppSettings:
    unknown = set(data) - _SETTING_NAMES
    if unknown:
        raise PortalError(f"unknown application settings: {', '.join(sorted(unknown))}")
    values = dict(data)
    scopes = values.get("scopes")
    if isinstance(scopes, str):
        values["scopes"] = tuple(s.strip() for s in scopes.split(",") if s.strip())
    elif scopes is not None:
        values["scopes"] = tuple(str(s) for s in scopes)
    if "version" in values:
        values["version"] = int(values["version"])
    for name in ("handler", "install_url", "install_handler"):
        url = str(values.get(name) or "")
        if url and not url.startswith(("http://", "https://")):
            raise PortalError(f"{name} must be an http(s) URL, not {url!r}")
    return AppSettings(**values)


def routes(engine: Engine) -> list[Route]:
    portal = engine.portal
    host = engine.host

    async def change(request: Request) -> Response:
        kind, action = request.path_params["kind"], request.path_params["action"]
        try:
            data = await _body(request)
            actor: int | None = portal.webhook_user_id
            # A bare record body is all fields; the actor rides beside "fields"/"id".
            if ("fields" in data or action != "add") and "user_id" in data:
                raw_actor = data.pop("user_id")
                actor = None if raw_actor is None else int(raw_actor)
            # "history": true writes the stage history row Bitrix24 would (stagelog.py).
            history = bool(data.pop("history", False)) if "fields" in data else False
            if action == "add":
                fields = data.get("fields", data)
                return JsonResponse({"result": portal.add(kind, fields, actor, history)})
            rid = data.get("id", data.get("ID"))
            if rid is None:
                raise PortalError("'id' is required")
            if action == "update":
                portal.update(kind, int(rid), data.get("fields") or {}, actor, history)
            elif action == "delete":
                portal.delete(kind, int(rid), actor)
            else:
                return _problem(f"unknown action {action!r}: add, update or delete", 404)
            return JsonResponse({"result": True})
        except (PortalError, TypeError, ValueError) as exc:
            return _problem(str(exc))

    async def oauth(request: Request) -> Response:
        action = request.path_params["action"]
        try:
            data = await _body(request)
        except PortalError as exc:
            return _problem(str(exc))
        if action == "issue":
            endpoint = str(request.base_url) + "rest/"
            return JsonResponse(engine.tokens.issue(int(data.get("user_id", 1)), endpoint))
        if action == "expire":
            engine.tokens.expire(str(data.get("access_token", "")))
            return JsonResponse({"result": True})
        return _problem(f"unknown action {action!r}: issue or expire", 404)

    async def stats(request: Request) -> Response:
        counts = engine.faults.counts if engine.faults else {}
        deliveries = [d.as_dict() for d in list(host.events.deliveries)]
        return JsonResponse(
            {
                "faults": counts,
                "bucket_level": engine.bucket.level(),
                "bucket_peak": engine.bucket.peak,
                "limited": engine.bucket.refused,
                "deliveries": deliveries,
            }
        )

    async def im_state(request: Request) -> Response:
        # What chat delivery left: every im.notify / imbot call, live notifications.
        from rop.emulator.notify import inbox

        box = inbox(portal)
        with box.lock:
            state = {
                "calls": list(box.calls),
                "notifications": {str(u): list(n) for u, n in box.notifications.items()},
                "messages": list(box.messages),
            }
        return JsonResponse(state)

    async def im_page(request: Request) -> Response:
        # One user's notifications rendered like Bitrix24's panel (docs screenshots).
        from starlette.responses import HTMLResponse

        from rop.emulator.imview import page
        from rop.emulator.notify import inbox

        raw = request.path_params["user_id"]
        if not raw.isdigit():
            return _problem(f"user {raw!r} is not a user ID", 404)
        box = inbox(portal)
        with box.lock:
            notes = list(box.notifications.get(int(raw), []))
        return HTMLResponse(page(int(raw), notes))

    async def app_state(request: Request) -> Response:
        app = host.app
        with app.lock:
            state = {
                "registered": app.registered,
                "state": app.state,
                "installed": app.installed,
                "version": app.version,
                "application_token": app.application_token,
                "member_id": engine.tokens.member_id,
                "placements": [p.as_reply() for p in app.placements],
                "bindings": [b.as_reply() for b in host.events.all_bindings()],
            }
        return JsonResponse(state)

    async def app_register(request: Request) -> Response:
        try:
            data = await _body(request)
            settings = _settings(data)
        except (PortalError, TypeError, ValueError) as exc:
            return _problem(str(exc))
        host.seen(str(request.base_url))
        host.register(settings)
        return JsonResponse({"result": True})

    async def app_action(request: Request) -> Response:
        action = request.path_params["action"]
        try:
            data = await _body(request)
        except PortalError as exc:
            return _problem(str(exc))
        host.seen(str(request.base_url))
        if not host.app.registered:
            return _problem("no application registered: POST /_emulator/app first", 409)
        if action == "install":
            raw = data.get("user_id") or min(portal.admins or {portal.webhook_user_id})
            if not str(raw).isdigit():
                return _problem(f"user_id must be a user ID, not {raw!r}")
            user_id = int(raw)
            if user_id not in portal.admins:
                return _problem(f"user {user_id} is not a portal administrator", 403)
            host.install(user_id)
        elif action == "finish":
            if not host.finish():
                return _problem("the application is not being installed", 409)
        elif action == "uninstall":
            host.uninstall(bool(data.get("clean", False)))
        elif action == "update":
            version = data.get("version")
            if version is not None and not str(version).isdigit():
                return _problem(f"version must be a whole number, not {version!r}")
            host.update(int(version) if version is not None else None)
        else:
            return _problem(f"unknown action {action!r}: install, finish, uninstall, update", 404)
        return JsonResponse({"result": True, "state": host.app.state})

    return [
        Route("/_emulator/app", app_register, methods=["POST"]),
        Route("/_emulator/app", app_state, methods=["GET"]),
        Route("/_emulator/app/{action}", app_action, methods=["POST"]),
        Route("/_emulator/oauth/{action}", oauth, methods=["POST"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/im", im_state, methods=["GET"]),
        Route("/_emulator/im/{user_id}", im_page, methods=["GET"]),
        Route("/_emulator/{kind}/{action}", change, methods=["POST"]),
    ]
