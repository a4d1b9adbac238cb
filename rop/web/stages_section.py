"""The stage section on its own: built apart from the report, when the reader asks.

The report page's build leaves the section out (``build_report(stages=False)``),
so the table never waits for it. The page shows the section closed; its first
opening fetches ``/report/stages`` (htmx), the section's HTML alone, built
here and cached like the report (same key parts, plus "stages"). ``?stages=1``
on the page (the link a reader without scripts follows) builds it into the
page, open. The JSON twin and the XLSX export add the same cached object under
the report's "stages" key when the query says ``stages=1``, as the page's links
do (docs/WEB.md); a plain ``/report.json`` costs what the page costs.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rop.web import i18n
from rop.web.builds import cached_build
from rop.web.cache import data_version
from rop.web.context import setup
from rop.web.params import WebFilter
from rop.web.stages_view import stages_view


def wanted(request: Request, default: bool) -> bool:
    """``stages=1``/``stages=0`` in the query, else ``default``."""
    raw = request.query_params.get("stages")
    return default if raw is None else raw not in ("0", "off", "")


def stage_object(request: Request) -> tuple[dict[str, Any], WebFilter]:
    """The report's "stages" object for the request's filter and viewer (cached)."""
    from rop.report.stages import stage_section

    store, opts, wf = setup(request)
    flt = wf.to_report_filter()

    def build() -> dict[str, Any]:
        # It may run in a build thread (rop.web.builds), so on that thread's cursor.
        return stage_section(request.app.state.pool.get(), flt, portal=opts.portal)

    key = (
        "stages",
        tuple(wf.pairs(lang=False)),
        (opts.portal, wf.viewer),
        wf.today or opts.today(),
        data_version(store, opts.portal),
    )
    return cached_build(request.app.state.cache, key, build), wf


def stage_blocks(request: Request) -> list[dict[str, Any]]:
    """The section's blocks as the page draws them (rop.web.stages_view)."""
    stages, wf = stage_object(request)
    return stages_view({"stages": stages}, request.app.state.urls, wf.pairs(), wf.lang)


def report_stages(request: Request) -> Response:
    """The stage section's content alone, for the page's htmx request."""
    _, _, wf = setup(request)
    blocks = stage_blocks(request)
    template = request.app.state.templates.get_template("_stages_body.html")
    body = template.render({"stage_blocks": blocks, "t": i18n.translator(wf.lang), "lang": wf.lang})
    return HTMLResponse(body)
