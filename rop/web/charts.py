"""Data for the page's pictures: a funnel per pipeline, won amount and win rate
by manager, and the drill-down links of every picture.

The funnel's counts and the new/won/lost trend are the report layer's
(rop.report.funnel, rop.report.trend: the figures' own relation over the stored
facts); the bars reuse the report's own rows, so they cannot disagree with the
table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from rop.report.filter import ReportFilter
from rop.store.db import Store
from rop.web.options import Options


def funnel(store: Store, opts: Options, pipeline_id: int, flt: ReportFilter) -> dict[str, Any]:
    """One pipeline's funnel (:func:`funnels`)."""
    return funnels(store, opts, [pipeline_id], flt)[0]


def funnels(
    store: Store, opts: Options, pipeline_ids: Sequence[int], flt: ReportFilter
) -> list[dict[str, Any]]:
    """Per pipeline, the deals created in ``flt``'s period in it, and how far each got,
    as the filter's viewer sees them.

    A deal counts at every working stage up to the furthest one it ever
    reached (by stage history or its current stage); won deals passed them
    all. Lost stages are not steps of the funnel. Conversion is the share of
    the previous step that reached this one. The counts are the report layer's
    (rop.report.funnel: each deal's furthest stage is a stored deal fact), so
    each step equals its drill-down, the figure ``deal_funnel:<stage>``.
    """
    from rop.report.funnel import funnel_tops

    names = {p["id"]: p["name"] for p in opts.pipelines}
    steps_of = {
        pid: [
            s for s in opts.stages if s["category_id"] == pid and (s.get("semantics") or "") != "F"
        ]
        for pid in pipeline_ids
    }
    counted = [pid for pid in pipeline_ids if steps_of[pid]]
    by_top = funnel_tops(store, flt, counted, opts.portal) if counted else {}
    out = []
    for pid in pipeline_ids:
        stages = steps_of[pid]
        name = names.get(pid, str(pid))
        if not stages:
            out.append({"pipeline_id": pid, "name": name, "steps": []})
            continue
        first_sort = stages[0]["sort"]
        # Every deal created in the pipeline stood at least at its first stage.
        tops: list[tuple[int, int]] = [
            (first_sort if top is None else max(top, first_sort), n)
            for top, n in by_top[pid].items()
        ]
        steps = []
        previous: int | None = None
        for s in stages:
            count = sum(n for top, n in tops if top >= s["sort"])
            conversion = (count / previous) if previous else None
            steps.append(
                {
                    "stage_id": s["status_id"],
                    "name": s["name"],
                    "count": count,
                    "conversion": conversion,
                }
            )
            previous = count
        out.append({"pipeline_id": pid, "name": name, "steps": steps})
    return out


def manager_bars(report: dict[str, Any]) -> dict[str, Any]:
    """Won amount and win rate per row, straight from the report's rows."""
    rows = [r for r in report.get("rows", []) if "deals_won_amount" in r.get("figures", {})]
    rows.sort(key=lambda r: r["figures"].get("deals_won_amount") or 0, reverse=True)
    from rop.web.table import row_name

    by = (report.get("filter") or {}).get("by") or "manager"
    # The picture is cached once for both languages, so it carries the names
    # in both ("Пользователь #7" / "user #7", "Без отдела" / "No department");
    # ``names`` keeps null for a user missing from the portal's directory.
    return {
        "names": [None if r.get("unknown") else r.get("name") or "" for r in rows],
        "names_ru": [row_name(r, "ru", by) for r in rows],
        "names_en": [row_name(r, "en", by) for r in rows],
        "user_ids": [r.get("user_id") for r in rows],
        "keys": [r.get("key") for r in rows],
        "won_amount": [r["figures"].get("deals_won_amount") or 0 for r in rows],
        "win_rate": [
            None
            if r["figures"].get("deals_win_rate") is None
            else round(r["figures"]["deals_win_rate"] * 100, 1)
            for r in rows
        ],
    }


def with_drill_links(pictures: dict[str, Any], wf: Any, urls: Any) -> dict[str, Any]:
    """The pictures with, for each bar, funnel step and trend point, the URL of
    the drill-down that lists exactly the records it counts.

    Added after the cache (the pictures are cached for both languages; links
    carry the page's language). A funnel step lists its ``deal_funnel:``
    figure; a manager's bar that manager's won deals; a trend point the new,
    won or lost deals of its day (or week), as a filter narrowed to it.
    """
    out = dict(pictures)
    pairs = wf.pairs()
    bars = dict(pictures.get("bars") or {})
    links: list[str | None] = []
    for uid, key in zip(bars.get("user_ids", []), bars.get("keys", []), strict=False):
        if wf.by == "manager" and uid is not None:
            links.append(urls.drill(pairs, "deals_won_amount", user=uid))
        elif wf.by != "manager" and key is not None:
            links.append(urls.drill(pairs, "deals_won_amount", key=key))
        else:
            links.append(None)
    bars["drill"] = links
    out["bars"] = bars
    funnels = []
    for f in pictures.get("funnels") or []:
        steps = [
            {**step, "drill": urls.drill(pairs, f"deal_funnel:{step['stage_id']}")}
            for step in f.get("steps", [])
        ]
        funnels.append({**f, "steps": steps})
    if "funnels" in pictures:
        out["funnels"] = funnels
    trend_data = pictures.get("trend")
    if trend_data:
        weekly = trend_data.get("unit") == "week"
        drill: dict[str, list[str]] = {"new": [], "won": [], "lost": []}
        for label in trend_data.get("labels", []):
            start = date.fromisoformat(label)
            end = start + timedelta(days=6) if weekly else start
            narrow = wf.narrowed(
                period="custom", date_from=max(start, wf.date_from), date_to=min(end, wf.date_to)
            ).pairs()
            for kind in drill:
                drill[kind].append(urls.drill(narrow, f"deals_{kind}"))
        out["trend"] = {**trend_data, "drill": drill}
    return out
