"""One manager's page (issue 15) and its JSON twin, from one context.

The figures are the report's own row for the manager (the same cached build
as the report page, rop.web.report_view.built_report), set against the
previous period and the department's average; the 12-week trend and the stuck
deals come from drill-downs (rop.report.manager), the funnel from the page's
funnel picture narrowed to the manager. Every number links to the records
behind it, with the report's filter; rights are the report's: a manager the
viewer may not see is a 403 before anything is built.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rop.web import bidi, charts, i18n
from rop.web.builds import cached_build
from rop.web.cache import data_version
from rop.web.context import Json, setup
from rop.web.errors import WebError
from rop.web.formatting import delta, fmt_value
from rop.web.options import Options
from rop.web.params import WebFilter, show_date


def _user_id(request: Request) -> int:
    return int(request.path_params["user_id"])


def _who(store: Any, opts: Options, user_id: int, row: dict[str, Any] | None) -> dict[str, Any]:
    """The manager as the page names them: the report's row, else the directory."""
    from rop.report.formatting import unknown_user_name

    found = store.query_dicts(
        "SELECT u.name, u.last_name, u.active, u.department_id, d.name AS department "
        "FROM users u LEFT JOIN departments d ON d.portal = u.portal AND d.id = u.department_id "
        "WHERE u.portal = ? AND u.id = ?",
        [opts.portal, user_id],
    )
    user = found[0] if found else None
    parts = ((user or {}).get("name"), (user or {}).get("last_name"))
    name = " ".join(p for p in parts if p)
    return {
        "user_id": user_id,
        "name_ru": name or unknown_user_name(user_id, "ru"),
        "name_en": name or unknown_user_name(user_id, "en"),
        "department_id": (row or {}).get("department_id", (user or {}).get("department_id")),
        "department": (row or {}).get("department") or (user or {}).get("department"),
        "dismissed": bool(user is not None and user["active"] is False),
        "unknown": user is None,
        "profile_url": (opts.portal_url or "") + f"/company/personal/user/{user_id}/",
    }


def _build_extras(
    request: Request, opts: Options, wf: WebFilter, user_id: int, today: date
) -> dict[str, Any]:
    """The parts only this page has: 12 weeks, the funnel, the stuck deals."""
    from rop.report.manager import stuck_deals, weekly_trend

    store = request.app.state.pool.get()
    flt = wf.to_report_filter()
    pipes = list(wf.pipelines or dict.fromkeys(p["id"] for p in opts.pipelines))
    out: dict[str, Any] = {
        "weeks": weekly_trend(store, flt, user_id, today, portal=opts.portal),
        "stuck": stuck_deals(store, flt, user_id, pipes, portal=opts.portal),
        "funnels": [],
    }
    if "deals" in wf.sections:
        # This manager's deals as the viewer sees them (the report's scope and grant).
        mine = replace(flt, managers=(user_id,), departments=())
        for f in charts.funnels(store, opts, pipes, mine):
            if f["steps"] and f["steps"][0]["count"]:
                out["funnels"].append(f)
    return out


def manager_context(request: Request) -> dict[str, Any]:
    """Everything the manager's page shows; the HTML and its JSON twin come from it."""
    from rop.metrics.errors import ReportInputError
    from rop.report.manager import check_manager, manager_figures, manager_filter
    from rop.report.plans import plans_version
    from rop.web.report_view import built_report

    store, opts, page_wf = setup(request)
    user_id = _user_id(request)
    # The page reads the report of the filter without its department/manager
    # narrowing: one manager, against their whole department.
    wf = page_wf.narrowed(departments=(), managers=(), by="manager")
    flt = manager_filter(wf.to_report_filter())
    try:
        today = check_manager(store, flt, user_id, opts.portal)
    except ReportInputError as exc:
        if exc.code == "unknown_user":
            raise WebError(404, exc.message(wf.lang)) from None
        raise
    _, built = built_report(request, store, opts, wf)
    report = built["report"]
    key = (
        "manager",
        user_id,
        tuple(wf.pairs(lang=False)),
        (opts.portal, wf.viewer),
        today,
        data_version(store, opts.portal),
        plans_version(store),
    )
    extras = cached_build(
        request.app.state.cache, key, lambda: _build_extras(request, opts, wf, user_id, today)
    )
    quality = _build_quality(request, store, opts, wf, flt, user_id, key)
    mine = manager_figures(report, user_id, _who(store, opts, user_id, None)["department_id"])
    who = _who(store, opts, user_id, mine["row"])
    urls = request.app.state.urls
    pairs = wf.pairs()
    return {
        "filter": wf,
        "options": opts,
        "today": today,
        "report": report,
        "manager": who,
        "mine": mine,
        "extras": _with_links(extras, wf, urls, user_id),
        "quality": quality,
        "links": {
            "html": urls.manager(pairs, user_id),
            "json": urls.manager(pairs, user_id, "json"),
            "report": urls.report(page_wf.pairs()),
        },
    }


def _with_links(extras: dict[str, Any], wf: WebFilter, urls: Any, uid: int) -> dict[str, Any]:
    """Each week's, funnel step's and stuck count's drill-down, as the report links them."""
    pairs = wf.pairs()
    weeks = dict(extras["weeks"])
    drill: dict[str, list[str]] = {}
    for name, key in (("new", "deals_new"), ("won", "deals_won"), ("lost", "deals_lost"),
                      ("calls", "calls_total")):  # fmt: skip
        if name not in weeks:
            continue
        drill[name] = [
            urls.drill(
                wf.narrowed(
                    period="custom", date_from=date.fromisoformat(a), date_to=date.fromisoformat(b)
                ).pairs(),
                key,
                user=uid,
            )
            for a, b in weeks["weeks"]
        ]
    weeks["drill"] = drill
    funnels = [
        {
            **f,
            "steps": [
                {**s, "drill": urls.drill(pairs, f"deal_funnel:{s['stage_id']}", user=uid)}
                for s in f["steps"]
            ],
        }
        for f in extras["funnels"]
    ]
    stuck = [{**s, "drill": urls.drill(pairs, s["figure"], user=uid)} for s in extras["stuck"]]
    return {"weeks": weeks, "funnels": funnels, "stuck": stuck}


def _figure_lines(ctx: dict[str, Any], urls: Any) -> list[dict[str, Any]]:
    """The figures by section, each value formatted and linked to its records."""
    wf: WebFilter = ctx["filter"]
    lang, report, uid = wf.lang, ctx["report"], ctx["manager"]["user_id"]
    currency = report.get("currency") or "RUB"
    pairs = wf.pairs()
    prev_period = (report.get("previous") or {}).get("period") or {}
    prev_pairs = None
    if prev_period.get("from"):
        prev_pairs = wf.narrowed(
            period="custom",
            date_from=date.fromisoformat(prev_period["from"]),
            date_to=date.fromisoformat(prev_period["to"]),
        ).pairs()
    dept = ctx["mine"]["department_id"]
    sections: list[dict[str, Any]] = []
    for f in ctx["mine"]["figures"]:
        kind = f.get("kind", "count")
        if not sections or sections[-1]["key"] != f["section"]:
            sections.append(
                {
                    "key": f["section"],
                    "label": i18n.text(f"section_{f['section']}", lang),
                    "lines": [],
                }
            )

        def worth(value: Any, kind: str = kind) -> bool:
            # A zero count has no records behind it; "—" has nothing to list.
            return value is not None and not (kind == "count" and value == 0)

        line = {
            "key": f["key"],
            "label": f.get(f"label_{lang}") or f["key"],
            "description": f.get(f"description_{lang}") or "",
            "value": fmt_value(kind, f["value"], currency, lang),
            "href": urls.drill(pairs, f["key"], user=uid) if worth(f["value"]) else None,
            "previous": None,
            "previous_href": None,
            "delta": None,
            "average": fmt_value(kind, f["department_average"], currency, lang)
            if f["department_value"] is not None
            else "—",
            "average_href": (
                urls.drill(pairs, f["key"], department=dept)
                if dept is not None
                else urls.drill(pairs, f["key"], none=True)
            )
            if worth(f["department_value"])
            else None,
        }
        if not f["now"] and wf.compare and "previous" in report:
            line["previous"] = fmt_value(kind, f["previous"], currency, lang)
            if prev_pairs is not None and worth(f["previous"]):
                line["previous_href"] = urls.drill(prev_pairs, f["key"], user=uid)
            if f["value"] or f["previous"]:
                line["delta"] = delta(f["key"], kind, f["value"], f["previous"], currency, lang)
        sections[-1]["lines"].append(line)
    return sections


def _span(start: str, end: str, lang: str) -> str:
    return (
        f"{show_date(date.fromisoformat(start), lang)} – {show_date(date.fromisoformat(end), lang)}"
    )


def _manager_json(ctx: dict[str, Any]) -> dict[str, Any]:
    report = ctx["report"]
    mine = ctx["mine"]
    return {
        "manager": ctx["manager"],
        "period": report["period"],
        "previous": (report.get("previous") or {}).get("period"),
        "today": ctx["today"].isoformat(),
        "currency": report.get("currency"),
        "filter": ctx["filter"].as_json(),
        "department": {
            "department_id": mine["department_id"],
            "managers": mine["department_managers"],
        },
        "figures": [
            {
                k: f[k]
                for k in (
                    "key",
                    "section",
                    "kind",
                    "label_ru",
                    "label_en",
                    "value",
                    "previous",
                    "now",
                    "department_value",
                    "department_average",
                    "averaged",
                )
            }  # fmt: skip
            for f in mine["figures"]
        ],
        "weeks": ctx["extras"]["weeks"],
        "funnels": ctx["extras"]["funnels"],
        "stuck": ctx["extras"]["stuck"],
        # The data-quality checks of this manager: the /quality.json row, drillable.
        "quality": manager_quality(ctx),
        "links": ctx["links"],
    }


def manager_quality(ctx: dict[str, Any]) -> dict[str, Any]:
    """The manager's data-quality problems (docs/WEB.md "The manager page"): the
    panel's row of this manager (rop.report.quality.manager_quality), each column
    with its drill-down; the JSON twin's ``quality`` and the page's section."""
    return ctx["quality"]


def _build_quality(
    request: Request, store: Any, opts: Options, wf: WebFilter, flt: Any, user_id: int, key: Any
) -> dict[str, Any]:
    """The data-quality checks of the page's filter and the app's settings, as the
    report's panel (rop.web.quality_view) counts them, cached by the page's key."""
    from rop.report.quality import manager_quality as one_manager
    from rop.web.quality_view import quality_settings

    settings = quality_settings(request)
    data = cached_build(
        request.app.state.cache,
        ("manager_quality", *key[1:], settings),
        lambda: one_manager(
            request.app.state.pool.get(), flt, user_id, settings, portal=opts.portal
        ),
    )
    urls = request.app.state.urls
    pairs = wf.pairs()

    def linked(cols: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**c, "drill": urls.drill(pairs, c["key"], user=user_id)} for c in cols]

    return {
        **data,
        "activity_columns": linked(data["activity_columns"]),
        "checks": [{**c, "columns": linked(c["columns"])} for c in data["checks"]],
        "columns": linked(data["columns"]),
    }


def _quality_view(quality: dict[str, Any], lang: str) -> dict[str, Any]:
    """The compact section: the score, and each check's non-zero count as a link."""
    from rop.web.formatting import fmt_count, fmt_share

    row = quality["row"]
    problems = [
        {
            "key": c["key"],
            "label": c[f"label_{lang}"],
            "description": c[f"description_{lang}"],
            "text": fmt_count(row["figures"][c["key"]], lang),
            "href": c["drill"],
        }
        for check in quality["checks"]
        for c in check["columns"]
        if row["figures"].get(c["key"])
    ]
    return {
        "score": fmt_share(row["score"], lang),
        "bad": row["open_with_problems"],
        "open": row["open_records"],
        "problems": problems,
        "settings": quality["settings"],
    }


def manager_json(request: Request) -> Response:
    return Json(_manager_json(manager_context(request)))


def manager_page(request: Request) -> Response:
    from rop.web.options import names

    ctx = manager_context(request)
    wf: WebFilter = ctx["filter"]
    lang = wf.lang
    urls = request.app.state.urls
    report = ctx["report"]
    prev = (report.get("previous") or {}).get("period") or {}
    weeks = ctx["extras"]["weeks"]
    week_rows = [
        {
            "name": name,
            "label": i18n.text("calls" if name == "calls" else name, lang),
            "cells": [
                {"value": n, "href": weeks["drill"][name][i] if n else None}
                for i, n in enumerate(weeks[name])
            ],
        }
        for name in ("new", "won", "lost", "calls")
        if name in weeks
    ]
    template = request.app.state.templates.get_template("manager.html")
    body = template.render(
        {
            **ctx,
            "request": request,
            "lang": lang,
            "t": i18n.translator(lang),
            "lang_url": _lang_url(urls, ctx, wf),
            "sections": _figure_lines(ctx, urls),
            "currency": report.get("currency") or "RUB",
            "name": ctx["manager"][f"name_{lang}"],
            "period_text": _span(report["period"]["from"], report["period"]["to"], lang),
            "previous_text": _span(prev["from"], prev["to"], lang)
            if prev.get("from") and wf.compare
            else None,
            **_compare_note(prev, wf, urls, ctx["manager"]["user_id"]),
            # Each week by its Monday, as the chart's axis: "07.09" / "Sep 7".
            "week_labels": [_week_label(date.fromisoformat(a), lang) for a, _ in weeks["weeks"]],
            "week_rows": week_rows,
            "average_tip": i18n.text(
                "department_average_tip", lang, n=ctx["mine"]["department_managers"]
            ),
            "quality_view": _quality_view(manager_quality(ctx), lang),
            "sentence_html": bidi.html(
                wf.to_report_filter().describe(lang, bidi.isolated_names(names(ctx["options"])))
            ),
            "charts_data": {"weekly": weeks, "funnels": ctx["extras"]["funnels"]},
        }
    )
    return HTMLResponse(body)


def _week_label(monday: date, lang: str) -> str:
    if lang == "ru":
        return monday.strftime("%d.%m")
    return f"{monday.strftime('%b')} {monday.day}"


def _compare_note(prev: dict[str, Any], wf: WebFilter, urls: Any, uid: int) -> dict[str, Any]:
    """For a period not yet over: which comparison (the same days, or the whole previous
    period) and a link to this page with the other one, as the report says it."""
    if not prev.get("ongoing") or not wf.compare:
        return {"compare_note": None, "compare_switch": None}
    lang = wf.lang
    current = _span(prev["current"]["from"], prev["current"]["to"], lang)
    if prev.get("mode") == "to_date":
        other = "full"
        note = i18n.text(
            "compared_same_days",
            lang,
            current=current,
            previous=_span(prev["from"], prev["to"], lang),
        )
    else:
        other = "to_date"
        note = i18n.text("compared_full_partial", lang, current=current)
    pairs = [(k, v) for k, v in wf.pairs() if k != "previous"]
    if other != "to_date":
        pairs.append(("previous", other))
    switch = {"url": urls.manager(pairs, uid), "text": i18n.text(f"compare_switch_{other}", lang)}
    return {"compare_note": note, "compare_switch": switch}


def _lang_url(urls: Any, ctx: dict[str, Any], wf: WebFilter) -> str:
    other = "en" if wf.lang == "ru" else "ru"
    kept = [(k, v) for k, v in wf.pairs() if k != "lang"]
    return urls.manager([*kept, ("lang", other)], ctx["manager"]["user_id"])
