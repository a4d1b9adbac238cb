"""The report page when its filter cannot be used (HTTP 400).

Instead of a page that only says what was wrong, the reader keeps the filter
bar with what they chose (a date typed wrong stays as typed) and the message
stands where the table would be, so the field is corrected on the spot. The
JSON twin and the exports keep answering with the plain error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rop.store.db import Store
from rop.web import errors
from rop.web.cache import data_version
from rop.web.context import request_portal, setup, sync_job
from rop.web.errors import BadInput
from rop.web.formatting import fmt_moment
from rop.web.options import Options, load_options
from rop.web.params import WebFilter, parse_date, parse_filter
from rop.web.report_view import _scoped_options, page_chrome

Pairs = list[tuple[str, str]]

# A bad date or period is dropped as a whole (the three only make sense together).
PERIOD_FIELDS = ("period", "from", "to")
# Fields whose text is shown back as typed; the others show their choices.
TYPED_FIELDS = ("from", "to", "min_call", "max_call")
# Each round drops at least one pair, so this only bounds a pathological URL.
MAX_ROUNDS = 50


def _drop(pairs: Pairs, field: str, value: object) -> Pairs:
    """``pairs`` without the bad value of ``field`` (the whole field when the
    value cannot be told apart, or it is the period)."""
    if field in PERIOD_FIELDS:
        return [(k, v) for k, v in pairs if k not in PERIOD_FIELDS]
    if value is not None:
        bad = str(value).strip()
        kept: Pairs = []
        for key, raw in pairs:
            if key != field:
                kept.append((key, raw))
                continue
            # List fields come as repeated pairs or as "1,2,3": drop only the bad part.
            parts = [p for p in raw.split(",") if p.strip() and p.strip() != bad]
            if parts:
                kept.append((key, ",".join(parts)))
        if kept != pairs:
            return kept
    return [(k, v) for k, v in pairs if k != field]


def salvage(
    query: QueryParams, parse: Callable[[QueryParams], WebFilter]
) -> tuple[WebFilter, dict[str, str]] | None:
    """The filter with every bad value left out, and the texts to show as typed.

    None when a problem cannot be pinned to a field (then the plain error page).
    """
    pairs: Pairs = list(query.multi_items())
    typed: dict[str, str] = {}
    wants_custom = False
    for _ in range(MAX_ROUNDS):
        try:
            wf = parse(QueryParams(pairs))
        except BadInput as exc:
            if exc.field is None:
                return None
            kept = _drop(pairs, exc.field, exc.value)
            if kept == pairs:
                return None
            dropped = [(k, v) for k, v in pairs if k in TYPED_FIELDS and (k, v) not in kept]
            typed.update(dropped)
            if exc.field in PERIOD_FIELDS:
                period = query.get("period") or ("custom" if query.get("from") else "")
                wants_custom = period == "custom"
                typed.update((k, query[k]) for k in ("from", "to") if k in query)
            pairs = kept
            continue
        if wants_custom:
            # The reader chose their own dates: keep "custom" next to them.
            wf = replace(wf, period="custom")
        return wf, typed
    return None


def _readable_dates(wf: WebFilter, typed: dict[str, str]) -> tuple[WebFilter, dict[str, str]]:
    """A date that reads fine is shown the page's way (and set in the picker);
    only the unreadable one stays as typed, for the reader to correct."""
    typed = dict(typed)
    for name, attr in (("from", "date_from"), ("to", "date_to")):
        if name not in typed:
            continue
        try:
            day = parse_date(typed[name], name, wf.lang)
        except BadInput:
            continue
        if day.year < 1000:
            continue  # 0026-01-01 would print as 01.01.26: show it as typed
        wf = wf.narrowed(**{attr: day})
        del typed[name]
    return wf, typed


def _data_as_of(store: Store, portal: str | None) -> str | None:
    """The same "data as of" moment the report page shows (the engine's)."""
    from rop.report.portal import data_as_of, select_portal

    return data_as_of(store, select_portal(store, portal))


def problem_page(request: Request, exc: Exception) -> Response | None:
    """The report page with ``exc``'s message in place of the table (status 400),
    or None when the plain error page should answer instead."""
    if request.headers.get("hx-request") == "true":
        return None  # a fragment for the drill panel: the plain error does that
    state = request.app.state
    settings = state.settings
    if isinstance(exc, BadInput):
        store = state.pool.get()
        portal, viewer, demo = request_portal(request)
        # Server mode: ROP_PORTAL pins the app to one portal of a store holding
        # many, when the request does not name one (application mode does).
        portal = portal or settings.portal
        if portal is not None:
            store.use_portal(portal)
        version = data_version(store, portal)
        opts: Options = state.cache.get_or_build(
            ("options", portal, version), lambda: load_options(store, portal)
        )
        if opts.portal is None:
            return None

        def parse(q: QueryParams) -> WebFilter:
            return parse_filter(q, opts, default_lang=settings.language, viewer=viewer, demo=demo)

        found = salvage(request.query_params, parse)
        if found is None:
            return None
        wf, typed = found
        wf, typed = _readable_dates(wf, typed)
    else:
        # The URL read fine; the report refused the filter as a whole.
        store, opts, wf = setup(request)
        typed = {}
    status, message, hint_key = errors.classify(exc, wf.lang)
    problem = errors.describe(status, message, hint_key, wf.lang)
    opts = _scoped_options(store, opts, wf.viewer)
    sync = sync_job(request).status()
    as_of = _data_as_of(store, opts.portal)
    template = state.templates.get_template("report.html")
    body = template.render(
        {
            **page_chrome(request, wf, opts, sync),
            "typed": typed,
            "invalid": getattr(exc, "field", None),
            "problem": problem,
            "home_url": state.urls.report([("lang", wf.lang)]),
            "fragment": False,
            "error": problem,
            "sentence": "",
            "links": {},
            "charts": {},
            "table": None,
            "currency": opts.currency,
            "as_of": fmt_moment(as_of, opts.timezone, wf.lang),
            "compared_with": None,
            "quiet": False,
        }
    )
    return HTMLResponse(body, status_code=status)
