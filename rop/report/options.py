"""From command-line or query-string text to a ReportFilter; every problem is one clear line."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from rop.metrics.errors import ReportInputError
from rop.report.bounds import check_day, check_period
from rop.report.filter import SECTIONS, ReportFilter
from rop.report.periods import PRESETS, resolve_period
from rop.report.portal import select_portal
from rop.store.db import Store


def parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReportInputError("bad_date", what=what, text=text) from None


def stuck_overrides(pairs: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Per-pipeline stuck thresholds, by pipeline; a pipeline named twice is refused."""
    out: dict[int, int] = {}
    for pipeline, days in pairs:
        if pipeline in out:
            raise ReportInputError("stuck_days_twice", pipeline=pipeline)
        out[pipeline] = days
    return tuple(sorted(out.items()))


def parse_stuck_override(text: str, what: str) -> tuple[int, int]:
    """``PIPELINE=DAYS`` (the CLI's ``--pipeline-stuck-days``) -> (pipeline, days)."""
    pipeline, eq, days = text.partition("=")
    try:
        if not eq:
            raise ValueError(text)
        return int(pipeline.strip()), int(days.strip())
    except ValueError:
        raise ReportInputError("bad_stuck_override", what=what, text=text) from None


def make_filter(
    store: Store,
    *,
    portal: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    period: str | None = None,
    pipelines: Iterable[int] = (),
    key_stages: Iterable[str] = (),
    key_statuses: Iterable[str] = (),
    sections: Iterable[str] = (),
    departments: Iterable[int] = (),
    managers: Iterable[int] = (),
    min_call_seconds: int = 0,
    max_call_seconds: int | None = None,
    by: str = "manager",
    compare: bool = True,
    previous: str = "to_date",
    viewer: int | None = None,
    stuck_days: int = 14,
    stuck_days_by: Iterable[tuple[int, int]] = (),
    today: str | date | None = None,
) -> ReportFilter:
    """Dates are custom days (both ends inclusive) or a preset; default: this month.

    Presets and overdue deals count from ``today`` (``--today``), else from the
    portal's clock (rop.report.portal.portal_today), never the machine's.
    """
    if isinstance(today, str):
        today = check_day(parse_day(today, "--today"), "--today")
    if period is not None and (date_from or date_to):
        raise ReportInputError("preset_and_dates")
    if period is not None and period not in PRESETS:
        raise ReportInputError("unknown_period", period=period, choices=", ".join(PRESETS))
    if date_from or date_to:
        if not (date_from and date_to):
            raise ReportInputError("half_period")
        start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
        check_period(start, end, ("--from", "--to"))
    else:
        start, end = resolve_period(
            period or "this_month", today or select_portal(store, portal).today()
        )
    flt = ReportFilter(
        date_from=start,
        date_to=end,
        pipelines=tuple(pipelines),
        key_stages=tuple(key_stages),
        key_statuses=tuple(key_statuses),
        sections=tuple(sections) or SECTIONS,
        departments=tuple(departments),
        managers=tuple(managers),
        min_call_seconds=min_call_seconds,
        max_call_seconds=max_call_seconds,
        by=by,
        compare=compare,
        previous=previous,
        viewer=viewer,
        stuck_days=stuck_days,
        stuck_days_by=stuck_overrides(stuck_days_by),
        today=today,
    )
    flt.validate()
    return flt
