"""Bitrix24's entry points: the application page, the install page, events.

- ``/app`` (GET and POST: Bitrix24 POSTs frames): verify, identify the
  viewer, issue the viewer token, 303 to the report (or to the status page
  while the first copy runs).
- ``/app/install``: the same checks, then record the portal, bind placements
  and events, start the first full copy, and answer the page that calls
  ``installFinish`` through the frame library and shows the copy's progress.
- ``/app/status``: the portal's state and the copy's progress (behind the gate).
- ``/app/events``: events (rop/web/appmode/events.py).

These answer cross-site POSTs from Bitrix24 by design: they are verified by
tokens (app.info, application_token), not by origin.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from rop.bitrix.app_platform import bind_app
from rop.bitrix.errors import BitrixError
from rop.bitrix.installs import Tokens
from rop.web import i18n
from rop.web.appmode.events import app_events
from rop.web.appmode.link import checked_pairs, link_pairs
from rop.web.appmode.payload import Frame, fields
from rop.web.appmode.refusal import refuse
from rop.web.appmode.rights_page import rights_change, rights_page
from rop.web.appmode.state import AppMode
from rop.web.appmode.verify import Refused, check_application_token, verify_frame, viewer_of
from rop.web.appmode.viewer_token import ViewerClaim
from rop.web.link_scope import VIA
from rop.web.security import cross_site
from rop.web.urls import VIEWER_TOKEN

log = logging.getLogger("rop.web.appmode")


def _mode(request: Request) -> AppMode:
    mode: AppMode = request.app.state.appmode
    return mode


def _has_data(request: Request, portal: str) -> bool:
    store = request.app.state.pool.get()
    return bool(store.scalar("SELECT count(*) FROM portals WHERE portal = ?", [portal]))


def _signed(request: Request, token: str, build: Any) -> str:
    reset = VIEWER_TOKEN.set(token)
    try:
        return str(build(request.app.state.urls))
    finally:
        VIEWER_TOKEN.reset(reset)


@cross_site
async def app_open(request: Request) -> Response:
    """The application URL: the report, inside the portal's frame, for this viewer."""
    mode = _mode(request)
    frame = Frame.read(await fields(request))
    if frame is None:
        return refuse(401, "not_frame")
    try:
        await verify_frame(mode, frame)
        installs = mode.installs(request.app.state.pool.get())
        install = installs.get(frame.member_id)
        if install is None or not install.active:
            raise Refused(403, "not_installed")
        check_application_token(installs, install, frame.application_token)
        viewer = await viewer_of(install.client_endpoint, frame.auth_id)
    except Refused as no:
        return refuse(no.status, no.reason, frame.lang)
    token = mode.viewers.issue(ViewerClaim(frame.member_id, viewer.user_id, viewer.admin))
    mode.remember_viewer(install.member_id, install.portal, viewer.user_id, frame.auth_id)
    if _has_data(request, install.portal) and install.state == "installed":
        import anyio.to_thread

        try:
            await anyio.to_thread.run_sync(mode.ensure_grant, install.portal, viewer.user_id)
        except BitrixError as error:
            log.warning("rights of viewer %s not worked out: %s", viewer.user_id, error)
            return refuse(502, "rights_failed", frame.lang)
        # A link's params (a digest's filter, REST_APP_URI) open the report with it.
        wanted = link_pairs(frame.placement_options)
        pairs = checked_pairs(request.app.state.pool.get(), install.portal, wanted, frame.lang)
        if pairs:  # a link's filter: people outside the viewer's rights are dropped, with a note
            pairs.append(VIA)
        target = _signed(request, token, lambda u: u.report([("lang", frame.lang), *pairs]))
    else:
        target = _signed(request, token, lambda u: u.app_status(frame.lang))
    return RedirectResponse(target, status_code=303)


@cross_site
async def app_install(request: Request) -> Response:
    """The install URL: record the portal, bind, start the first copy, finish the install."""
    mode = _mode(request)
    frame = Frame.read(await fields(request))
    if frame is None:
        return refuse(401, "not_frame")
    try:
        info = await verify_frame(mode, frame)
        installs = mode.installs(request.app.state.pool.get())
        old = installs.get(frame.member_id)
        if old is not None and old.active:
            # Installing again over a live install: the portal must prove it is the same.
            check_application_token(installs, old, frame.application_token)
        endpoint = info.client_endpoint or f"https://{frame.domain}/rest/"
        viewer = await viewer_of(endpoint, frame.auth_id)
        if not viewer.admin:
            raise Refused(403, "not_admin")
    except Refused as no:
        return refuse(no.status, no.reason, frame.lang)
    expires = datetime.now(UTC) + timedelta(seconds=frame.auth_expires)
    install = installs.record(
        member_id=frame.member_id,
        domain=frame.domain,
        client_endpoint=endpoint,
        server_endpoint=frame.server_endpoint,
        application_token=frame.application_token,
        tokens=Tokens(frame.auth_id, frame.refresh_id or None, expires),
        installer_id=viewer.user_id,
    )
    mode.jobs.forget(frame.member_id)  # a job made before the install has no endpoint
    client = mode.portal_client(install.client_endpoint, install.member_id)
    try:
        await bind_app(
            client,
            mode.url("/app"),
            mode.url("/app/events"),
            frame.lang,
            offline=mode.settings.app_offline_events,
        )
    except BitrixError as error:
        return refuse(502, "bind_failed", frame.lang, detail=str(error))
    finally:
        await client.aclose()
    mode.jobs.start(install.member_id, full=True)
    token = mode.viewers.issue(ViewerClaim(frame.member_id, viewer.user_id, viewer.admin))
    mode.remember_viewer(install.member_id, install.portal, viewer.user_id, frame.auth_id)
    log.info("installed on %s (member %s)", install.domain, install.member_id)
    reset = VIEWER_TOKEN.set(token)
    try:
        return _status_page(request, install.member_id, frame.lang, installing=True)
    finally:
        VIEWER_TOKEN.reset(reset)


def app_status(request: Request) -> Response:
    """The portal's state and its copy's progress; the gate has checked the viewer."""
    viewer = request.scope.get("rop.viewer")
    if viewer is None:
        return refuse(401, "not_installed")
    lang = "en" if request.query_params.get("lang") == "en" else "ru"
    return _status_page(request, viewer.member_id, lang, installing=False)


def _status_page(request: Request, member_id: str, lang: str, installing: bool) -> Response:
    mode = _mode(request)
    install = mode.installs(request.app.state.pool.get()).get(member_id)
    assert install is not None
    job = mode.jobs.job(member_id)
    urls = request.app.state.urls
    template = request.app.state.templates.get_template("app_status.html")
    body = template.render(
        {
            "lang": lang,
            "t": i18n.translator(lang),
            "installing": installing,
            "install": install,
            "sync": job.status(),
            "report_url": urls.report([("lang", lang)]),
            "sync_url": urls.api_sync(),
            "entity_names": i18n.entity_names(lang),
        }
    )
    return HTMLResponse(body)


def data_version_api(request: Request) -> Response:
    """What the page polls to reload itself when its portal's data changed
    (an event's sync, a scheduled one): a short fingerprint, nothing else."""
    import hashlib

    from starlette.responses import JSONResponse

    from rop.web.cache import data_version

    viewer = request.scope.get("rop.viewer")
    if viewer is None:
        return refuse(401, "not_installed", json=True)
    version = data_version(request.app.state.pool.get(), viewer.portal)
    digest = hashlib.sha256(repr(version).encode()).hexdigest()[:16]
    return JSONResponse({"version": digest}, headers={"cache-control": "no-store"})


ROUTES = [
    Route("/api/data-version", data_version_api, methods=["GET"]),
    Route("/app", app_open, methods=["GET", "POST"]),
    Route("/app/install", app_install, methods=["GET", "POST"]),
    Route("/app/status", app_status, methods=["GET"]),
    Route("/app/events", app_events, methods=["POST"]),
    Route("/app/rights", rights_page, methods=["GET"]),
    Route("/app/rights", rights_change, methods=["POST"]),
]
