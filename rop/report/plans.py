"""Plans per manager and per department, who may change them, and their history.

A plan is a number for one figure of the catalogue (a count or a sum: won
amount, won deals, new deals, calls...) over one month or one quarter, for a
manager or for a department. A department's plan is its own number, which
may differ from the sum of its managers' plans; without one, the department's
plan is that sum. Every change is kept in ``plan_changes`` (who, when, the
old and the new value); ``plans`` holds the values in force.

Only report administrators (and the CLI on the store's machine, ``actor``
None) change any plan; a department head changes the plans of the
departments they head, the departments below them and the users in them.
Everyone reads the plans of the rows they may see.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rop.metrics.catalogue import STATIC
from rop.metrics.errors import AccessDenied, ReportInputError
from rop.report.periods import _add_months
from rop.report.scope import (
    choosable_departments,
    is_known_user,
    is_report_admin,
    subtree,
    users_of,
    viewer_scope,
)
from rop.store.db import Store

SUBJECTS = ("user", "department")
# Additive figures only: a plan of a share or a mean cannot be summed over
# managers or months; figures about the present have no period.
PLANNABLE: tuple[str, ...] = tuple(
    f.key for f in STATIC if f.measure in ("count", "sum") and not f.now
)
# The figures every plan/fact section shows, planned or not.
MAIN_FIGURES = ("deals_won_amount", "deals_won")
MAX_VALUE = 1e15


@dataclass(frozen=True, order=True)
class PlanPeriod:
    """A month or a quarter: the span a plan covers."""

    kind: str  # month|quarter
    start: date

    @property
    def end(self) -> date:
        return _add_months(self.start, 1 if self.kind == "month" else 3) - timedelta(days=1)

    @property
    def key(self) -> str:
        if self.kind == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"

    def previous(self) -> PlanPeriod:
        return PlanPeriod(self.kind, _add_months(self.start, -1 if self.kind == "month" else -3))

    def months(self) -> list[PlanPeriod]:
        n = 1 if self.kind == "month" else 3
        return [PlanPeriod("month", _add_months(self.start, i)) for i in range(n)]


_PERIOD = re.compile(r"^\s*(\d{4})-(?:(\d{1,2})|[QqКк]([1-4]))\s*$")


def parse_period(text: str) -> PlanPeriod:
    """``2026-11`` (a month) or ``2026-Q4`` (a quarter; ``2026-К4`` in Russian)."""
    m = _PERIOD.match(str(text))
    if m:
        year = int(m.group(1))
        if m.group(2) is not None and 1 <= int(m.group(2)) <= 12 and year >= 2000:
            return PlanPeriod("month", date(year, int(m.group(2)), 1))
        if m.group(3) is not None and year >= 2000:
            return PlanPeriod("quarter", date(year, (int(m.group(3)) - 1) * 3 + 1, 1))
    raise ReportInputError("bad_plan_period", text=str(text))


def period_of(date_from: date, date_to: date) -> PlanPeriod | None:
    """The month or quarter that ``date_from``..``date_to`` is exactly; else None."""
    if date_from.day != 1:
        return None
    for kind in ("month", "quarter"):
        p = PlanPeriod(kind, date_from)
        if kind == "quarter" and (date_from.month - 1) % 3:
            continue
        if p.end == date_to:
            return p
    return None


def parse_value(text: Any) -> float:
    """A plan's number: ``1 500 000,50`` (Russian), ``1500000.5``, or a number."""
    if isinstance(text, bool):
        raise ReportInputError("bad_plan_value", text=str(text))
    if isinstance(text, int | float):
        value = float(text)
    else:
        cleaned = re.sub(r"[\s\u00a0\u202f]", "", str(text)).replace(",", ".")
        if not re.fullmatch(r"\d+(\.\d+)?", cleaned):
            raise ReportInputError("bad_plan_value", text=str(text))
        value = float(cleaned)
    if not math.isfinite(value) or value < 0 or value > MAX_VALUE:
        raise ReportInputError("bad_plan_value", text=str(text))
    return value


def check_figure(figure: str) -> None:
    if figure not in PLANNABLE:
        raise ReportInputError("unplannable_figure", figure=figure, choices=", ".join(PLANNABLE))


class PlanEditDenied(AccessDenied):
    """The actor may not change this plan (HTTP 403, CLI exit 2)."""

    def message(self, lang: str = "en") -> str:
        what = (
            f"department {self.params['department']}"
            if "department" in self.params
            else f"user {self.params['user']}"
        )
        if lang == "ru":
            what = what.replace("department", "отдела").replace("user", "пользователя")
            return f"нет права менять план {what}"
        return f"no right to change the plan of {what}"


def editable(store: Store, portal: str, actor: int | None) -> tuple[set[int], set[int]] | None:
    """(departments, users) whose plans ``actor`` may change; None: every plan."""
    if actor is None or is_report_admin(store, portal, actor):
        return None
    headed = {
        d for (d,) in store.query(
            "SELECT id FROM departments WHERE portal = ? AND head_id = ?", [portal, actor]
        )
    }  # fmt: skip
    depts = subtree(store, portal, headed) if headed else set()
    return depts, users_of(store, portal, depts) if depts else set()


def check_edit(store: Store, portal: str, actor: int | None, subject: str, subject_id: int) -> None:
    rights = editable(store, portal, actor)
    if rights is None:
        return
    depts, users = rights
    if subject == "department" and subject_id not in depts:
        raise PlanEditDenied(department=subject_id)
    if subject == "user" and subject_id not in users:
        raise PlanEditDenied(subject_id)


def _check_subject(store: Store, portal: str, subject: str, subject_id: int) -> None:
    if subject not in SUBJECTS:
        raise ReportInputError("bad_plan_subject", subject=subject)
    if subject == "department":
        known = store.scalar(
            "SELECT count(*) FROM departments WHERE portal = ? AND id = ?", [portal, subject_id]
        )
        if not known:
            raise ReportInputError("unknown_department", department=subject_id)
    elif not is_known_user(store, portal, subject_id):
        raise ReportInputError("unknown_user", user=subject_id, portal=portal)


@dataclass(frozen=True)
class PlanEntry:
    """One plan to set: ``value`` None removes it."""

    subject: str
    subject_id: int
    figure: str
    period: PlanPeriod
    value: float | None


def set_plans(
    store: Store,
    portal: str,
    entries: Sequence[PlanEntry],
    *,
    actor: int | None,
    now: datetime | None = None,
) -> int:
    """Set many plans at once, all or nothing; returns how many changed.

    Every entry is checked (subject, figure, rights) before anything is
    written, so one bad line leaves the store as it was.
    """
    for e in entries:
        _check_subject(store, portal, e.subject, e.subject_id)
        check_figure(e.figure)
        if e.value is not None:
            parse_value(e.value)
        check_edit(store, portal, actor, e.subject, e.subject_id)
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    changed = 0
    with store.transaction():
        next_id = int(
            store.scalar("SELECT coalesce(max(id), 0) FROM plan_changes WHERE portal = ?", [portal])
        )
        for e in entries:
            key = [portal, e.subject, e.subject_id, e.figure, e.period.kind, e.period.start]
            old = store.scalar(
                "SELECT value FROM plans WHERE portal = ? AND subject = ? AND subject_id = ? "
                "AND figure = ? AND period_kind = ? AND period_start = ?",
                key,
            )
            if old == e.value:
                continue
            if e.value is None:
                store.execute(
                    "DELETE FROM plans WHERE portal = ? AND subject = ? AND subject_id = ? "
                    "AND figure = ? AND period_kind = ? AND period_start = ?",
                    key,
                )
            else:
                store.upsert("plans", [{
                    "portal": portal, "subject": e.subject, "subject_id": e.subject_id,
                    "figure": e.figure, "period_kind": e.period.kind,
                    "period_start": e.period.start, "value": float(e.value),
                    "changed_by": actor, "changed_at": moment,
                }])  # fmt: skip
            next_id += 1
            store.upsert("plan_changes", [{
                "portal": portal, "id": next_id, "subject": e.subject,
                "subject_id": e.subject_id, "figure": e.figure, "period_kind": e.period.kind,
                "period_start": e.period.start, "old_value": old, "new_value": e.value,
                "changed_by": actor, "changed_at": moment,
            }])  # fmt: skip
            changed += 1
    return changed


def copy_plans(
    store: Store, portal: str, source: PlanPeriod, target: PlanPeriod, *, actor: int | None
) -> int:
    """Copy the plans of ``source`` that ``actor`` may change onto ``target``."""
    entries = [
        PlanEntry(r["subject"], r["subject_id"], r["figure"], target, r["value"])
        for r in list_plans(store, portal, viewer=actor, period=source)
        if _may_edit(store, portal, actor, r["subject"], r["subject_id"])
    ]
    return set_plans(store, portal, entries, actor=actor)


def _may_edit(store: Store, portal: str, actor: int | None, subject: str, sid: int) -> bool:
    try:
        check_edit(store, portal, actor, subject, sid)
    except PlanEditDenied:
        return False
    return True


def _visible(store: Store, portal: str, viewer: int | None) -> tuple[Any, set[int] | None]:
    scope = viewer_scope(store, portal, viewer)
    return scope, choosable_departments(store, portal, viewer, scope)


def list_plans(
    store: Store,
    portal: str,
    *,
    viewer: int | None,
    period: PlanPeriod | None = None,
    periods: Iterable[PlanPeriod] = (),
) -> list[dict[str, Any]]:
    """The plans in force that ``viewer`` may see (of ``period``/``periods``, or all)."""
    wanted = set(periods) | ({period} if period else set())
    scope, depts = _visible(store, portal, viewer)
    out = []
    for r in store.query_dicts(
        "SELECT subject, subject_id, figure, period_kind, period_start, value, changed_by, "
        "changed_at FROM plans WHERE portal = ? "
        "ORDER BY period_start, period_kind, subject, subject_id, figure",
        [portal],
    ):
        p = PlanPeriod(r["period_kind"], r["period_start"])
        if wanted and p not in wanted:
            continue
        if r["subject"] == "user" and not scope.sees(r["subject_id"]):
            continue
        if r["subject"] == "department" and depts is not None and r["subject_id"] not in depts:
            continue
        out.append({**r, "period": p.key})
    return out


def plan_history(store: Store, portal: str, *, viewer: int | None) -> list[dict[str, Any]]:
    """Every change of the plans ``viewer`` may see, oldest first."""
    scope, depts = _visible(store, portal, viewer)
    out = []
    for r in store.query_dicts(
        "SELECT id, subject, subject_id, figure, period_kind, period_start, old_value, "
        "new_value, changed_by, changed_at FROM plan_changes WHERE portal = ? ORDER BY id",
        [portal],
    ):
        if r["subject"] == "user" and not scope.sees(r["subject_id"]):
            continue
        if r["subject"] == "department" and depts is not None and r["subject_id"] not in depts:
            continue
        p = PlanPeriod(r["period_kind"], r["period_start"])
        out.append({**r, "period": p.key, "changed_at": r["changed_at"].isoformat() + "Z"})
    return out


def plans_for(store: Store, portal: str, period: PlanPeriod) -> dict[tuple[str, int, str], float]:
    """(subject, id, figure) -> the plan for ``period`` in force now.

    A quarter's plan is its own number; without one, the sum of its months'
    plans (when any month has one).
    """
    rows = store.query(
        "SELECT subject, subject_id, figure, period_kind, period_start, value FROM plans "
        "WHERE portal = ? AND period_start >= ? AND period_start <= ?",
        [portal, period.start, period.end],
    )
    own: dict[tuple[str, int, str], float] = {}
    months: dict[tuple[str, int, str], float] = {}
    for subject, sid, figure, kind, start, value in rows:
        key = (subject, sid, figure)
        if kind == period.kind and start == period.start:
            own[key] = value
        elif period.kind == "quarter" and kind == "month":
            months[key] = months.get(key, 0.0) + value
    return {**months, **own}


def plans_version(store: Store) -> tuple:
    """Changes whenever a plan changes: a built report's cache key carries it.
    Remembered until the next write where the store allows it (rop.store.memo)."""
    return store.remember(("plans_version",), lambda: _plans_version(store))


def _plans_version(store: Store) -> tuple:
    row = store.query("SELECT count(*), max(changed_at) FROM plan_changes")
    return tuple(row[0]) if row else ()
