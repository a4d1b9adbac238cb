"""The data-quality panel (docs/WEB.md "Data quality"): its own section of the
report page, loaded after the page (htmx) so the report stays as fast as it
was, with a JSON twin and an XLSX export; every number opens its drill-down."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rop.web import i18n
from rop.web.builds import cached_build
from rop.web.cache import data_version
from rop.web.context import Json, setup
from rop.web.download import file_response
from rop.web.formatting import fmt_count, fmt_share


def quality_settings(request: Request) -> Any:
    """The checks and thresholds of the settings (ROP_QUALITY_*), for the report layer."""
    from rop.metrics.quality import QualitySettings

    s = request.app.state.settings
    return QualitySettings(s.quality_check_names(), s.quality_stale_days, s.quality_lead_hours)


def quality_context(request: Request) -> dict[str, Any]:
    from rop.report.quality import build_quality

    store, opts, wf = setup(request)
    flt = wf.to_report_filter()
    settings = quality_settings(request)
    key = (
        "quality",
        tuple(wf.pairs(lang=False)),
        (opts.portal, wf.viewer),
        wf.today or opts.today(),
        data_version(store, opts.portal),
        settings,
    )

    def build() -> dict[str, Any]:
        return build_quality(request.app.state.pool.get(), flt, settings, portal=opts.portal)

    panel = cached_build(request.app.state.cache, key, build)
    urls = request.app.state.urls
    pairs = wf.pairs()
    return {
        "filter": wf,
        "panel": panel,
        "links": {
            "json": urls.quality(pairs, "json"),
            "xlsx": urls.quality(pairs, "xlsx"),
        },
    }


def _view(request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
    """Rows with formatted numbers and drill-down links, columns with tooltips."""
    from rop.metrics.quality import check_of

    wf, panel = ctx["filter"], ctx["panel"]
    lang = wf.lang
    urls = request.app.state.urls
    pairs = wf.pairs()
    cols = [
        {
            "key": c["key"],
            "label": c[f"label_{lang}"],
            "description": c[f"description_{lang}"],
            # The group the reader may hide (the picker above the table).
            "check": check_of(c["key"]) or "activities",
        }
        for c in panel["columns"]
    ]

    def line(row: dict[str, Any], user: int | None) -> dict[str, Any]:
        cells = []
        for c in panel["columns"]:
            value = row["figures"][c["key"]]
            href = urls.drill(pairs, c["key"], user=user) if value else None
            cells.append({"text": fmt_count(value, lang), "href": href, "zero": not value})
        return {
            "score": fmt_share(row["score"], lang),
            "bad": row["open_with_problems"],
            "open": row["open_records"],
            "cells": cells,
        }

    rows = [
        {
            "name": row["name_ru"] if lang == "ru" else row["name"],
            "user_id": row["user_id"],
            "href": row["profile_url"],
            "dismissed": row["dismissed"],
            **line(row, row["user_id"]),
        }
        for row in panel["rows"]
    ]
    return {
        "columns": cols,
        "groups": _groups(cols, lang),
        "rows": rows,
        "total": line(panel["total"], None),
        "settings": panel["settings"],
    }


# Names of the checks that show several columns (one per entity), for the picker.
_GROUP_NAMES = {
    "activities": ("Дела", "Activities"),
    "client_no_reach": ("Клиенты без телефона и e-mail", "Clients without phone or e-mail"),
    "client_duplicate": ("Похожие клиенты", "Likely duplicate clients"),
    "dismissed_owner": ("Записи уволенных", "Records of dismissed users"),
}


def _groups(cols: list[dict[str, Any]], lang: str) -> list[dict[str, str]]:
    """The column groups in the table's order: a check, or the activity figures."""
    out: list[dict[str, str]] = []
    for c in cols:
        if out and out[-1]["name"] == c["check"]:
            continue
        names = _GROUP_NAMES.get(c["check"])
        label = (names[0] if lang == "ru" else names[1]) if names else c["label"]
        out.append({"name": c["check"], "label": label})
    return out


def quality_page(request: Request) -> Response:
    """The panel as an HTML fragment (the report page loads it into its section)."""
    ctx = quality_context(request)
    lang = ctx["filter"].lang
    template = request.app.state.templates.get_template("_quality.html")
    body = template.render(
        {
            **ctx,
            "view": _view(request, ctx),
            "lang": lang,
            "t": i18n.translator(lang),
        }
    )
    return HTMLResponse(body)


def quality_json(request: Request) -> Response:
    ctx = quality_context(request)
    return Json({"filter": ctx["filter"].as_json(), "quality": ctx["panel"], "links": ctx["links"]})


def quality_xlsx(request: Request) -> Response:
    from rop.report.export_quality import quality_to_xlsx

    ctx = quality_context(request)
    panel = ctx["panel"]
    body = quality_to_xlsx(panel, lang=ctx["filter"].lang)
    name = f"quality_{panel['period']['from']}_{panel['period']['to']}.xlsx"
    return file_response(body, "xlsx", name)
