"""What every route shares: JSON that carries dates, the parsed request
(store cursor, filter options, filter); file downloads are rop.web.download."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from rop.web import i18n
from rop.web.cache import data_version
from rop.web.errors import WebError
from rop.web.local import is_local_caller
from rop.web.options import Options, load_options
from rop.web.params import WebFilter, parse_filter

PAGE_SIZE = 50
LAST_FILTER_COOKIE = "rop_last_filter"


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class Json(JSONResponse):
    """JSON that also carries dates and datetimes (as ISO 8601)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, default=_default).encode("utf-8")


def request_portal(request: Request) -> tuple[str | None, int | None, bool]:
    """(portal key, viewer, demo) for this request: in application mode the
    gate (rop/web/appmode/gate.py) names the viewer's portal and user; else the
    settings' viewer and the store's portal, as always."""
    settings = request.app.state.settings
    viewer = request.scope.get("rop.viewer")
    if viewer is not None:
        return viewer.portal, viewer.user_id, False
    return request.scope.get("rop.portal"), settings.viewer, settings.demo


def setup(request: Request) -> tuple[Any, Options, WebFilter]:
    settings = request.app.state.settings
    store = request.app.state.pool.get()
    portal, viewer, demo = request_portal(request)
    # Server mode: ROP_PORTAL pins the app to one portal of a store holding
    # many, when the request does not name one (application mode does).
    portal = portal or settings.portal
    if portal is not None:
        store.use_portal(portal)
    version = data_version(store, portal)
    opts = request.app.state.cache.get_or_build(
        ("options", portal, version), lambda: load_options(store, portal)
    )
    lang = request.query_params.get("lang") or settings.language
    if opts.portal is None:
        raise WebError(404, i18n.text("no_portal", lang if lang in i18n.LANGS else "ru"))
    # The command line reads through the server as it reads the store: as
    # any viewer it names in the URL, or as nobody in particular (rop.web.local).
    local = is_local_caller(request)
    wf = parse_filter(
        request.query_params,
        opts,
        default_lang=settings.language,
        viewer=None if local else viewer,
        demo=demo or local,
    )
    return store, opts, wf


def sync_job(request: Request) -> Any:
    """The sync job of this request's portal (application mode), else the server's one."""
    viewer = request.scope.get("rop.viewer")
    if viewer is not None:
        return request.app.state.appmode.jobs.job(viewer.member_id)
    return request.app.state.sync
