"""The report filter (METRICS.md "What the user chooses") and the report's errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rop.metrics.errors import AccessDenied, ReportInputError

SECTIONS: tuple[str, ...] = ("deals", "leads", "companies", "contacts", "calls")
GROUPINGS: tuple[str, ...] = ("manager", "department", "source", "pipeline")

__all__ = ["AccessDenied", "ReportFilter", "ReportInputError", "GROUPINGS", "SECTIONS"]


@dataclass(frozen=True)
class ReportFilter:
    date_from: date  # inclusive, portal-local day
    date_to: date  # inclusive, portal-local day
    pipelines: tuple[int, ...] = ()  # empty = all
    key_stages: tuple[str, ...] = ()
    key_statuses: tuple[str, ...] = ()
    sections: tuple[str, ...] = SECTIONS
    departments: tuple[int, ...] = ()
    managers: tuple[int, ...] = ()
    min_call_seconds: int = 0
    max_call_seconds: int | None = None
    by: str = "manager"  # manager|department|source|pipeline
    compare: bool = True
    viewer: int | None = None  # None = no restriction (admin CLI use)
    today: date | None = None  # "now" for overdue deals; None = the portal's today

    def validate(self) -> None:
        """Raise ReportInputError naming the first thing wrong with the filter itself."""
        if self.date_from > self.date_to:
            raise ReportInputError(
                f"the period starts after it ends: {self.date_from} > {self.date_to}"
            )
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown:
            raise ReportInputError(
                f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}"
            )
        if self.by not in GROUPINGS:
            raise ReportInputError(
                f"unknown grouping {self.by!r}; choose from {', '.join(GROUPINGS)}"
            )
        if self.min_call_seconds < 0:
            raise ReportInputError("the minimum call duration cannot be negative")
        if self.max_call_seconds is not None and self.max_call_seconds < self.min_call_seconds:
            raise ReportInputError(
                f"the maximum call duration ({self.max_call_seconds} s) is below "
                f"the minimum ({self.min_call_seconds} s)"
            )

    def describe(self, lang: str = "ru", names: dict[tuple[str, object], str] | None = None) -> str:
        """The filter as one sentence, shown above a drill-down list.

        ``names`` maps ("pipeline" | "department" | "user", ID) to a name; IDs
        without one are shown as they are.
        """
        ru = lang == "ru"
        known = names or {}

        def listed(kind: str, ids: tuple) -> str:
            return ", ".join(known.get((kind, i)) or str(i) for i in ids)

        parts = [
            (f"с {self.date_from:%d.%m.%Y} по {self.date_to:%d.%m.%Y}")
            if ru
            else f"from {self.date_from.isoformat()} to {self.date_to.isoformat()}"
        ]
        if self.pipelines:
            ids = listed("pipeline", self.pipelines)
            parts.append(f"воронки {ids}" if ru else f"pipelines {ids}")
        if self.departments:
            ids = listed("department", self.departments)
            parts.append(f"отделы {ids}" if ru else f"departments {ids}")
        if self.managers:
            ids = listed("user", self.managers)
            parts.append(f"менеджеры {ids}" if ru else f"managers {ids}")
        if self.min_call_seconds or self.max_call_seconds is not None:
            low = self.min_call_seconds
            if self.max_call_seconds is None:
                parts.append(f"звонки от {low} с" if ru else f"calls of {low} s or longer")
            else:
                high = self.max_call_seconds
                parts.append(
                    f"звонки от {low} до {high} с" if ru else f"calls of {low} to {high} s"
                )
        if self.viewer is not None:
            who = listed("user", (self.viewer,))
            parts.append(f"глазами: {who}" if ru else f"as seen by {who}")
        head = "Период " if ru else "Period "
        return head + "; ".join(parts)

    def as_json(self) -> dict:
        return {
            "pipelines": list(self.pipelines),
            "key_stages": list(self.key_stages),
            "key_statuses": list(self.key_statuses),
            "sections": list(self.sections),
            "departments": list(self.departments),
            "managers": list(self.managers),
            "min_call_seconds": self.min_call_seconds,
            "max_call_seconds": self.max_call_seconds,
            "by": self.by,
            "compare": self.compare,
            "viewer": self.viewer,
        }
