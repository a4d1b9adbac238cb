"""The sync API: start a sync (waiting for it or not) and report its progress."""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from rop.web import i18n
from rop.web.context import Json, sync_job
from rop.web.errors import BadInput, WebError
from rop.web.params import parse_int

# What a viewer who is not a report administrator is told of a sync: whether it
# runs and how it ended, not how many records the whole portal has.
PUBLIC = ("available", "state", "full", "started_at", "finished_at", "runs")


def _sees_counts(request: Request) -> bool:
    """Report administrators see the sync's counts; so do the server's owner
    (``rop sync`` shows the token of ``<db>.server.json``) and the viewer-less
    server (ROP_VIEWER unset shows the whole portal anyway)."""
    from rop.web.local import is_local_caller

    app = request.app
    app_viewer = request.scope.get("rop.viewer")
    if app_viewer is not None:
        # Application mode: the portal's administrators, and the report's.
        from rop.report.scope import is_report_admin

        store = app.state.pool.get()
        return bool(app_viewer.admin) or is_report_admin(
            store, app_viewer.portal, app_viewer.user_id
        )
    # The command line's token (<db>.server.json), not the pages' one: every
    # viewer's page carries that.
    if is_local_caller(request):
        return True
    settings = app.state.settings
    viewer = settings.viewer
    if settings.demo and request.query_params.get("viewer"):
        viewer = parse_int(request.query_params["viewer"], "viewer", settings.language)
    if viewer is None:
        return True
    from rop.report.filter import ReportInputError
    from rop.report.portal import select_portal
    from rop.report.scope import is_report_admin

    store = app.state.pool.get()
    try:
        portal = select_portal(store).key
    except ReportInputError:
        return False
    return is_report_admin(store, portal, viewer)


def _shown(request: Request, status: dict[str, Any]) -> dict[str, Any]:
    if _sees_counts(request):
        return status
    return {**{k: status.get(k) for k in PUBLIC}, "progress": None, "message": ""}


def sync_status(request: Request) -> Response:
    return Json(_shown(request, sync_job(request).status()))


async def sync_start(request: Request) -> Response:
    """Start a sync. ``{"full": bool, "wait": bool}``; by default the answer waits
    for the end (``rop sync`` forwards here and reports the outcome), the page
    passes ``"wait": false`` and polls ``GET /api/sync`` for progress."""
    job = sync_job(request)
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
    full = bool(body.get("full", False))
    if full and not await anyio.to_thread.run_sync(_sees_counts, request):
        # Anyone may ask for the incremental sync (a few requests, and events
        # keep the data fresh anyway); a full copy re-reads the whole portal.
        raise WebError(403, i18n.text("sync_full_admins", lang), "ask_admin")
    from rop.web.queued_sync import QueueProblem

    try:
        # In a thread: server mode's job queues through the store (rop.web.queued_sync).
        started = await anyio.to_thread.run_sync(job.start, full)
    except QueueProblem as problem:
        raise WebError(409, i18n.text(problem.key, lang), "go_home") from None
    if not started:
        status = await anyio.to_thread.run_sync(_shown, request, job.status())
        status["message"] = "a sync is already running"
        return Json(status, status_code=409)
    if body.get("wait", True):
        await anyio.to_thread.run_sync(job.wait)
        status = job.status()
        failed = status["state"] == "failed"
        status = await anyio.to_thread.run_sync(_shown, request, status)
        return Json(status, status_code=502 if failed else 200)
    return Json(await anyio.to_thread.run_sync(_shown, request, job.status()), status_code=202)
