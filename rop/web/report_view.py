"""The report page, its JSON twin and its CSV/XLSX exports, from one context."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rop.report.zones import zone_label
from rop.web import bidi, charts, i18n
from rop.web.builds import cached_build
from rop.web.cache import data_version
from rop.web.context import LAST_FILTER_COOKIE, Json, setup, sync_job
from rop.web.download import file_response
from rop.web.errors import BadInput
from rop.web.formatting import fmt_moment
from rop.web.options import Options, department_tree, names
from rop.web.params import SECTIONS, WebFilter, show_date
from rop.web.plans_section import plan_lines, trend_plan
from rop.web.stages_section import stage_blocks, stage_object, wanted
from rop.web.table import build_table, quiet


def _scoped_options(store: Any, opts: Options, viewer: int | None) -> Options:
    """The filter bar offers only the people (and their departments) the viewer sees."""
    if viewer is None:
        return opts
    from rop.report.scope import choosable_departments, viewer_scope

    scope = viewer_scope(store, opts.portal, viewer)
    if scope.everyone and not scope.excluded:
        return opts
    users = [u for u in opts.users if scope.sees(u["id"])]
    # The same departments the report accepts (rop.report.scope).
    depts = choosable_departments(store, str(opts.portal), viewer, scope)
    if depts is None:
        return replace(opts, users=users)
    return replace(opts, users=users, departments=[d for d in opts.departments if d["id"] in depts])


def report_context(request: Request) -> dict[str, Any]:
    """Everything the report page shows; the HTML and its JSON twin come from it."""
    store, opts, wf = setup(request)
    flt = wf.to_report_filter()
    key, built = built_report(request, store, opts, wf)
    report, pictures = built["report"], built["charts"]
    lang = wf.lang
    sentence = flt.describe(lang, names(opts))
    # The page shows each name in its own <bdi> (rop.web.bidi); the JSON twin the plain text.
    sentence_html = bidi.html(flt.describe(lang, bidi.isolated_names(names(opts))))
    opts = _scoped_options(store, opts, wf.viewer)
    urls = request.app.state.urls
    pairs = wf.pairs()
    return {
        "cache_key": key,  # not in the JSON twin
        "filter": wf,
        "sentence": sentence,
        "sentence_html": sentence_html,
        "report": report,
        "charts": charts.with_drill_links(pictures, wf, urls),
        "options": opts,
        "links": {
            "html": urls.report(pairs),
            # The twin and the workbook carry the stage section too (built when asked).
            "json": urls.report([*pairs, ("stages", "1")], "json"),
            "csv": urls.report(pairs, "csv"),
            "xlsx": urls.report([*pairs, ("stages", "1")], "xlsx"),
        },
    }


def built_report(
    request: Request, store: Any, opts: Options, wf: WebFilter
) -> tuple[tuple, dict[str, Any]]:
    """(cache key, {"report", "charts"}) for ``wf``: built once per filter, viewer and
    data version, shared by the report page, its twin, exports and manager pages."""
    from rop.report.build import build_report
    from rop.report.plans import plans_version
    from rop.report.trend import deal_trend

    flt = wf.to_report_filter()
    today = wf.today or opts.today()

    def build() -> dict[str, Any]:
        # It may run in a build thread (rop.web.builds), so on that thread's cursor.
        store = request.app.state.pool.get()
        # The stage section is built on its own, when asked (rop.web.stages_section).
        report = build_report(store, flt, portal=opts.portal, stages=False)
        pictures: dict[str, Any] = {"bars": charts.manager_bars(report)}
        if "deals" in wf.sections:
            chosen = wf.pipelines or tuple(p["id"] for p in opts.pipelines)
            pictures["funnels"] = charts.funnels(store, opts, chosen, flt)
            # The report layer's (rop.report.trend): the stored deal facts, the
            # report's own scope and relation, so each point equals its drill-down.
            pictures["trend"] = deal_trend(store, flt, opts.portal, today)
            planned = trend_plan(report, pictures["trend"])
            if planned is not None:
                # The plan line: won deals planned per day (or week), by working days.
                pictures["trend"]["plan_won"] = planned
                pictures["trend"]["plan_label"] = {"ru": "План (успешные)", "en": "Plan (won)"}
        return {"report": report, "charts": pictures}

    key = (
        "report",
        tuple(wf.pairs(lang=False)),
        (opts.portal, wf.viewer),
        today,
        data_version(store, opts.portal),
        plans_version(store),  # a saved plan changes the report, not the data
    )
    return key, cached_build(request.app.state.cache, key, build)


def _with_stages(request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
    """The report with its stage section (built apart, cached) when ``stages=1``, as
    the page's JSON and XLSX links ask: a plain request costs what the page costs."""
    if not wanted(request, False):
        return dict(ctx["report"])
    # In build_report's place (after "total"), so the JSON reads the same
    # key for key as `rop report` on the store (the CLI through a server).
    stages = stage_object(request)[0]
    out: dict[str, Any] = {}
    for key, value in ctx["report"].items():
        out[key] = value
        if key == "total":
            out["stages"] = stages
    out.setdefault("stages", stages)
    return out


def _report_json(request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
    return {
        "filter": ctx["filter"].as_json(),
        "sentence": ctx["sentence"],
        "report": _with_stages(request, ctx),
        "charts": ctx["charts"],
        "links": ctx["links"],
        "options": ctx["options"].as_json(),
    }


def report_page(request: Request) -> Response:
    from rop.report.filter import AccessDenied, ReportInputError
    from rop.web.link_scope import narrowed_url, shows_note

    try:
        ctx = report_context(request)
    except AccessDenied:
        # A clicked link naming someone outside the reader's rights: the report
        # they may see, with a note (rop.web.link_scope); a typed URL keeps its 403.
        target = narrowed_url(request)
        if target is None:
            raise
        return RedirectResponse(target, status_code=303)
    except (BadInput, ReportInputError) as exc:
        # A bad value keeps the page: the filter bar as chosen, the message in
        # place of the table (rop.web.problem_view); the JSON twin stays plain.
        from rop.web.problem_view import problem_page

        page = problem_page(request, exc)
        if page is None:
            raise
        return page
    wf: WebFilter = ctx["filter"]
    ctx["link_note"] = shows_note(request)
    sync = sync_job(request).status()
    # The page is a pure function of the cached report, the language, the
    # sync state and the viewer token its links carry, so its HTML is cached
    # alongside the report.
    key = (
        "html",
        ctx["cache_key"],
        wf.lang,
        tuple(wf.pairs()),
        sync["state"],
        sync["available"],
        request.app.state.urls.viewer_token(),
        wanted(request, False),  # ?stages=1: the stage section built in
        ctx["link_note"],
    )
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


def page_chrome(
    request: Request, wf: WebFilter, opts: Options, sync: dict[str, Any]
) -> dict[str, Any]:
    """What the page around the table shows (top bar, filter bar): the report
    page and the page that explains a bad filter share it."""
    from rop.report.periods import PRESETS

    lang = wf.lang
    urls = request.app.state.urls
    return {
        "request": request,
        "filter": wf,
        "options": opts,
        "lang": lang,
        "t": i18n.translator(lang),
        "preset_label": lambda key: i18n.preset_label(key, lang),
        "show_date": lambda day: show_date(day, lang),
        "typed": {},  # field -> text as typed, when it could not be read
        "lang_url": urls.with_lang(wf.pairs(), "en" if lang == "ru" else "ru"),
        "reset_url": urls.report([("lang", lang)]),
        "stages": opts.stages_of(wf.pipelines),
        "pipeline_names": {p["id"]: p["name"] for p in opts.pipelines},
        "sync": sync,
        "demo": request.app.state.settings.demo,
        "presets": PRESETS,
        "section_keys": SECTIONS,
        "viewer_label": _viewer_label(opts, wf.viewer, lang),
        # The portal's clock by its city, "Москва, UTC+3" (never "Etc/GMT-3").
        "zone": zone_label(opts.timezone, lang),
        "department_tree": department_tree(opts.departments),
        "entity_names": i18n.entity_names(lang),
        "problem": None,
        "invalid": None,  # the field the problem is in, marked for the reader
    }


def _render_report(request: Request, ctx: dict[str, Any], sync: dict[str, Any]) -> str:
    wf: WebFilter = ctx["filter"]
    lang = wf.lang
    urls = request.app.state.urls
    report = ctx["report"]
    currency = report.get("currency") or ctx["options"].currency
    table = build_table(report, wf, urls, lang, currency)
    template = request.app.state.templates.get_template("report.html")
    return template.render(
        {
            **ctx,
            **page_chrome(request, wf, ctx["options"], sync),
            "table": table,
            "currency": currency,
            "as_of": fmt_moment(report.get("data_as_of"), ctx["options"].timezone, lang),
            "compared_with": _compared_with(report, wf, urls) if wf.compare else None,
            "quiet": quiet(report),
            "quality_url": urls.quality(wf.pairs()),
            # None: the section loads when opened; ?stages=1 builds it in.
            "stage_blocks": stage_blocks(request) if wanted(request, False) else None,
            "stages_url": urls.stages(wf.pairs()),
            "stages_inline_url": urls.report([*wf.pairs(), ("stages", "1")]) + "#stages",
            "plans_url": urls.plans(
                [("lang", lang)]
                + ([("viewer", str(wf.viewer))] if wf.viewer_in_url and wf.viewer else [])
            ),
            "plans": plan_lines(
                report,
                lang,
                currency,
                lambda **who: urls.drill(wf.pairs(), "forecast_pipeline", **who),
            ),
        }
    )


def _span(period: dict[str, Any], lang: str) -> str:
    from datetime import date

    start, end = date.fromisoformat(period["from"]), date.fromisoformat(period["to"])
    return f"{show_date(start, lang)} – {show_date(end, lang)}"


def _compared_with(report: dict[str, Any], wf: WebFilter, urls: Any) -> dict[str, Any] | None:
    """The previous period the deltas compare with ("01.10.2026 – 28.10.2026") and,
    for a period that has not ended, which comparison it is, with a link to the other."""
    lang = wf.lang
    period = (report.get("previous") or {}).get("period") or {}
    try:
        shown = _span(period, lang)
    except (KeyError, TypeError, ValueError):
        return None
    out: dict[str, Any] = {"range": shown, "mode": period.get("mode"), "note": None}
    current = period.get("current")
    if not current or not period.get("ongoing"):
        return out
    previous = "full" if period.get("mode") == "to_date" else "to_date"
    if period.get("mode") == "to_date":
        note = i18n.text("compared_same_days", lang, current=_span(current, lang), previous=shown)
    else:
        note = i18n.text("compared_full_partial", lang, current=_span(current, lang))
    pairs = [(k, v) for k, v in wf.pairs() if k != "previous"]
    if previous != "to_date":
        pairs.append(("previous", previous))
    out.update(
        note=note,
        switch_url=urls.report(pairs),
        switch_text=i18n.text(f"compare_switch_{previous}", lang),
    )
    return out


def _viewer_label(opts: Options, viewer: int | None, lang: str) -> str | None:
    """Who is looking: "Кирилл Беляев (руководитель: Отдел продаж — Регионы)"."""
    if viewer is None:
        return None
    name = next((u["name"] for u in opts.users if u["id"] == viewer and u["name"]), None)
    name = bidi.isolate(name) if name else f"{i18n.text('user', lang)} #{viewer}"
    heads = [bidi.isolate(d["name"]) for d in opts.departments if d.get("head_id") == viewer]
    if heads:
        return f"{name} ({i18n.text('head_of', lang)}: {', '.join(heads)})"
    return name


def report_json(request: Request) -> Response:
    return Json(_report_json(request, report_context(request)))


def _report_export(request: Request, fmt: str) -> Response:
    from rop.report import export

    ctx = report_context(request)
    lang = ctx["filter"].lang
    to_file = export.report_to_xlsx if fmt == "xlsx" else export.report_to_csv
    report = _with_stages(request, ctx)
    body = to_file(report, lang=lang)
    return file_response(body, fmt, export.report_file_name(report, fmt))


def report_csv(request: Request) -> Response:
    return _report_export(request, "csv")


def report_xlsx(request: Request) -> Response:
    return _report_export(request, "xlsx")
