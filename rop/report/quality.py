"""The data-quality panel and the activity figures, per manager (docs/WEB.md
"Data quality"): built apart from the main report, so the report stays as
fast as it was and the panel loads on its own (docs/BENCHMARKS.md).

``build_quality`` gives the whole panel; ``manager_quality`` one manager's
checks (the manager page). Every number is a figure of rop.metrics.quality,
drilled by rop.report.drill like any other.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from rop.metrics.compile import Context, add_partials, aggregate_sql, bind, combine, params_for
from rop.metrics.figure import Figure
from rop.metrics.quality import (
    ACTIVITIES,
    NEXT_STEP,
    OPEN,
    QUALITY,
    SOURCES,
    QualitySettings,
    check_figures,
)
from rop.report.context import Prepared, check_user, context, now_utc, prepare
from rop.report.filter import ReportFilter
from rop.report.formatting import unknown_user_name
from rop.report.periods import local_today
from rop.report.workdays import is_working_day
from rop.store.db import Store

# A working day's hours, portal time (docs/METRICS_DECISIONS.md "Data quality").
DAY_START, DAY_END = time(9, 0), time(18, 0)
SCORE = "quality_score"


def working_hours(
    prep: Prepared, start: datetime, end: datetime
) -> tuple[list[datetime], list[datetime]]:
    """UTC [from, to) of every working day's hours between two UTC moments."""
    tz = prep.tz
    first = local_today(tz, start)
    last = local_today(tz, end)
    starts: list[datetime] = []
    ends: list[datetime] = []
    day = first
    while day <= last:
        if is_working_day(day):
            for bound, out in ((DAY_START, starts), (DAY_END, ends)):
                moment = datetime.combine(day, bound, tzinfo=tz)
                out.append(moment.astimezone(UTC).replace(tzinfo=None))
        day += timedelta(days=1)
    return starts, ends


def quality_context(prep: Prepared, settings: QualitySettings) -> Context:
    """The period's bound values plus the checks' thresholds and working hours."""
    ctx = context(prep, prep.flt.date_from, prep.flt.date_to)
    now = now_utc(prep)
    starts, ends = working_hours(prep, ctx.params["p_from"], max(now, ctx.params["p_to"]))
    ctx.params.update(
        stale_before=now - timedelta(days=settings.stale_days),
        lead_seconds=float(settings.lead_hours * 3600),
        wh_from=starts,
        wh_to=ends,
    )
    # The panel is per manager whatever the report's rows are grouped by.
    ctx.group = "manager"
    return ctx


def _score_figure(source: str, figs: list[Figure]) -> Figure | None:
    """Open records of one relation, those with some enabled problem counted on top."""
    mine = [f.condition for f in figs if f.source == source]
    if source not in OPEN:
        return None
    numerator = " OR ".join(f"({c})" for c in mine) if mine else "FALSE"
    return Figure(
        f"{SCORE}:{source}", "quality", source, "share", "share", OPEN[source],
        "Открытые записи", "Open records", "", "", numerator=numerator, now=True,
    )  # fmt: skip


def _run(prep: Prepared, ctx: Context, figs: list[Figure]) -> dict[Any, dict[str, Any]]:
    """Per manager (and None: the total), each figure's value; partials for scores."""
    out: dict[Any, dict[str, Any]] = {}
    by_source: dict[str, list[Figure]] = {}
    for fig in figs:
        by_source.setdefault(fig.source, []).append(fig)
    for source, mine in by_source.items():
        sql = aggregate_sql(SOURCES[source], mine, ctx)
        parts: dict[Any, dict[str, Any]] = {}
        for rec in prep.store.query_dicts(sql, bind(sql, params_for(ctx, mine))):
            add_partials(parts.setdefault(rec["k"], {}), rec)
            add_partials(parts.setdefault(None, {}), rec)
        for k, part in parts.items():
            cell = out.setdefault(k, {})
            for i, fig in enumerate(mine):
                if fig.measure == "share":
                    cell.setdefault("_open", 0)
                    cell.setdefault("_bad", 0)
                    cell["_open"] += part.get(f"a{i}_den") or 0
                    cell["_bad"] += part.get(f"a{i}_num") or 0
                else:
                    cell[fig.key] = combine(fig, i, part)
    return out


def _columns(figs: list[Figure]) -> list[dict[str, Any]]:
    return [f.as_column() for f in figs]


def _cell(values: dict[str, Any], figs: list[Figure]) -> dict[str, Any]:
    open_, bad = values.get("_open", 0), values.get("_bad", 0)
    return {
        "figures": {f.key: values.get(f.key, 0) for f in figs},
        "open_records": open_,
        "open_with_problems": bad,
        # Share of open records with no problem; None with nothing open.
        "score": (open_ - bad) / open_ if open_ else None,
    }


def build_quality(
    store: Store,
    flt: ReportFilter,
    settings: QualitySettings | None = None,
    *,
    portal: str | None = None,
    user_id: int | None = None,
) -> dict[str, Any]:
    """The panel: per manager the activity figures, each enabled check's count and
    the score; rows worst score first. ``user_id``: that manager's row only."""
    settings = settings or QualitySettings()
    prep = prepare(store, flt, portal)
    ctx = quality_context(prep, settings)
    checks = check_figures(settings)
    activity = [*ACTIVITIES, *(f for f in checks if f.key == NEXT_STEP)]
    figs = [*ACTIVITIES, *checks]
    scores = [s for s in (_score_figure(src, checks) for src in OPEN) if s is not None]
    if user_id is not None:
        check_user(store, prep.portal.key, prep.scope, user_id)
        ctx.allowed = frozenset({user_id})
    cells = _run(prep, ctx, [*figs, *scores])
    users = {
        r["id"]: r
        for r in store.query_dicts(
            "SELECT u.id, u.active, u.name, u.last_name, d.name AS department "
            "FROM users u LEFT JOIN departments d ON d.portal = u.portal AND d.id = u.department_id "
            "WHERE u.portal = ?",
            [prep.portal.key],
        )
    }
    rows = []
    for uid, values in cells.items():
        if uid is None:
            continue
        user = users.get(uid)
        name = " ".join(p for p in ((user or {}).get("name"), (user or {}).get("last_name")) if p)
        rows.append(
            {
                "user_id": uid,
                "name": name or unknown_user_name(uid, "en"),
                "name_ru": name or unknown_user_name(uid, "ru"),
                "department": (user or {}).get("department"),
                "dismissed": bool(user is not None and user["active"] is False),
                "unknown": user is None,
                "profile_url": prep.portal.link(f"/company/personal/user/{uid}/"),
                **_cell(values, figs),
            }
        )
    # Worst first: the lowest score, then the most problems; nothing open last.
    rows.sort(key=lambda r: (r["score"] is None, r["score"] or 0, -r["open_with_problems"],
                             r["name"]))  # fmt: skip
    enabled = {c.name for c in QUALITY if c.name in settings.checks}
    return {
        "period": {"from": flt.date_from.isoformat(), "to": flt.date_to.isoformat(),
                   "timezone": prep.portal.timezone},
        "today": prep.today.isoformat(),
        "settings": {"checks": [c for c in settings.checks if c in enabled],
                     "stale_days": settings.stale_days, "lead_hours": settings.lead_hours},
        "activity_columns": _columns(activity),
        "checks": [
            {"name": c.name, "columns": _columns(list(c.figures))}
            for c in QUALITY if c.name in enabled
        ],
        "columns": _columns(figs),
        "rows": rows,
        "total": _cell(cells.get(None, {}), figs),
    }  # fmt: skip


def manager_quality(
    store: Store,
    flt: ReportFilter,
    user_id: int,
    settings: QualitySettings | None = None,
    *,
    portal: str | None = None,
) -> dict[str, Any]:
    """One manager's activity figures, checks and score (the manager page): the
    panel's row of ``user_id`` (zeros if they have no records), with the columns."""
    panel = build_quality(store, flt, settings, portal=portal, user_id=user_id)
    row = next((r for r in panel["rows"] if r["user_id"] == user_id), None)
    if row is None:
        row = {"user_id": user_id, **_cell({}, [])}
        row["figures"] = {c["key"]: 0 for c in panel["columns"]}
    return {**{k: v for k, v in panel.items() if k not in ("rows", "total")}, "row": row}
