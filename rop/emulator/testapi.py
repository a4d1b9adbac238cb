"""Test-only HTTP API for out-of-process tests (on only with ``test_api=True``).

``POST /_emulator/{kind}/add``     body: the record (or ``{"fields": {...}}``) -> ``{"result": id}``
``POST /_emulator/{kind}/update``  body: ``{"id": N, "fields": {...}}``
``POST /_emulator/{kind}/delete``  body: ``{"id": N}``
``POST /_emulator/oauth/issue``    body: ``{"user_id": N}`` -> OAuth tokens
``POST /_emulator/oauth/expire``   body: ``{"access_token": "..."}``
``GET  /_emulator/stats``          fault counts and rate-limit level
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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


def routes(engine: Engine) -> list[Route]:
    portal = engine.portal

    async def change(request: Request) -> Response:
        kind, action = request.path_params["kind"], request.path_params["action"]
        try:
            data = await _body(request)
            if action == "add":
                fields = data.get("fields", data)
                return JsonResponse({"result": portal.add(kind, fields)})
            rid = data.get("id", data.get("ID"))
            if rid is None:
                raise PortalError("'id' is required")
            if action == "update":
                portal.update(kind, int(rid), data.get("fields") or {})
            elif action == "delete":
                portal.delete(kind, int(rid))
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
        return JsonResponse({"faults": counts, "bucket_level": engine.bucket.level()})

    return [
        Route("/_emulator/oauth/{action}", oauth, methods=["POST"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/{kind}/{action}", change, methods=["POST"]),
    ]
