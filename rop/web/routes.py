"""Thin routes: parse the request, build one context, render it as HTML, JSON,
CSV or XLSX. The report engine does the work."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from rop.web import charts, i18n
from rop.web.cache import data_version
from rop.web.errors import BadInput, WebError
from rop.web.formatting import fmt_moment
from rop.web.options import Options, load_options
from rop.web.params import SECTIONS, WebFilter, parse_filter, parse_int
from rop.web.table import build_table

PAGE_SIZE = 50
LAST_FILTER_COOKIE = "rop_last_filter"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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


# -- shared request parsing ------------------------------------------------


def _setup(request: Request) -> tuple[Any, Options, WebFilter]:
    settings = request.app.state.settings
    store = request.app.state.pool.get()
    version = data_version(store, None)
    opts = request.app.state.cache.get_or_build(("options", version), lambda: load_options(store))
    lang = request.query_params.get("lang") or settings.language
    if opts.portal is None:
        raise WebError(404, i18n.text("no_portal", lang if lang in i18n.LANGS else "ru"))
    wf = parse_filter(
        request.query_params,
        opts,
        default_lang=settings.language,
        viewer=settings.viewer,
        demo=settings.demo,
    )
    return store, opts, wf


def _chart_users(store: Any, flt: Any, opts: Options) -> tuple[list[int] | None, list[int]]:
    """Whose deals the pictures count: the report's own scope (viewer and filter),
    as (only these users or None for everyone, minus these)."""
    from rop.report.context import prepare

    scope = prepare(store, flt, opts.portal).scope
    if scope.everyone:
        return None, sorted(scope.excluded)
    return sorted(scope.users), []


def _scoped_options(store: Any, opts: Options, viewer: int | None) -> Options:
    """The filter bar offers only the people (and their departments) the viewer sees."""
    if viewer is None:
        return opts
    from rop.report.scope import viewer_scope

    scope = viewer_scope(store, opts.portal, viewer)
    if scope.everyone and not scope.excluded:
        return opts
    users = [u for u in opts.users if scope.sees(u["id"])]
    depts = {u["department_id"] for u in users}
    return replace(opts, users=users, departments=[d for d in opts.departments if d["id"] in depts])


def report_context(request: Request) -> dict[str, Any]:
    """Everything the report page shows; the HTML and its JSON twin come from it."""
    from rop.report.build import build_report

    store, opts, wf = _setup(request)
    flt = wf.to_report_filter()

    def build() -> dict[str, Any]:
        report = build_report(store, flt, portal=opts.portal)
        users, exclude = _chart_users(store, flt, opts)
        pictures: dict[str, Any] = {"bars": charts.manager_bars(report)}
        if "deals" in wf.sections:
            chosen = wf.pipelines or tuple(p["id"] for p in opts.pipelines)
            pictures["funnels"] = [
                charts.funnel(store, opts, pid, wf.date_from, wf.date_to, users, exclude)
                for pid in chosen
            ]
            pictures["trend"] = charts.trend(
                store, opts, wf.date_from, wf.date_to, wf.pipelines, users, opts.today(), exclude
            )
        return {"report": report, "charts": pictures}

    key = (
        "report",
        tuple(wf.pairs(lang=False)),
        wf.viewer,
        opts.today(),
        data_version(store, opts.portal),
    )
    built = request.app.state.cache.get_or_build(key, build)
    report, pictures = built["report"], built["charts"]
    lang = wf.lang
    opts = _scoped_options(store, opts, wf.viewer)
    urls = request.app.state.urls
    pairs = wf.pairs()
    return {
        "cache_key": key,  # not in the JSON twin
        "filter": wf,
        "sentence": flt.describe(lang),
        "report": report,
        "charts": pictures,
        "options": opts,
        "links": {
            "html": urls.report(pairs),
            "json": urls.report(pairs, "json"),
            "csv": urls.report(pairs, "csv"),
            "xlsx": urls.report(pairs, "xlsx"),
        },
    }


def _report_json(ctx: dict[str, Any]) -> dict[str, Any]:
    return {
        "filter": ctx["filter"].as_json(),
        "sentence": ctx["sentence"],
        "report": ctx["report"],
        "charts": ctx["charts"],
        "links": ctx["links"],
        "options": ctx["options"].as_json(),
    }


# -- pages ---------------------------------------------------------------


def home(request: Request) -> Response:
    """The last filter used in this browser, or the default report."""
    urls = request.app.state.urls
    last = request.cookies.get(LAST_FILTER_COOKIE)
    if last and not request.query_params:
        # Only query pairs are kept, so this can never redirect off-site; a
        # damaged cookie just falls back to the default report.
        try:
            pairs = [(str(k), str(v)) for k, v in json.loads(last)]
        except (ValueError, TypeError):
            pairs = []
        return RedirectResponse(urls.report([]) + ("?" + urlencode(pairs) if pairs else ""), 303)
    return RedirectResponse(urls.report(list(request.query_params.multi_items())), 303)


def report_page(request: Request) -> Response:
    ctx = report_context(request)
    wf: WebFilter = ctx["filter"]
    sync = request.app.state.sync.status()
    # The page is a pure function of the cached report, the language and the
    # sync state, so its HTML is cached alongside the report.
    key = ("html", ctx["cache_key"], wf.lang, tuple(wf.pairs()), sync["state"], sync["available"])
    body = request.app.state.cache.get_or_build(key, lambda: _render_report(request, ctx, sync))
    response = HTMLResponse(body)
    response.set_cookie(
        LAST_FILTER_COOKIE,
        json.dumps(wf.pairs()),
        max_age=365 * 24 * 3600,
        samesite="lax",
        httponly=True,
    )
    return response


def _render_report(request: Request, ctx: dict[str, Any], sync: dict[str, Any]) -> str:
    from rop.report.periods import PRESETS

    wf: WebFilter = ctx["filter"]
    lang = wf.lang
    urls = request.app.state.urls
    report = ctx["report"]
    currency = report.get("currency") or ctx["options"].currency
    table = build_table(report, wf, urls, lang, currency)
    settings = request.app.state.settings
    template = request.app.state.templates.get_template("report.html")
    return template.render(
        {
            **ctx,
            "request": request,
            "lang": lang,
            "t": i18n.translator(lang),
            "preset_label": lambda key: i18n.preset_label(key, lang),
            "table": table,
            "currency": currency,
            "lang_url": urls.with_lang(wf.pairs(), "en" if lang == "ru" else "ru"),
            "reset_url": urls.report([("lang", lang)]),
            "stages": ctx["options"].stages_of(wf.pipelines),
            "pipeline_names": {p["id"]: p["name"] for p in ctx["options"].pipelines},
            "sync": sync,
            "demo": settings.demo,
            "presets": PRESETS,
            "section_keys": SECTIONS,
            "as_of": fmt_moment(report.get("data_as_of"), ctx["options"].timezone, lang),
        }
    )


def report_json(request: Request) -> Response:
    return Json(_report_json(report_context(request)))


def _report_export(request: Request, fmt: str) -> Response:
    from rop.report import export

    ctx = report_context(request)
    wf: WebFilter = ctx["filter"]
    report = ctx["report"]
    name = f"rop-report-{wf.date_from}-{wf.date_to}.{fmt}"
    if fmt == "xlsx":
        body = _as_bytes(export.report_to_xlsx(report, lang=wf.lang))
        media = XLSX
    else:
        body = _as_bytes(export.report_to_csv(report, lang=wf.lang))
        media = "text/csv; charset=utf-8"
    return Response(
        body, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'}
    )


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        # A byte-order mark lets Excel open a UTF-8 CSV with Cyrillic intact.
        return ("\ufeff" + value).encode("utf-8")
    raise TypeError(f"unexpected export type {type(value).__name__}")


def report_csv(request: Request) -> Response:
    return _report_export(request, "csv")


def report_xlsx(request: Request) -> Response:
    return _report_export(request, "xlsx")


# -- drill-down ------------------------------------------------------------


def _drill_args(request: Request, lang: str) -> dict[str, Any]:
    q = request.query_params
    figure = q.get("figure")
    if not figure:
        raise BadInput(i18n.text("missing", lang, field="figure"))
    return {
        "figure": figure,
        "user": parse_int(q["user"], "user", lang) if q.get("user") else None,
        "department": parse_int(q["dept"], "dept", lang) if q.get("dept") else None,
        "key": q.get("row") or None,
        "sort": q.get("sort") or None,
        "desc": q.get("desc") in ("1", "true"),
        "offset": parse_int(q["offset"], "offset", lang) if q.get("offset") else 0,
    }


def drill_context(request: Request, limit: int | None = PAGE_SIZE) -> dict[str, Any]:
    from rop.report.build import drill

    store, opts, wf = _setup(request)
    args = _drill_args(request, wf.lang)
    if limit is None:
        args["offset"] = 0  # an export lists every record, whatever page is shown
    flt = wf.to_report_filter()
    cache_key = (
        "drill",
        tuple(wf.pairs(lang=False)),
        wf.viewer,
        tuple(sorted(args.items())),
        limit,
        opts.today(),
        data_version(store, opts.portal),
    )
    result = request.app.state.cache.get_or_build(
        cache_key,
        lambda: drill(
            store,
            flt,
            args["figure"],
            user_id=args["user"],
            department_id=args["department"],
            key=args["key"],
            portal=opts.portal,
            sort=args["sort"],
            desc=args["desc"],
            offset=args["offset"],
            limit=limit,
        ),
    )
    urls = request.app.state.urls
    pairs = wf.pairs()
    target = {"user": args["user"], "department": args["department"], "key": args["key"]}

    def link(fmt: str = "", **changes: Any) -> str:
        a = {"sort": args["sort"], "desc": args["desc"], "offset": args["offset"], **changes}
        return urls.drill(pairs, args["figure"], fmt=fmt, **target, **a)

    return {
        "filter": wf,
        "args": args,
        "sentence": flt.describe(wf.lang),
        "about": _figure_about(result["figure"], wf.lang),
        "who": _who(opts, args, wf.lang, wf.by),
        "drill": result,
        "options": opts,
        "link": link,
        "links": {
            "json": link("json"),
            "csv": link("csv", offset=0),
            "xlsx": link("xlsx", offset=0),
            "report": urls.report(pairs),
        },
    }


def _figure_about(key: str, lang: str) -> str:
    """The figure's definition from the catalogue, shown under the panel title."""
    from rop.metrics.catalogue import figure

    fig = figure(key)
    return str(getattr(fig, f"description_{lang}", "") or "")


def _who(opts: Options, args: dict[str, Any], lang: str, by: str = "manager") -> str | None:
    """Whose records these are: a manager, a department, a row, or everyone."""
    if args["user"] is not None:
        name = next((u["name"] for u in opts.users if u["id"] == args["user"]), None)
        return name or f"{i18n.text('user', lang)} #{args['user']}"
    if args["department"] is not None:
        name = next((d["name"] for d in opts.departments if d["id"] == args["department"]), None)
        return f"{i18n.text('department', lang)}: {name or args['department']}"
    if args["key"] is not None:
        names: dict[str, str] = {}
        if by == "pipeline":
            names = {str(p["id"]): p["name"] for p in opts.pipelines}
        elif by == "department":
            names = {str(d["id"]): d["name"] for d in opts.departments}
        return f"{i18n.text(by, lang)}: {names.get(str(args['key']), args['key'])}"
    return i18n.text("total", lang)


def drill_page(request: Request) -> Response:
    ctx = drill_context(request)
    wf: WebFilter = ctx["filter"]
    lang = wf.lang
    fragment = request.headers.get("hx-request") == "true"
    total = ctx["drill"].get("total_records", len(ctx["drill"].get("records", [])))
    offset = ctx["args"]["offset"]
    return request.app.state.templates.TemplateResponse(
        request,
        "drill_panel.html" if fragment else "drill_page.html",
        {
            **ctx,
            "lang": lang,
            "t": i18n.translator(lang),
            "currency": ctx["options"].currency,
            "total": total,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "prev_url": ctx["link"](offset=max(0, offset - PAGE_SIZE)) if offset > 0 else None,
            "next_url": ctx["link"](offset=offset + PAGE_SIZE)
            if offset + PAGE_SIZE < total
            else None,
            "lang_url": request.app.state.urls.with_lang(
                wf.pairs(), "en" if lang == "ru" else "ru"
            ),
        },
    )


def drill_json(request: Request) -> Response:
    ctx = drill_context(request)
    return Json(
        {
            "filter": ctx["filter"].as_json(),
            "sentence": ctx["sentence"],
            **ctx["drill"],
            "links": ctx["links"],
        }
    )


def _drill_export(request: Request, fmt: str) -> Response:
    from rop.report import export

    ctx = drill_context(request, limit=None)
    wf: WebFilter = ctx["filter"]
    name = f"rop-drill-{ctx['args']['figure'].replace(':', '_')}-{wf.date_from}-{wf.date_to}.{fmt}"
    if fmt == "xlsx":
        body = _as_bytes(export.drill_to_xlsx(ctx["drill"], lang=wf.lang))
        media = XLSX
    else:
        body = _as_bytes(export.drill_to_csv(ctx["drill"], lang=wf.lang))
        media = "text/csv; charset=utf-8"
    return Response(
        body, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'}
    )


def drill_csv(request: Request) -> Response:
    return _drill_export(request, "csv")


def drill_xlsx(request: Request) -> Response:
    return _drill_export(request, "xlsx")


# -- sync API ------------------------------------------------------------


def sync_status(request: Request) -> Response:
    return Json(request.app.state.sync.status())


async def sync_start(request: Request) -> Response:
    """Start a sync. ``{"full": bool, "wait": bool}``; by default the answer waits
    for the end (``rop sync`` forwards here and reports the outcome), the page
    passes ``"wait": false`` and polls ``GET /api/sync`` for progress."""
    job = request.app.state.sync
    lang = request.app.state.settings.language
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
    if not shape_ok:
        raise BadInput('the body must be JSON such as {"full": false, "wait": false}')
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


ROUTES = [
    Route("/", home),
    Route("/report", report_page),
    Route("/report.json", report_json),
    Route("/report.csv", report_csv),
    Route("/report.xlsx", report_xlsx),
    Route("/drill", drill_page),
    Route("/drill.json", drill_json),
    Route("/drill.csv", drill_csv),
    Route("/drill.xlsx", drill_xlsx),
    Route("/api/sync", sync_status, methods=["GET"]),
    Route("/api/sync", sync_start, methods=["POST"]),
]
