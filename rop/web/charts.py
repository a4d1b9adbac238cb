"""Data for the page's pictures: a funnel per pipeline, won amount and win rate
by manager, and the drill-down links of every picture.

The funnel is a small query over the store (values bound, identifiers from
the code); the bars reuse the report's own rows, so they cannot disagree with
the table; the new/won/lost trend is the report layer's (rop.report.trend).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rop.store.db import Store
from rop.web.options import Options


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _bounds(date_from: date, date_to: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    def utc(day: date) -> datetime:
        local = datetime(day.year, day.month, day.day, tzinfo=tz)
        return local.astimezone(UTC).replace(tzinfo=None)

    return utc(date_from), utc(date_to + timedelta(days=1))


def _users_clause(
    column: str, users: Sequence[int] | None, exclude: Sequence[int] = ()
) -> tuple[str, list[Any]]:
    """Only ``users`` (None: everyone), minus ``exclude`` (a scope's denied users)."""
    if users is None:
        if not exclude:
            return "", []
        marks = ", ".join("?" for _ in exclude)
        return f" AND {column} NOT IN ({marks})", list(exclude)
    if not users:
        return " AND 1 = 0", []
    marks = ", ".join("?" for _ in users)
    return f" AND {column} IN ({marks})", list(users)


def funnel(
    store: Store,
    opts: Options,
    pipeline_id: int,
    date_from: date,
    date_to: date,
    users: Sequence[int] | None = None,
    exclude: Sequence[int] = (),
    granted: tuple[str, list[Any]] = ("", []),
) -> dict[str, Any]:
    """One pipeline's funnel (:func:`funnels`)."""
    return funnels(store, opts, [pipeline_id], date_from, date_to, users, exclude, granted)[0]


def funnels(
    store: Store,
    opts: Options,
    pipeline_ids: Sequence[int],
    date_from: date,
    date_to: date,
    users: Sequence[int] | None = None,
    exclude: Sequence[int] = (),
    granted: tuple[str, list[Any]] = ("", []),
) -> list[dict[str, Any]]:
    """Per pipeline, the deals created in the period in it, and how far each got.

    A deal counts at every working stage up to the furthest one it ever
    reached (by stage history or its current stage); won deals passed them
    all. Lost stages are not steps of the funnel. Conversion is the share of
    the previous step that reached this one.

    One query for every pipeline (the stage history is read once, not once per
    pipeline: a year to date's funnels cost about 1 s of CPU at 1M deals that way).
    Each step equals its drill-down, the figure ``deal_funnel:<stage>``
    (rop.metrics.catalogue.funnel_figure).
    """
    tz = _zone(opts.timezone)
    start, end = _bounds(date_from, date_to, tz)
    names = {p["id"]: p["name"] for p in opts.pipelines}
    steps_of = {
        pid: [
            s for s in opts.stages if s["category_id"] == pid and (s.get("semantics") or "") != "F"
        ]
        for pid in pipeline_ids
    }
    counted = [pid for pid in pipeline_ids if steps_of[pid]]
    by_top: dict[int, dict[int | None, int]] = {pid: {} for pid in pipeline_ids}
    if counted:
        users_sql, users_params = _users_clause("assigned_by_id", users, exclude)
        # App mode: only the deals Bitrix24 lets the viewer read (rop.report.scope).
        users_sql, users_params = users_sql + granted[0], users_params + list(granted[1])
        pipes = ", ".join("?" for _ in counted)
        # Only placeholders and code-made clauses are spliced in; values are bound.
        sql = (
            # Deals with nobody responsible are in no figure (metrics' deal_base): not here
            # either, so a step's drill-down lists exactly the deals the step counts.
            "WITH d AS (SELECT id, category_id, stage_id FROM deals WHERE portal = ? "  # noqa: S608
            f"AND category_id IN ({pipes}) AND assigned_by_id IS NOT NULL "
            "AND date_create >= ? AND date_create < ?" + users_sql + "), "
            # A stage counts in its own pipeline's directory only (DEAL_STAGE_<n>).
            "st AS (SELECT entity_id, status_id, max(sort) AS sort FROM statuses "
            "WHERE portal = ? AND entity_id LIKE 'DEAL_STAGE%' "
            "AND coalesce(semantics, '') <> 'F' GROUP BY entity_id, status_id), "
            "reached AS (SELECT d.id, d.category_id, h.stage_id FROM d "
            "JOIN deal_stage_history h ON h.portal = ? AND h.owner_id = d.id "
            "UNION ALL SELECT id, category_id, stage_id FROM d), "
            "tops AS (SELECT r.id, r.category_id, max(st.sort) AS top FROM reached r "
            "LEFT JOIN st ON st.status_id = r.stage_id AND st.entity_id = CASE "
            "WHEN r.category_id = 0 THEN 'DEAL_STAGE' "
            "ELSE 'DEAL_STAGE_' || CAST(r.category_id AS VARCHAR) END "
            "GROUP BY r.id, r.category_id) "
            "SELECT category_id, top, count(*) FROM tops GROUP BY category_id, top"
        )
        params = [
            opts.portal, *counted, start, end, *users_params, opts.portal, opts.portal,
        ]  # fmt: skip
        for pid, top, n in store.query(sql, params):
            by_top[int(pid)][top] = int(n)
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
