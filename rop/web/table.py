"""The report table as the template draws it: column groups, rows grouped by
department with subtotals, a grand total, every cell formatted and linked to
its drill-down, with its delta against the previous period."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rop.web import bidi, i18n
from rop.web.formatting import Delta, delta, fmt_value
from rop.web.params import WebFilter
from rop.web.urls import Urls


@dataclass
class Cell:
    text: str
    href: str | None = None
    delta: Delta | None = None
    empty: bool = False
    zero: bool = False  # drawn muted, so the figures that are not zero stand out


@dataclass
class Line:
    kind: str  # row | subtotal | total
    name: str
    href: str | None = None  # the user's profile
    page: str | None = None  # the manager's page (issue 15)
    dismissed: bool = False
    unknown: bool = False
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Block:
    title: str | None
    lines: list[Line]
    subtotal: Line | None = None


@dataclass
class Table:
    groups: list[tuple[str, int, str]]  # (section label, column count, section key)
    columns: list[dict[str, Any]]
    blocks: list[Block]
    total: Line | None
    first_header: str


def _label(col: dict[str, Any], lang: str) -> str:
    return str(col.get(f"label_{lang}") or col.get("label_ru") or col["key"])


def _is_now(key: str) -> bool:
    """A figure about the present (in progress, portfolio): the same in both periods."""
    from rop.metrics.catalogue import figure
    from rop.metrics.errors import ReportInputError

    try:
        return bool(figure(key).now)
    except ReportInputError:
        return False


def columns_for(report: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in report.get("columns", []):
        section = c.get("section", "")
        out.append(
            {
                "key": c["key"],
                "section": section,
                "kind": c.get("kind", "count"),
                "label": _label(c, lang),
                "description": c.get(f"description_{lang}") or c.get("description_ru") or "",
                # The first column of a section gets a heavier left rule and an anchor.
                "starts_section": not out or out[-1]["section"] != section,
                "now": _is_now(c["key"]),
            }
        )
    return out


def row_name(row: dict[str, Any], lang: str, by: str = "manager") -> str:
    """A row's name; a user missing from the portal's directory is "Пользователь #7",
    and the row of records with no department/source/pipeline says so."""
    if row.get("unknown") and row.get("user_id") is not None:
        from rop.report.formatting import unknown_user_name

        return unknown_user_name(row["user_id"], lang)
    name = str(row.get(f"name_{lang}") or row.get("name") or "")
    if by != "manager" and row.get("key") is None and name in ("", "—"):
        return i18n.text(f"no_{by}", lang)
    return name


def _prev_index(report: dict[str, Any]) -> tuple[dict[Any, dict], dict[Any, dict], dict]:
    prev = report.get("previous") or {}
    rows = {_row_key(r): r.get("figures", {}) for r in prev.get("rows", []) or []}
    depts = {
        d.get("department_id"): d.get("figures", {}) for d in prev.get("departments", []) or []
    }
    total = (prev.get("total") or {}).get("figures", {}) or {}
    return rows, depts, total


def _row_key(row: dict[str, Any]) -> Any:
    for k in ("user_id", "key", "department_id", "source_id", "pipeline_id"):
        if row.get(k) is not None:
            return (k, row[k])
    return ("name", row.get("name"))


def _row_link_args(row: dict[str, Any], wf: WebFilter) -> dict[str, Any] | None:
    """How a row's numbers drill down, or None when the engine cannot narrow to it."""
    if wf.by == "manager" and row.get("user_id") is not None:
        return {"user": row["user_id"]}
    if wf.by != "manager":
        # The "—" row (no department, source or pipeline) drills down too.
        return {"key": row["key"]} if row.get("key") is not None else {"none": True}
    return None


def build_table(
    report: dict[str, Any], wf: WebFilter, urls: Urls, lang: str, currency: str
) -> Table:
    cols = columns_for(report, lang)
    groups: list[tuple[str, int, str]] = []
    for c in cols:
        label = i18n.text(f"section_{c['section']}", lang) if c["section"] else ""
        if groups and groups[-1][0] == label:
            groups[-1] = (label, groups[-1][1] + 1, c["section"])
        else:
            groups.append((label, 1, c["section"]))
    prev_rows, prev_depts, prev_total = _prev_index(report)
    has_prev = bool(report.get("previous")) and wf.compare

    base = tuple(wf.pairs())

    def cells(figures: dict, prev: dict | None, link: tuple[tuple, dict] | None) -> list[Cell]:
        out = []
        for c in cols:
            value = figures.get(c["key"])
            d = None
            # A figure about the present has no previous value of its own: no delta.
            if has_prev and prev is not None and not c["now"] and (value or prev.get(c["key"])):
                d = delta(c["key"], c["kind"], value, prev.get(c["key"]), currency, lang)
            href = None
            # A zero count has no records behind it; "—" has nothing to list.
            worth = value is not None and not (c["kind"] == "count" and value == 0)
            if link is not None and worth:
                pairs, args = link
                href = urls.drill(pairs, c["key"], **args)
            out.append(
                Cell(
                    fmt_value(c["kind"], value, currency, lang), href, d, value is None, value == 0
                )
            )
        return out

    first_header = i18n.text(wf.by if wf.by != "manager" else "manager", lang)
    blocks: list[Block] = []
    rows = report.get("rows", []) or []

    def _link(row: dict[str, Any]) -> tuple[tuple, dict] | None:
        args = _row_link_args(row, wf)
        return None if args is None else (base, args)

    def line(row: dict[str, Any]) -> Line:
        return Line(
            kind="row",
            name=row_name(row, lang, wf.by),
            href=row.get("profile_url"),
            page=urls.manager(base, row["user_id"])
            if wf.by == "manager" and row.get("user_id") is not None
            else None,
            dismissed=bool(row.get("dismissed")),
            # "unknown" on a source/pipeline row is a key missing from the
            # directory, not an unknown user: no "unknown user" badge there.
            unknown=bool(row.get("unknown")) and row.get("user_id") is not None,
            cells=cells(row.get("figures", {}), prev_rows.get(_row_key(row)), _link(row)),
        )

    if wf.by == "manager" and report.get("departments"):
        by_dept: dict[Any, list[dict]] = {}
        for r in rows:
            by_dept.setdefault(r.get("department_id"), []).append(r)
        seen = set()
        # People without a department come last, after the real departments.
        ordered = sorted(report["departments"], key=lambda d: d.get("department_id") is None)
        for d in ordered:
            did = d.get("department_id")
            seen.add(did)
            members = by_dept.get(did, [])
            if not members:
                continue
            title = d.get(f"name_{lang}") or d.get("name") or i18n.text("no_department", lang)
            sub = Line(
                kind="subtotal",
                name=f"{i18n.text('subtotal', lang)}: {bidi.isolate(title)}",
                cells=cells(
                    d.get("figures", {}),
                    prev_depts.get(did),
                    (base, {"department": did} if did is not None else {"none": True}),
                ),
            )
            blocks.append(Block(str(title), [line(r) for r in members], sub))
        rest = [r for r in rows if r.get("department_id") not in seen]
        if rest:
            blocks.append(Block(None, [line(r) for r in rest]))
    else:
        blocks.append(Block(None, [line(r) for r in rows]))

    total = None
    if report.get("total") is not None:
        total = Line(
            kind="total",
            name=i18n.text("total", lang),
            cells=cells(report["total"].get("figures", {}), prev_total, (base, {})),
        )
    return Table(groups, cols, blocks, total, first_header)


# Figures that count events of the period; "not called" and the like count
# the portfolio against the period, so they are not evidence of activity.
_EVENTS = (
    "deals_new",
    "deals_moved",
    "deals_won",
    "deals_lost",
    "leads_new",
    "leads_moved",
    "leads_converted",
    "leads_junk",
    "companies_new",
    "contacts_new",
    "calls_total",
)


def quiet(report: dict[str, Any]) -> bool:
    """True when nothing happened in the period: no event figure shown is above zero."""
    figures = (report.get("total") or {}).get("figures") or {}
    shown = {c["key"] for c in report.get("columns", [])} & set(_EVENTS)
    return bool(shown) and all(not figures.get(k) for k in shown)
