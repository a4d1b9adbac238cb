"""The report filter (METRICS.md "What the user chooses") and the report's errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rop.metrics.errors import AccessDenied, ReportInputError
from rop.report.bounds import check_period, check_whole
from rop.report.periods import COMPARE_MODES

SECTIONS: tuple[str, ...] = ("deals", "leads", "companies", "contacts", "calls")
GROUPINGS: tuple[str, ...] = ("manager", "department", "source", "pipeline")

# Words of the filter's sentence (ru, en).
_WORDS = {
    "pipelines": ("воронки", "pipelines"),
    "stages": ("ключевые стадии", "key stages"),
    "statuses": ("ключевые статусы", "key statuses"),
    "departments": ("отделы", "departments"),
    "managers": ("менеджеры", "managers"),
}
_SECTION_WORDS = {
    "deals": ("сделки", "deals"),
    "leads": ("лиды", "leads"),
    "companies": ("компании", "companies"),
    "contacts": ("контакты", "contacts"),
    "calls": ("звонки", "calls"),
}
_BY_WORDS = {
    "department": ("отделам", "department"),
    "source": ("источникам", "source"),
    "pipeline": ("воронкам", "pipeline"),
    "manager": ("менеджерам", "manager"),
}

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
    # A period that has not ended: its days so far against the same days of the
    # previous period ("to_date"), or against the whole previous period ("full").
    previous: str = "to_date"
    viewer: int | None = None  # None = no restriction (admin CLI use)
    today: date | None = None  # "now" for overdue deals; None = the portal's today
    stuck_days: int = 14  # stage analytics: no movement for more than this many days
    # ... and per pipeline where it differs: ((pipeline, days), ...), by pipeline
    stuck_days_by: tuple[tuple[int, int], ...] = ()

    def stuck_days_for(self, pipeline: int) -> int:
        """The stuck threshold of one pipeline: its own, else the default."""
        return dict(self.stuck_days_by).get(pipeline, self.stuck_days)

    def validate(self) -> None:
        """Raise ReportInputError naming the first thing wrong with the filter itself.

        The ranges are rop.report.bounds' (the CLI and the web check the same).
        """
        check_period(self.date_from, self.date_to, ("date_from", "date_to"))
        for name, ids in (
            ("pipeline", self.pipelines),
            ("department", self.departments),
            ("manager", self.managers),
        ):
            for ident in ids:
                check_whole(ident, name)
        if self.viewer is not None:
            check_whole(self.viewer, "viewer")
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown:
            raise ReportInputError(
                "unknown_section", section=unknown[0], choices=", ".join(SECTIONS)
            )
        if self.previous not in COMPARE_MODES:
            raise ReportInputError(
                "unknown_compare_mode", mode=self.previous, choices=", ".join(COMPARE_MODES)
            )
        if self.by not in GROUPINGS:
            raise ReportInputError("unknown_grouping", by=self.by, choices=", ".join(GROUPINGS))
        check_whole(self.min_call_seconds, "min_call_seconds")
        check_whole(self.stuck_days, "stuck_days")
        for pipeline, days in self.stuck_days_by:
            check_whole(pipeline, "pipeline")
            check_whole(days, f"stuck_days.{pipeline}")
        if self.max_call_seconds is not None:
            check_whole(self.max_call_seconds, "max_call_seconds")
        if self.max_call_seconds is not None and self.max_call_seconds < self.min_call_seconds:
            raise ReportInputError(
                "max_call_below_min", high=self.max_call_seconds, low=self.min_call_seconds
            )

    def describe(self, lang: str = "ru", names: dict[tuple[str, object], str] | None = None) -> str:
        """The filter as one sentence, shown above a report and a drill-down list.

        ``names`` maps ("pipeline" | "stage" | "status" | "department" | "user", ID)
        to its name in the store (rop.report.context.filter_names); an ID
        without one is shown as it is, pipeline 0 as the general pipeline.
        """
        ru = lang == "ru"
        known = dict(names or {})
        known.setdefault(("pipeline", 0), "Общая" if ru else "General")

        def listed(kind: str, ids: tuple) -> str:
            return ", ".join(known.get((kind, i)) or str(i) for i in ids)

        parts = [
            (f"с {self.date_from:%d.%m.%Y} по {self.date_to:%d.%m.%Y}")
            if ru
            else f"from {self.date_from.isoformat()} to {self.date_to.isoformat()}"
        ]
        for kind, ids, (ru_word, en_word) in (
            ("pipeline", self.pipelines, _WORDS["pipelines"]),
            ("stage", self.key_stages, _WORDS["stages"]),
            ("status", self.key_statuses, _WORDS["statuses"]),
            ("department", self.departments, _WORDS["departments"]),
            ("user", self.managers, _WORDS["managers"]),
        ):
            if ids:
                parts.append(f"{ru_word if ru else en_word}: {listed(kind, ids)}")
        if tuple(self.sections) != SECTIONS:
            shown = ", ".join(_SECTION_WORDS[s][0 if ru else 1] for s in self.sections) or (
                "не выбраны" if ru else "none chosen"
            )
            parts.append(f"разделы: {shown}" if ru else f"sections: {shown}")
        if self.by != "manager":
            by = _BY_WORDS[self.by][0 if ru else 1]
            parts.append(f"строки по {by}" if ru else f"rows by {by}")
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
            "previous": self.previous,
            "viewer": self.viewer,
            "stuck_days": self.stuck_days,
            "stuck_days_by_pipeline": {str(p): d for p, d in self.stuck_days_by},
        }
