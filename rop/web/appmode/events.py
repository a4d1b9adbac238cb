"""Bitrix24's events: checked, answered 200 at once, handed on.

Checks, in order (a refused event changes nothing): a name, a member_id and
``ts``; ``ts`` within ``EVENT_WINDOW`` of now; the portal installed (only
ONAPPINSTALL may name a new one, and it must prove itself through
``app.info``); the application_token saved at install (ONAPPUPDATE brings a
new one, so it may instead prove itself through ``app.info``); and the body
not seen before (a replay). Then: ONAPPINSTALL records the portal,
ONAPPUPDATE stores the new token and binds again, ONAPPUNINSTALL forgets the
tokens (and with ``CLEAN=1`` deletes the portal's data), and every other
event goes to ``AppMode.events`` (which queues a sync).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rop.bitrix.app_platform import bind_app
from rop.bitrix.errors import BitrixError
from rop.bitrix.installs import Installs, Tokens
from rop.web.appmode.payload import nest
from rop.web.appmode.refusal import refuse
from rop.web.appmode.state import AppMode
from rop.web.appmode.verify import Refused, verify_token
from rop.web.security import cross_site

log = logging.getLogger("rop.web.appmode.events")

EVENT_WINDOW = timedelta(minutes=10)


def _ok() -> Response:
    return JSONResponse({"result": True})


@cross_site
async def app_events(request: Request) -> Response:
    mode: AppMode = request.app.state.appmode
    raw = await request.body()
    form = await request.form()
    body = nest([(k, str(v)) for k, v in form.multi_items() if isinstance(v, str)])
    event = str(body.get("event") or "").upper()
    auth: dict[str, Any] = body["auth"] if isinstance(body.get("auth"), dict) else {}
    data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else {}
    member_id = str(auth.get("member_id") or "")
    ts_raw = str(body.get("ts") or "")
    if not event or not member_id or not ts_raw.isdigit():
        return refuse(400, "bad_event", json=True)
    if abs(time.time() - int(ts_raw)) > EVENT_WINDOW.total_seconds():
        return refuse(403, "stale_event", json=True)
    installs = mode.installs(request.app.state.pool.get())
    install = installs.get(member_id)
    token = str(auth.get("application_token") or "")
    try:
        if event == "ONAPPINSTALL":
            proven = await _proven(mode, auth)
            if not proven:
                raise Refused(403, "wrong_token")
        elif install is None or not install.active:
            raise Refused(403, "not_installed")
        elif not installs.token_matches(member_id, token) and (
            event != "ONAPPUPDATE" or not await _proven(mode, auth)
        ):
            raise Refused(403, "wrong_token")
    except Refused as no:
        log.warning("event %s for member %s refused: %s", event, member_id, no.reason)
        return refuse(no.status, no.reason, json=True)
    digest = hashlib.sha256(raw).hexdigest()
    if not installs.first_sight(member_id, digest, int(ts_raw), EVENT_WINDOW):
        return refuse(403, "replayed_event", json=True)

    if event == "ONAPPINSTALL":
        _record(installs, auth, data)
        mode.jobs.forget(member_id)  # installed again: it may sync again
        return _ok()
    if event == "ONAPPUPDATE":
        if token:
            installs.set_application_token(member_id, token)
        return JSONResponse({"result": True}, background=BackgroundTask(_rebind, mode, member_id))
    if event == "ONAPPUNINSTALL":
        clean = str(data.get("CLEAN") or "0") == "1"
        if mode.queued is not None:
            # PostgreSQL: the web process syncs nothing; the purge ends the
            # worker session holding the portal's lock (Installs.purge).
            if clean:
                removed = installs.purge(member_id)
                log.info("uninstalled with CLEAN=1 from member %s: %s", member_id, removed)
            else:
                installs.forget(member_id)
            return _ok()
        # DuckDB: the tokens go now (a later event is refused, a re-scan skips
        # the portal); the server's own running sync is cancelled and the
        # CLEAN=1 purge runs once it has stopped, after this answer.
        installs.forget(member_id)
        mode.jobs.uninstall(
            member_id, purge=functools.partial(mode.purge, member_id) if clean else None
        )
        return _ok()
    mode.events(member_id, event, body)
    return _ok()


async def _proven(mode: AppMode, auth: dict[str, Any]) -> bool:
    """Whether the event's own access token is vouched for by the auth server."""
    access = str(auth.get("access_token") or "")
    server = str(auth.get("server_endpoint") or "")
    domain = str(auth.get("domain") or "")
    if not access or not server:
        return False
    try:
        await verify_token(mode, server, access, str(auth.get("member_id") or ""), domain)
    except Refused:
        return False
    return True


def _record(installs: Installs, auth: dict[str, Any], data: dict[str, Any]) -> None:
    expires_in = str(auth.get("expires_in") or "3600")
    user = str(auth.get("user_id") or "")
    endpoint = str(auth.get("client_endpoint") or f"https://{auth.get('domain')}/rest/")
    installs.record(
        member_id=str(auth["member_id"]),
        domain=str(auth.get("domain") or ""),
        client_endpoint=endpoint,
        server_endpoint=str(auth.get("server_endpoint") or ""),
        application_token=str(auth.get("application_token") or ""),
        tokens=Tokens(
            str(auth["access_token"]),
            str(auth.get("refresh_token") or "") or None,
            datetime.now(UTC)
            + timedelta(seconds=int(expires_in) if expires_in.isdigit() else 3600),
        ),
        installer_id=int(user) if user.isdigit() else None,
    )


async def _rebind(mode: AppMode, member_id: str) -> None:
    """After an update Bitrix24 has dropped our placements and handlers: bind again."""
    cursor = mode.store.cursor()
    try:
        install = mode.installs(cursor).get(member_id)
    finally:
        cursor.close()
    if install is None or not install.active:
        return
    client = mode.portal_client(install.client_endpoint, member_id)
    try:
        await bind_app(
            client,
            mode.url("/app"),
            mode.url("/app/events"),
            offline=mode.settings.app_offline_events,
        )
    except BitrixError as error:
        log.warning("binding again after an update failed for member %s: %s", member_id, error)
    finally:
        await client.aclose()
