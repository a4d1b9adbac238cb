"""The sync API: start a sync (waiting for it or not) and report its progress."""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from rop.web import i18n
from rop.web.context import Json
from rop.web.errors import BadInput, WebError


def sync_status(request: Request) -> Response:
    return Json(request.app.state.sync.status())


async def sync_start(request: Request) -> Response:
    """Start a sync. ``{"full": bool, "wait": bool}``; by default the answer waits
    for the end (``rop sync`` forwards here and reports the outcome), the page
    passes ``"wait": false`` and polls ``GET /api/sync`` for progress."""
    job = request.app.state.sync
    lang = request.app.state.settings.language
    if request.query_params.get("lang") in i18n.LANGS:  # `rop sync` asks in English
        lang = str(request.query_params["lang"])
    if not job.available:
        raise WebError(409, i18n.text("sync_unavailable", lang), "go_home")
    raw = await request.body()
    body: Any = {}
    if raw.strip():
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = None
    shape_ok = isinstance(body, dict) and all(
        isinstance(body.get(k, False), bool) for k in ("full", "wait")
    )
    if not shape_ok or not isinstance(body.get("portal", ""), str):
        raise BadInput('the body must be JSON such as {"full": false, "wait": false}')
    # `rop sync --webhook B` forwarded here must not sync this server's portal A.
    asked, served = body.get("portal"), job.portal
    if asked and served and asked.lower() != served.lower():
        raise WebError(409, i18n.text("sync_other_portal", lang, asked=asked, served=served))
    started = job.start(full=bool(body.get("full", False)))
    if not started:
        status = job.status()
        status["message"] = "a sync is already running"
        return Json(status, status_code=409)
    if body.get("wait", True):
        await anyio.to_thread.run_sync(job.wait)
        status = job.status()
        return Json(status, status_code=502 if status["state"] == "failed" else 200)
    return Json(job.status(), status_code=202)
