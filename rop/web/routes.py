"""Thin routes: parse the request, build one context, render it as HTML, JSON,
CSV or XLSX. The report engine does the work; each page lives in its own module."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rop.web.builds import limited
from rop.web.context import LAST_FILTER_COOKIE
from rop.web.digests_view import digests_add, digests_page, digests_remove
from rop.web.drill_view import drill_csv, drill_json, drill_page, drill_xlsx
from rop.web.health import healthz, readyz
from rop.web.local import rights_json
from rop.web.manager_view import manager_json, manager_page
from rop.web.plans_view import (
    plans_copy,
    plans_import,
    plans_json,
    plans_page,
    plans_save,
    plans_template,
)
from rop.web.quality_view import quality_json, quality_page, quality_xlsx
from rop.web.report_view import report_csv, report_json, report_page, report_xlsx
from rop.web.stages_section import report_stages
from rop.web.sync_api import sync_start, sync_status


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


ROUTES = [
    Route("/", home),
    Route("/report", limited(report_page)),
    Route("/report.json", limited(report_json)),
    Route("/report/stages", limited(report_stages)),
    Route("/report.csv", limited(report_csv)),
    Route("/report.xlsx", limited(report_xlsx)),
    Route("/manager/{user_id:int}", limited(manager_page)),
    Route("/manager/{user_id:int}.json", limited(manager_json)),
    Route("/quality", limited(quality_page)),
    Route("/quality.json", limited(quality_json)),
    Route("/quality.xlsx", limited(quality_xlsx)),
    Route("/drill", drill_page),
    Route("/drill.json", drill_json),
    Route("/drill.csv", drill_csv),
    Route("/drill.xlsx", drill_xlsx),
    Route("/api/sync", sync_status, methods=["GET"]),
    Route("/api/sync", sync_start, methods=["POST"]),
    Route("/api/rights", rights_json, methods=["GET"]),
    Route("/plans", plans_page),
    Route("/plans.json", plans_json),
    Route("/plans/template.xlsx", plans_template),
    Route("/plans/template.csv", plans_template),
    Route("/api/plans", plans_save, methods=["POST"]),
    Route("/api/plans/copy", plans_copy, methods=["POST"]),
    Route("/api/plans/import", plans_import, methods=["POST"]),
    Route("/settings/digests", digests_page),
    Route("/api/digests", digests_add, methods=["POST"]),
    Route("/api/digests/{sid}/remove", digests_remove, methods=["POST"]),
    Route("/healthz", healthz),
    Route("/readyz", readyz),
]
