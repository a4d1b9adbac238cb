"""The filter as it lives in the URL: parse it, check it, and write it back.

Parsing only checks shape (a real date, a whole number, a known choice, a
pipeline that exists); the report engine's ``ReportFilter`` owns the meaning.
Every problem raises :class:`BadInput` naming the field and the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from starlette.datastructures import QueryParams

from rop.report.bounds import MAX_WHOLE, check_day, check_period, check_whole
from rop.report.filter import ReportInputError
from rop.web import i18n
from rop.web.errors import BadInput
from rop.web.options import Options

SECTIONS = ("deals", "leads", "companies", "contacts", "calls")
ROWS_BY = ("manager", "department", "source", "pipeline")
DEFAULT_PRESET = "this_month"
_DOTTED = re.compile(r"\d{1,2}\.\d{1,2}\.\d{4}")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class WebFilter:
    lang: str
    period: str
    date_from: date
    date_to: date
    pipelines: tuple[int, ...] = ()
    key_stages: tuple[str, ...] = ()
    key_statuses: tuple[str, ...] = ()
    sections: tuple[str, ...] = SECTIONS
    departments: tuple[int, ...] = ()
    managers: tuple[int, ...] = ()
    min_call: int = 0
    stuck_days: int = 14
    stuck_days_by: tuple[tuple[int, int], ...] = ()  # (pipeline, days) where it differs
    max_call: int | None = None
    by: str = "manager"
    compare: bool = True
    previous: str = "to_date"  # rop.report.periods.COMPARE_MODES
    viewer: int | None = None
    viewer_in_url: bool = False
    today: date | None = None  # pinned "today" (presets, overdue); None: the portal's clock

    def pairs(self, lang: bool = True) -> list[tuple[str, str]]:
        """Canonical query pairs: only what differs from the defaults."""
        out: list[tuple[str, str]] = []
        if lang:
            out.append(("lang", self.lang))
        out.append(("period", self.period))
        if self.period == "custom":
            out += [("from", self.date_from.isoformat()), ("to", self.date_to.isoformat())]
        out += [("pipeline", str(p)) for p in self.pipelines]
        out += [("key_stage", s) for s in self.key_stages]
        out += [("key_status", s) for s in self.key_statuses]
        if tuple(self.sections) != SECTIONS:
            out += [("section", s) for s in self.sections] or [("section", "none")]
        out += [("department", str(d)) for d in self.departments]
        out += [("manager", str(m)) for m in self.managers]
        if self.min_call:
            out.append(("min_call", str(self.min_call)))
        if self.stuck_days != 14:
            out.append(("stuck_days", str(self.stuck_days)))
        out += [(f"stuck_days.{p}", str(d)) for p, d in self.stuck_days_by]
        if self.max_call is not None:
            out.append(("max_call", str(self.max_call)))
        if self.by != "manager":
            out.append(("by", self.by))
        if not self.compare:
            out.append(("compare", "0"))
        if self.previous != "to_date":
            out.append(("previous", self.previous))
        if self.viewer_in_url and self.viewer is not None:
            out.append(("viewer", str(self.viewer)))
        if self.today is not None:
            out.append(("today", self.today.isoformat()))
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "pipelines": list(self.pipelines),
            "key_stages": list(self.key_stages),
            "key_statuses": list(self.key_statuses),
            "sections": list(self.sections),
            "departments": list(self.departments),
            "managers": list(self.managers),
            "min_call_seconds": self.min_call,
            "max_call_seconds": self.max_call,
            "by": self.by,
            "compare": self.compare,
            "previous": self.previous,
            "viewer": self.viewer,
            "stuck_days": self.stuck_days,
            "stuck_days_by_pipeline": {str(p): d for p, d in self.stuck_days_by},
            "today": self.today.isoformat() if self.today else None,
        }

    def to_report_filter(self) -> Any:
        from rop.report.filter import ReportFilter

        return ReportFilter(
            date_from=self.date_from,
            date_to=self.date_to,
            pipelines=self.pipelines,
            key_stages=self.key_stages,
            key_statuses=self.key_statuses,
            sections=self.sections,
            departments=self.departments,
            managers=self.managers,
            min_call_seconds=self.min_call,
            max_call_seconds=self.max_call,
            by=self.by,
            compare=self.compare,
            previous=self.previous,
            viewer=self.viewer,
            stuck_days=self.stuck_days,
            stuck_days_by=self.stuck_days_by,
            today=self.today,
        )

    def narrowed(self, **changes: Any) -> WebFilter:
        return replace(self, **changes)


def _ints(q: QueryParams, name: str, lang: str) -> tuple[int, ...]:
    out = []
    for raw in q.getlist(name):
        for part in raw.split(","):
            if part.strip():
                out.append(parse_int(part, name, lang))
    return tuple(dict.fromkeys(out))


def _strs(q: QueryParams, name: str) -> tuple[str, ...]:
    out = [p.strip() for raw in q.getlist(name) for p in raw.split(",") if p.strip()]
    return tuple(dict.fromkeys(out))


def refused(exc: ReportInputError, name: str, raw: object, lang: str) -> BadInput:
    """A range refusal of rop.report.bounds in the page's words, naming the field."""
    shown = str(raw) if len(str(raw)) <= 40 else str(raw)[:40] + "…"
    words = i18n.text(exc.code, lang, **{**exc.params, "field": name, "value": shown})
    return BadInput(words, name, raw)


def parse_int(raw: str, name: str, lang: str, minimum: int = 0, maximum: int = MAX_WHOLE) -> int:
    """A whole number within the bounds the report accepts (rop.report.bounds)."""
    text = raw.strip()
    # int() also reads "1_000" and " ５ "; a URL's number is plain ASCII digits.
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise BadInput(i18n.text("bad_number", lang, value=raw, field=name), name, raw)
    # Thousands of digits would be slow to convert (Python refuses them): too large.
    value = int(text) if len(text) <= 40 else maximum + 1
    try:
        return check_whole(value, name, minimum, maximum)
    except ReportInputError as exc:
        raise refused(exc, name, raw, lang) from None


def _stuck_days_by(
    q: QueryParams, known: set[int], options: Options, lang: str
) -> tuple[tuple[int, int], ...]:
    """``stuck_days.<pipeline>=<days>``: a pipeline's own stuck threshold (empty: the default)."""
    out = []
    for name in dict.fromkeys(k for k in q if k.startswith("stuck_days.")):
        raw = q[name]
        if not raw.strip():
            continue  # the form's field left empty: the default
        tail = name.removeprefix("stuck_days.")
        pipeline = int(tail) if re.fullmatch(r"[0-9]{1,18}", tail) else None
        if pipeline is None or pipeline not in known:
            choices = ", ".join(f"{p['id']} ({p['name']})" for p in options.pipelines)
            message = i18n.text("unknown_pipeline", lang, value=tail, choices=choices)
            raise BadInput(message, name, raw)
        out.append((pipeline, parse_int(raw, name, lang)))
    return tuple(sorted(out))


def parse_date(raw: str, name: str, lang: str) -> date:
    """YYYY-MM-DD (links, the JSON twin) or DD.MM.YYYY (what a Russian reader types)."""
    text = raw.strip()
    try:
        if _DOTTED.fullmatch(text):
            day, month, year = text.split(".")
            return date(int(year), int(month), int(day))
        if _ISO.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise BadInput(i18n.text("bad_date", lang, value=raw, field=name), name, raw)


def show_date(day: date, lang: str) -> str:
    """A date as the filter bar shows it: 01.10.2026 in Russian, 2026-10-01 in English."""
    return day.strftime("%d.%m.%Y") if lang == "ru" else day.isoformat()


def parse_lang(q: QueryParams, default: str) -> str:
    lang = q.get("lang") or default
    if lang not in i18n.LANGS:
        message = i18n.text("bad_choice", default, value=lang, field="lang", choices="ru, en")
        raise BadInput(message, "lang", lang)
    return lang


def _known(values: tuple, known: set, message: str, lang: str, name: str) -> None:
    for value in values:
        if value not in known:
            raise BadInput(i18n.text(message, lang, value=value), name, value)


def _choice(raw: str, name: str, choices: tuple[str, ...], lang: str) -> str:
    if raw not in choices:
        raise BadInput(
            i18n.text("bad_choice", lang, value=raw, field=name, choices=", ".join(choices)),
            name,
            raw,
        )
    return raw


def parse_filter(
    q: QueryParams,
    options: Options,
    *,
    default_lang: str = "ru",
    viewer: int | None = None,
    demo: bool = False,
) -> WebFilter:
    """The page's filter from its query string; raises BadInput on any bad value."""
    from rop.report.periods import COMPARE_MODES, PRESETS, resolve_period

    lang = parse_lang(q, default_lang)
    presets = tuple(PRESETS)
    # "today" pins the day presets and overdue deals count from; by default the
    # portal's clock at the last sync (the report's own, never the machine's).
    today = parse_date(q["today"], "today", lang) if q.get("today") else None
    if today is not None:
        try:
            check_day(today, "today")
        except ReportInputError as exc:
            raise refused(exc, "today", q["today"], lang) from None
    period = q.get("period") or ("custom" if q.get("from") or q.get("to") else DEFAULT_PRESET)
    if period == "custom":
        if not q.get("from") or not q.get("to"):
            missing = "from" if not q.get("from") else "to"
            raise BadInput(i18n.text("missing", lang, field=missing), missing)
        date_from = parse_date(q["from"], "from", lang)
        date_to = parse_date(q["to"], "to", lang)
        if date_to < date_from:
            raise BadInput(
                i18n.text("bad_choice", lang, value=q["to"], field="to", choices=f">= {date_from}"),
                "to",
                q["to"],
            )
        try:
            check_period(date_from, date_to, ("from", "to"))
        except ReportInputError as exc:
            field = exc.params.get("field", "from")
            raise refused(exc, field, q[field], lang) from None
    else:
        _choice(period, "period", (*presets, "custom"), lang)
        date_from, date_to = resolve_period(period, today or options.today())

    pipelines = _ints(q, "pipeline", lang)
    known = {p["id"] for p in options.pipelines}
    for p in pipelines:
        if p not in known:
            choices = ", ".join(f"{q['id']} ({q['name']})" for q in options.pipelines)
            message = i18n.text("unknown_pipeline", lang, value=p, choices=choices)
            raise BadInput(message, "pipeline", p)

    sections = _strs(q, "section")
    if not sections:
        sections = SECTIONS
    elif sections == ("none",):
        sections = ()
    else:
        for s in sections:
            _choice(s, "section", SECTIONS, lang)
        sections = tuple(s for s in SECTIONS if s in sections)

    min_call = parse_int(q["min_call"], "min_call", lang) if q.get("min_call") else 0
    max_call = parse_int(q["max_call"], "max_call", lang) if q.get("max_call") else None
    if max_call is not None and max_call < min_call:
        raise BadInput(
            i18n.text(
                "bad_choice", lang, value=max_call, field="max_call", choices=f">= {min_call}"
            ),
            "max_call",
            q["max_call"],
        )
    stuck_days = parse_int(q["stuck_days"], "stuck_days", lang) if q.get("stuck_days") else 14
    stuck_days_by = _stuck_days_by(q, known, options, lang)
    by = _choice(q.get("by") or "manager", "by", ROWS_BY, lang)
    compare_raw = q.get("compare", "1")
    compare = _choice(compare_raw, "compare", ("0", "1", "on", "off"), lang) in ("1", "on")
    previous = _choice(q.get("previous") or "to_date", "previous", COMPARE_MODES, lang)

    viewer_in_url = False
    if demo and q.get("viewer"):
        viewer = parse_int(q["viewer"], "viewer", lang)
        viewer_in_url = True

    key_stages = _strs(q, "key_stage")
    _known(key_stages, {s["status_id"] for s in options.stages}, "unknown_stage", lang, "key_stage")
    key_statuses = _strs(q, "key_status")
    _known(
        key_statuses,
        {s["status_id"] for s in options.statuses},
        "unknown_status",
        lang,
        "key_status",
    )
    departments = _ints(q, "department", lang)
    _known(
        departments,
        {d["id"] for d in options.departments},
        "unknown_department",
        lang,
        "department",
    )
    if pipelines:
        # The form keeps stages ticked for pipelines since unchosen; drop those
        # (the picker no longer shows them). Unknown stages stay, to be refused.
        elsewhere = {s["status_id"] for s in options.stages if s["category_id"] not in pipelines}
        key_stages = tuple(s for s in key_stages if s not in elsewhere)

    return WebFilter(
        lang=lang,
        period=period,
        date_from=date_from,
        date_to=date_to,
        pipelines=pipelines,
        key_stages=key_stages,
        key_statuses=key_statuses,
        sections=sections,
        departments=departments,
        managers=_ints(q, "manager", lang),
        min_call=min_call,
        max_call=max_call,
        stuck_days=stuck_days,
        stuck_days_by=stuck_days_by,
        by=by,
        compare=compare,
        previous=previous,
        viewer=viewer,
        viewer_in_url=viewer_in_url,
        today=today,
    )
