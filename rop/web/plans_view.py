"""The plans page: a grid of monthly plans, its JSON, saving, copying, the template.

Thin: rop.report.plans and rop.report.plans_file do the work. Every write is
a JSON POST (the page's static plans.js sends them), so the same-origin guard
for state-changing routes applies; the viewer is the report's (settings or,
on a demo or local server, ``?viewer=``), and their rights decide (403).
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rop.web import i18n
from rop.web.context import Json, setup
from rop.web.download import file_response
from rop.web.errors import BadInput
from rop.web.jsonbody import json_object

MAX_BODY = 4 * 1024 * 1024  # an imported file, base64: a few thousand lines fit


def _year(request: Request, today: date) -> int:
    text = request.query_params.get("year")
    if not text:
        return today.year
    if not text.isdigit() or not 2000 <= int(text) <= 2100:
        raise BadInput(f"year: {text!r}", field="year", value=text)
    return int(text)


def grid(store: Any, portal: str, year: int, figure: str, viewer: int | None) -> dict[str, Any]:
    """Departments and managers the viewer sees, a plan per month of ``year``."""
    from rop.report.plans import PlanPeriod, check_figure, editable, list_plans
    from rop.report.plans_file import template_rows

    check_figure(figure)
    months = [PlanPeriod("month", date(year, m, 1)) for m in range(1, 13)]
    plans = {
        (p["subject"], p["subject_id"], p["period"]): p["value"]
        for p in list_plans(store, portal, viewer=viewer, periods=months)
        if p["figure"] == figure
    }
    rights = editable(store, portal, viewer)
    rows = []
    seen = set()
    for subject, sid, name, *_ in template_rows(store, portal, months[0], viewer=viewer):
        if (subject, sid) in seen:
            continue
        seen.add((subject, sid))
        may = rights is None or sid in (rights[0] if subject == "department" else rights[1])
        rows.append({
            "subject": subject, "id": sid, "name": name, "editable": may,
            "plans": [plans.get((subject, sid, m.key)) for m in months],
        })  # fmt: skip
    return {"year": year, "figure": figure, "months": [m.key for m in months], "rows": rows}


def _context(request: Request) -> tuple[Any, str, int | None, str]:
    store, opts, wf = setup(request)
    return store, str(opts.portal), wf.viewer, wf.lang


def plans_json(request: Request) -> Response:
    store, portal, viewer, _ = _context(request)
    from rop.report.periods import local_today, zone
    from rop.report.portal import select_portal

    today = local_today(zone(select_portal(store, portal).timezone))
    figure = request.query_params.get("figure") or "deals_won_amount"
    return Json(grid(store, portal, _year(request, today), figure, viewer))


def plans_page(request: Request) -> Response:
    from rop.metrics.catalogue import STATIC
    from rop.report.plans import PLANNABLE

    _, _, viewer, lang = _context(request)
    urls = request.app.state.urls
    keep = [("viewer", str(viewer))] if request.query_params.get("viewer") else []
    labels = {f.key: f.label_ru if lang == "ru" else f.label_en for f in STATIC}
    template = request.app.state.templates.get_template("plans.html")
    body = template.render({
        "request": request, "lang": lang, "t": i18n.translator(lang),
        "lang_url": urls.plans([*keep, ("lang", "en" if lang == "ru" else "ru")]),
        "figures": [(f, labels.get(f, f)) for f in PLANNABLE],
        "api": {"grid": urls.plans([*keep, ("lang", lang)], "json"),
                "save": urls.api_plans([*keep, ("lang", lang)]),
                "copy": urls.api_plans([*keep, ("lang", lang)], "copy"),
                "import": urls.api_plans([*keep, ("lang", lang)], "import"),
                "template": urls.plans([*keep, ("lang", lang)], "template.xlsx"),
                "report": urls.report([*keep, ("lang", lang), ("period", "this_month")])},
    })  # fmt: skip
    return HTMLResponse(body)


async def _body(request: Request) -> dict[str, Any]:
    return await json_object(request, MAX_BODY)


async def plans_save(request: Request) -> Response:
    """{"entries": [{"subject", "id", "figure", "period", "value"}]}; value null removes."""
    from rop.report.plans import PlanEntry, parse_period, parse_value, set_plans

    store, portal, viewer, _ = _context(request)
    data = await _body(request)
    items = data.get("entries")
    if not isinstance(items, list) or not items:
        raise BadInput("entries: a list of plans")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            raise BadInput("entries: a list of plans")
        try:
            sid = int(item.get("id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadInput(f"id: {item.get('id')!r}") from None
        value = item.get("value")
        entries.append(PlanEntry(str(item.get("subject")), sid, str(item.get("figure")),
                                 parse_period(str(item.get("period"))),
                                 None if value in (None, "") else parse_value(value)))  # fmt: skip
    changed = set_plans(store, portal, entries, actor=viewer)
    return Json({"changed": changed})


async def plans_copy(request: Request) -> Response:
    """{"from": "2026-10", "to": "2026-11"}: copy the plans one may change."""
    from rop.report.plans import copy_plans, parse_period

    store, portal, viewer, _ = _context(request)
    data = await _body(request)
    source = parse_period(str(data.get("from")))
    target = parse_period(str(data.get("to")))
    return Json({"changed": copy_plans(store, portal, source, target, actor=viewer)})


async def plans_import(request: Request) -> Response:
    """{"filename": "plans.xlsx", "data": "<base64>"}: the template filled in."""
    from rop.report.plans import set_plans
    from rop.report.plans_file import read_entries

    store, portal, viewer, _ = _context(request)
    data = await _body(request)
    try:
        content = base64.b64decode(str(data.get("data") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("data: not base64") from None
    entries = read_entries(content, str(data.get("filename") or ""))
    changed = set_plans(store, portal, entries, actor=viewer)
    return Json({"read": len(entries), "changed": changed})


def plans_template(request: Request) -> Response:
    from rop.report.plans import parse_period
    from rop.report.plans_file import template_rows, to_csv, to_xlsx

    store, portal, viewer, _ = _context(request)
    period = parse_period(request.query_params.get("plan_period") or "")
    rows = template_rows(store, portal, period, viewer=viewer)
    fmt = "csv" if request.url.path.endswith(".csv") else "xlsx"
    body = to_csv(rows) if fmt == "csv" else to_xlsx(rows)
    return file_response(body, fmt, f"plans-{period.key}.{fmt}")
