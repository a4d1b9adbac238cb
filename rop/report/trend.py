"""The page's trend: new, won and lost deals per local day (or per week for long periods).

Each point counts exactly the records of the figure its drill-down lists
(``deals_new``, ``deals_won``, ``deals_lost`` narrowed to that day or week): it
is read from the same relation (rop.metrics.sources ``deal_rel``: the stored
deal facts while they are current, the viewer's scope, the chosen pipelines),
so a point and its list cannot disagree. Where the stored rollups answer
the deal section's sums (rop.metrics.rollups.trend_usable), the points are
read from them instead: the same rows ``deals_new``, ``deals_won`` and
``deals_lost`` sum, by the same local day. The close time is the deal facts'
(METRICS.md: the latest move into a final stage, else MOVED_TIME, else
CLOSEDATE at local midnight), stored per deal: the chart no longer aggregates
the whole stage history on every page build (a third of a month's page build
at 1M deals, docs/BENCHMARKS.md).

Moments are grouped into local days in SQL without time-zone functions: the
zone's UTC offset is constant between its transitions, so the period is cut
at the transitions it contains (found here, in Python) and each piece adds its
own offset before taking the date. A zone with a half-hour offset gets exact
days too.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rop.metrics import rollups
from rop.metrics.compile import bind, params_for, relation
from rop.metrics.sources import SOURCES
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store.db import Store

# Longer periods are shown by week so that the trend stays readable.
DAILY_UP_TO_DAYS = 62
KINDS = ("new", "won", "lost")


def _offset(tz: ZoneInfo, moment: datetime) -> timedelta:
    """The zone's offset from UTC at the naive UTC ``moment``."""
    return moment.replace(tzinfo=UTC).astimezone(tz).utcoffset() or timedelta(0)


def offset_spans(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, timedelta]]:
    """The zone's offsets over [start, end) (naive UTC): (from when, offset), the first
    from ``start``. Sampled a day apart (zones change their offset months apart); a
    change is then found to the minute (every zone's transitions fall on one)."""
    spans = [(start, _offset(tz, start))]
    at = start
    while at < end:
        nxt = min(at + timedelta(days=1), end)
        if _offset(tz, nxt) != spans[-1][1]:
            low, high = at, nxt  # the offset changes in (low, high]
            while high - low > timedelta(minutes=1):
                mid = (low + (high - low) / 2).replace(second=0, microsecond=0)
                if mid <= low:
                    break
                if _offset(tz, mid) == spans[-1][1]:
                    low = mid
                else:
                    high = mid
            spans.append((high, _offset(tz, high)))
        at = nxt
    return spans


def local_day_sql(expr: str, spans: list[tuple[datetime, timedelta]]) -> tuple[str, dict]:
    """SQL giving the local day of the UTC moment ``expr``, and its parameters."""
    params: dict[str, Any] = {"tz_o0": spans[0][1]}
    if len(spans) == 1:
        return f"CAST({expr} + $tz_o0 AS DATE)", params
    parts = []
    for i, (since, off) in enumerate(spans[1:], start=1):
        params[f"tz_t{i}"], params[f"tz_o{i}"] = since, off
        parts.append(f"WHEN {expr} < $tz_t{i} THEN {expr} + $tz_o{i - 1}")
    last = len(spans) - 1
    return f"CAST(CASE {' '.join(parts)} ELSE {expr} + $tz_o{last} END AS DATE)", params


def trend_sql(spans: list[tuple[datetime, timedelta]]) -> tuple[str, dict[str, Any]]:
    """Over the relation ``f``: (kind, local day, count) of the period's new, won and
    lost deals (the conditions of deals_new, deals_won and deals_lost)."""
    created, p_created = local_day_sql("date_create", spans)
    closed, p_closed = local_day_sql("close_time", spans)
    sql = (
        f"SELECT 'new' AS kind, {created} AS day, count(*) AS n FROM f "
        "WHERE date_create >= $p_from AND date_create < $p_to GROUP BY 2\n"
        f"UNION ALL SELECT CASE semantic WHEN 'S' THEN 'won' ELSE 'lost' END, {closed}, "
        "count(*) FROM f WHERE semantic IN ('S', 'F') "
        "AND close_time >= $p_from AND close_time < $p_to GROUP BY 1, 2"
    )
    return sql, {**p_created, **p_closed}


def deal_trend(
    store: Store, flt: ReportFilter, portal: str | None = None, today: date | None = None
) -> dict[str, Any]:
    """New, won and lost deals of ``flt``'s period per local day (per week, from Monday,
    for periods over :data:`DAILY_UP_TO_DAYS` days), as the viewer and filter see them.

    Days after ``today`` (the rest of "this month") are left off the axis; every
    bucket up to it is present, so gaps show as zeros.
    """
    prep = prepare(store, flt, portal)
    ctx = context(prep, flt.date_from, flt.date_to)
    if rollups.trend_usable(ctx):
        # The stored rollups hold these counts per local day already: a month
        # reads a few thousand rows instead of every deal fact (a fifth of a
        # month's page build at 1M deals, docs/BENCHMARKS.md "Twenty viewers").
        sql, params = rollups.trend_sql(ctx), params_for(ctx, ())
    else:
        start, end = ctx.params["p_from"], ctx.params["p_to"]
        body, extra = trend_sql(offset_spans(prep.tz, start, end))
        sql = f"{relation(SOURCES['deal_rel'], ctx)}\n{body}"
        params = {**params_for(ctx, ()), **extra}
    weekly = (flt.date_to - flt.date_from).days + 1 > DAILY_UP_TO_DAYS

    def bucket(day: date) -> date:
        return day - timedelta(days=day.weekday()) if weekly else day

    counts: dict[date, dict[str, int]] = {}
    for kind, day, n in store.query(sql, bind(sql, params)):
        if isinstance(day, datetime):
            day = day.date()
        if flt.date_from <= day <= flt.date_to:
            slot = counts.setdefault(bucket(day), dict.fromkeys(KINDS, 0))
            slot[kind] += int(n)
    labels = []
    day = bucket(flt.date_from)
    last = min(flt.date_to, today) if today is not None and today >= flt.date_from else flt.date_to
    while day <= last:
        labels.append(day)
        day += timedelta(days=7 if weekly else 1)
    empty = dict.fromkeys(KINDS, 0)
    return {
        "unit": "week" if weekly else "day",
        "labels": [d.isoformat() for d in labels],
        **{k: [counts.get(d, empty)[k] for d in labels] for k in KINDS},
    }
