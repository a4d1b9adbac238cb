"""The page's stage section: the report's "stages" object with a drill-down URL per number.

The matrix is drawn as an ECharts heatmap and a table (the table is what a
screen reader or a page without scripts gets); both carry the same URLs, built
here from the figure key and the page's filter (rop.web.urls), never SQL.
"""

from __future__ import annotations

from typing import Any

from rop.web.urls import Urls

Pairs = list[tuple[str, str]]


def _name(stages: dict[str, Any], p: dict[str, Any], sid: str, lang: str) -> str:
    marker = stages["markers"].get(sid)
    if marker:
        return str(marker["name_ru" if lang == "ru" else "name_en"])
    return str(next((s["name"] for s in p["stages"] if s["id"] == sid), sid))


def stages_view(report: dict[str, Any], urls: Urls, pairs: Pairs, lang: str) -> list[dict]:
    """One block per pipeline (deals) and one for lead statuses."""
    stages = report.get("stages") or {}
    out: list[dict[str, Any]] = []
    for kind in ("deals", "leads"):
        for p in (stages.get(kind) or {}).get("pipelines", []):
            m = p["matrix"]
            rows = [r for r in m["rows"] if r in m["row_totals"]]
            cols = [c for c in m["columns"] if any(x["to"] == c for x in m["cells"])]
            cells = [
                {**c, "href": urls.drill(pairs, c["figure"]),
                 "x": cols.index(c["to"]), "y": rows.index(c["from"])}
                for c in m["cells"]
            ]  # fmt: skip
            by = {(c["from"], c["to"]): c for c in cells}
            out.append(
                {
                    "kind": kind,
                    "id": p["id"],
                    "name": p["name"],
                    "rows": [
                        {"id": r, "name": _name(stages, p, r, lang), "total": m["row_totals"][r]}
                        for r in rows
                    ],  # fmt: skip
                    "cols": [{"id": c, "name": _name(stages, p, c, lang)} for c in cols],
                    "grid": [[by.get((r, c)) for c in cols] for r in rows],
                    "cells": cells,
                    "time": [
                        {
                            **t,
                            "href": urls.drill(pairs, t["figure"]),
                            "open_href": urls.drill(pairs, t["open_figure"]),
                        }
                        for t in p["time"]
                    ],  # fmt: skip
                    "funnel": [{**f, "href": urls.drill(pairs, f["figure"])} for f in p["funnel"]],
                    "stuck": {**p["stuck"], "href": urls.drill(pairs, p["stuck"]["figure"])},
                }
            )
    return out
