"""A link into the app, read back: ``PLACEMENT_OPTIONS`` -> the report's filter.

A digest links to ``https://PORTAL/marketplace/view/<code>/?params[period]=custom
&params[from]=...`` (rop.digests.content.Links). Bitrix24 opens the app's
``REST_APP_URI`` handler (our /app, bound at install) and hands the params
over as ``PLACEMENT_OPTIONS``, a JSON string: ``{"period": "custom", "from":
"2026-11-23", ...}`` (widgets/universal/app-url.md). /app opens the report
with that filter.

They come from a URL anyone can write, so they are input like any other:
only the filter's own keys are kept, a list (PHP's ``params[k][]``) is joined
as the page's comma-separated form, and the whole is checked by the page's
own parser. Anything it refuses opens the default report instead, never an
error page: the reader clicked a link, and the report is still what they want.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.datastructures import QueryParams

from rop.store.db import Store

log = logging.getLogger("rop.web.appmode")

# The report filter's URL names a link may carry (rop/web/params.py); the
# language stays the portal's (the frame's LANG), not the link's.
KEYS = ("period", "from", "to", "previous", "pipeline", "department", "manager", "section")
MAX_CHARS = 2000  # far above any digest's filter; a longer value is not ours


def link_pairs(raw: str) -> list[tuple[str, str]]:
    """The filter's query pairs from ``PLACEMENT_OPTIONS``; [] when there is none."""
    if not raw or len(raw) > 8 * MAX_CHARS:
        return []
    try:
        options = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(options, dict):
        return []
    pairs = []
    for key in KEYS:
        value: Any = options.get(key)
        if isinstance(value, list):
            value = ",".join(str(v) for v in value if isinstance(v, str | int))
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip() and len(value) <= MAX_CHARS:
            pairs.append((key, value.strip()))
    return pairs


def checked_pairs(
    store: Store, portal: str, pairs: list[tuple[str, str]], lang: str
) -> list[tuple[str, str]]:
    """``pairs`` when the report page would take them, else [] (the default report)."""
    if not pairs:
        return []
    from rop.report.scope import is_known_user
    from rop.web.errors import BadInput
    from rop.web.options import load_options
    from rop.web.params import parse_filter

    try:
        wf = parse_filter(QueryParams(pairs), load_options(store, portal), default_lang=lang)
    except BadInput as bad:
        log.info("a link's params were refused (%s): the default report opens", bad)
        return []
    if not all(is_known_user(store, portal, m) for m in wf.managers):
        log.info("a link named an unknown manager: the default report opens")
        return []
    return pairs
