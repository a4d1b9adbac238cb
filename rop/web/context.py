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


def setup(request: Request) -> tuple[Any, Options, WebFilter]:
    settings = request.app.state.settings
    store = request.app.state.pool.get()
    version = data_version(store, None)
    opts = request.app.state.cache.get_or_build(("options", version), lambda: load_options(store))
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
        viewer=None if local else settings.viewer,
        demo=settings.demo or local,
    )
    return store, opts, wf
