"""The report's lines in the order a file shows them, with their previous-period figures.

Each department's managers come first and its subtotal right under them, as
on the page; then the total. A file reader cannot see the page's grouping,
so the order carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rop.report.formatting import previous_title, row_title, word


@dataclass(frozen=True)
class Line:
    kind: str  # row | department | total | previous
    title: str
    department: str
    figures: dict[str, Any]
    previous: dict[str, Any] | None = None  # the same line's figures a period earlier
    user_id: int | None = None


def _department_name(d: dict[str, Any], lang: str) -> str:
    return str(d.get(f"name_{lang}") or d.get("name") or word("no_department", lang))


def report_lines(report: dict, lang: str, *, previous_line: bool = False) -> list[Line]:
    """Managers then their department's subtotal, department by department; the total;
    and, with ``previous_line``, the previous period's total as a line of its own."""
    prev = report.get("previous") or {}
    has_prev = "previous" in report
    prev_rows = {(r.get("user_id"), str(r.get("key"))): r["figures"] for r in prev.get("rows", [])}
    prev_depts = {d.get("department_id"): d["figures"] for d in prev.get("departments", [])}

    def row_line(r: dict[str, Any]) -> Line:
        before = prev_rows.get((r.get("user_id"), str(r.get("key")))) if has_prev else None
        return Line(
            "row",
            row_title(r, lang),
            str(r.get("department") or ""),
            r["figures"],
            before if before is not None else ({} if has_prev else None),
            r.get("user_id"),
        )

    rows = list(report["rows"])
    lines: list[Line] = []
    for d in report["departments"]:
        dept_id = d.get("department_id")
        lines.extend(row_line(r) for r in rows if r.get("department_id") == dept_id)
        rows = [r for r in rows if r.get("department_id") != dept_id]
        name = _department_name(d, lang)
        before = prev_depts.get(dept_id, {}) if has_prev else None
        lines.append(
            Line("department", f"{word('total', lang)}: {name}", name, d["figures"], before)
        )
    # Rows by source or pipeline have no departments; they keep the report's order.
    lines.extend(row_line(r) for r in rows)
    total_before = (prev.get("total") or {}).get("figures") if has_prev else None
    lines.append(Line("total", word("total", lang), "", report["total"]["figures"], total_before))
    if previous_line and has_prev:
        lines.append(Line("previous", previous_title(report, lang), "", prev["total"]["figures"]))
    return lines
