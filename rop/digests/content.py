"""What a digest says: built from the report, in the reader's own scope.

The digest is the report (rop.report.build_report) of the subscription's
period and saved filter with the reader as viewer: the same figures the
page shows that reader, nothing outside their scope (a manager sees
themselves, a head their departments, an administrator everyone; in app
mode the reader's Bitrix24 grant). It keeps a few key figures with the
change against the report's previous period, the rows (a head's managers),
what needs attention first, and a link back to the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from rop.digests.subscriptions import Subscription, period_days
from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from rop.report.scope import viewer_scope
from rop.store.db import Store

# The key figures, in order; those of hidden sections drop out.
KEY_FIGURES = (
    "deals_won_amount",
    "deals_won",
    "deals_new",
    "deals_conversion_sale",
    "leads_new",
    "calls_total",
)
# The columns of a head's or administrator's table of managers.
ROW_FIGURES = ("deals_won_amount", "deals_won", "deals_new", "calls_total")
# What needs attention first: figures of the catalogue (the table's, the stage
# section's stuck deals, and the missed calls nobody has called back yet).
ATTENTION = ("deals_overdue", "deals_stuck", "calls_not_called_back", "companies_not_called")
# Catalogue figures that are not columns of the table: counted by their drill-down.
_DRILLED = {"calls_not_called_back": "calls"}
_ATTENTION_WORDS = {
    "deals_stuck": ("Зависшие сделки", "Stuck deals"),
}
# The overdue deals listed by name (the rest behind the link).
OVERDUE_LISTED = 5
# A head's table in chat is cut to this many managers (ATTACH has a size limit).
RANK_FIGURE = "deals_won_amount"


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    kind: str
    value: Any
    previous: Any = None

    @property
    def change(self) -> float | None:
        """The relative change against the previous period; None when not comparable."""
        if not isinstance(self.value, int | float) or not isinstance(self.previous, int | float):
            return None
        if self.previous == 0:
            return None
        return (self.value - self.previous) / abs(self.previous)


@dataclass(frozen=True)
class Row:
    name: str
    department: str | None
    figures: dict[str, Any]
    user_id: int | None = None


@dataclass(frozen=True)
class Attention:
    key: str
    label: str
    count: int


@dataclass
class Digest:
    subscription: Subscription
    reader_name: str
    role: str  # manager | head | admin
    date_from: date
    date_to: date
    previous: tuple[date, date] | None
    currency: str | None
    figures: list[Figure]
    rows: list[Row]
    row_columns: list[tuple[str, str, str]]  # key, label, kind
    attention: list[Attention]
    overdue: list[dict[str, Any]]
    rank: tuple[int, int] | None
    link: str
    report: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def language(self) -> str:
        return self.subscription.language

    @property
    def empty(self) -> bool:
        """Nothing to say: no figure above zero, nothing needing attention."""
        nonzero = any(f.value not in (None, 0, 0.0) for f in self.figures)
        return not nonzero and not any(a.count for a in self.attention)


@dataclass(frozen=True)
class Links:
    """Where the digest's link points.

    App mode: the app's page inside Bitrix24 (``https://PORTAL/marketplace/
    view/CODE/?params[...]``, BITRIX24_APP.md §6); otherwise the web report's
    address (``report_url``). None of them: no link.
    """

    report_url: str | None = None
    app_code: str | None = None
    portal_url: str | None = None

    def to(self, pairs: list[tuple[str, str]]) -> str:
        if self.app_code and self.portal_url:
            # One value per key: Bitrix24 reads the query as PHP does, where a
            # repeated params[k] keeps only the last; the report reads "1,2".
            joined: dict[str, list[str]] = {}
            for k, v in pairs:
                joined.setdefault(k, []).append(v)
            query = urlencode([(f"params[{k}]", ",".join(v)) for k, v in joined.items()])
            return f"{self.portal_url.rstrip('/')}/marketplace/view/{self.app_code}/?{query}"
        if self.report_url:
            # Marked as a link: a reader outside its people filters gets the report
            # they may see, not a 403 (rop.web.link_scope; /app marks the app's).
            return f"{self.report_url.rstrip('/')}/?{urlencode([*pairs, ('via', 'link')])}"
        return ""


def report_filter(sub: Subscription, send_day: date) -> ReportFilter:
    """The report filter of a digest sent on ``send_day`` (the reader's local day)."""
    date_from, date_to = period_days(sub.period, send_day)
    saved = sub.filter
    flt = ReportFilter(
        date_from=date_from,
        date_to=date_to,
        pipelines=tuple(saved.get("pipelines", ())),
        departments=tuple(saved.get("departments", ())),
        managers=tuple(saved.get("managers", ())),
        viewer=sub.user_id,
        compare=True,
        # A digest's period has ended by its send day (yesterday, last week, last
        # month, the month up to yesterday): it compares with the whole previous
        # period, whatever day the last copy was made (its clock may be behind).
        previous="full",
    )
    if saved.get("sections"):
        flt = replace(flt, sections=tuple(saved["sections"]))
    flt.validate()
    return flt


def report_pairs(sub: Subscription, flt: ReportFilter) -> list[tuple[str, str]]:
    """The web report's query for this filter (rop/web/params.py's names)."""
    pairs = [
        ("lang", sub.language),
        ("period", "custom"),
        ("from", flt.date_from.isoformat()),
        ("to", flt.date_to.isoformat()),
        ("previous", flt.previous),
    ]
    pairs += [("pipeline", str(p)) for p in flt.pipelines]
    pairs += [("department", str(d)) for d in flt.departments]
    pairs += [("manager", str(m)) for m in flt.managers]
    if sub.filter.get("sections"):
        pairs += [("section", s) for s in flt.sections]
    return pairs


def _label(column: dict[str, Any] | None, key: str, lang: str) -> str:
    if column is None:
        ru, en = _ATTENTION_WORDS.get(key, (key, key))
        return ru if lang == "ru" else en
    return str(column[f"label_{lang}"])


def _role(store: Store, portal: str, viewer: int) -> str:
    scope = viewer_scope(store, portal, viewer)
    if scope.everyone:
        return "admin"
    return "head" if len(scope.users) > 1 else "manager"


def _reader_name(store: Store, portal: str, user_id: int) -> str:
    rows = store.query(
        "SELECT name, last_name FROM users WHERE portal = ? AND id = ?", [portal, user_id]
    )
    if rows:
        name = " ".join(p for p in rows[0] if p)
        if name:
            return name
    return f"#{user_id}"


def _stuck(report: dict[str, Any]) -> int | None:
    deals = (report.get("stages") or {}).get("deals")
    if not deals:
        return None
    return sum(int(p["stuck"]["count"]) for p in deals["pipelines"])


def _rank(store: Store, portal: str, flt: ReportFilter, viewer: int) -> tuple[int, int] | None:
    """The reader's place by won amount among every manager of the report.

    Built without a viewer (everyone), so it is shown only where the report
    administrator allows it (``ROP_DIGESTS_RANK``); only the place and the
    count leave this function, never another manager's figures.
    """
    full = build_report(store, replace(flt, viewer=None, compare=False), portal=portal)
    ranked = sorted(
        (r for r in full["rows"] if r.get("user_id") is not None),
        key=lambda r: -(r["figures"].get(RANK_FIGURE) or 0),
    )
    for i, row in enumerate(ranked, 1):
        if row["user_id"] == viewer:
            return i, len(ranked)
    return None


def build_digest(
    store: Store,
    sub: Subscription,
    send_day: date,
    *,
    links: Links | None = None,
    rank: bool = False,
) -> Digest:
    """The digest ``sub``'s reader gets on ``send_day``."""
    portal, lang = sub.portal, sub.language
    flt = report_filter(sub, send_day)
    report = build_report(store, flt, portal=portal)
    columns = {c["key"]: c for c in report["columns"]}
    total = report["total"]["figures"]
    prev = (report.get("previous") or {}).get("total", {}).get("figures", {})
    figures = [
        Figure(k, _label(columns[k], k, lang), columns[k]["kind"], total.get(k), prev.get(k))
        for k in KEY_FIGURES
        if k in columns
    ]
    role = _role(store, portal, sub.user_id)
    row_columns = [(k, _label(columns[k], k, lang), columns[k]["kind"]) for k in ROW_FIGURES
                   if k in columns]  # fmt: skip
    rows = []
    if role != "manager":
        rows = [
            Row(
                name=str(r.get(f"name_{lang}") or r.get("name") or "—"),
                department=r.get("department"),
                figures={k: r["figures"].get(k) for k, _, _ in row_columns},
                user_id=r.get("user_id"),
            )
            for r in report["rows"]
        ]
    attention = []
    for key in ATTENTION:
        if key == "deals_stuck":
            stuck = _stuck(report)
            if stuck is not None:
                attention.append(Attention(key, _label(None, key, lang), stuck))
        elif key in _DRILLED:
            if _DRILLED[key] in flt.sections:
                counted = drill(store, flt, key, portal=portal, limit=0)
                label = str(counted[f"label_{lang}"])
                attention.append(Attention(key, label, int(counted["value"] or 0)))
        elif key in columns:
            attention.append(
                Attention(key, _label(columns[key], key, lang), int(total.get(key) or 0))
            )
    overdue: list[dict[str, Any]] = []
    if "deals_overdue" in columns and total.get("deals_overdue"):
        listed = drill(store, flt, "deals_overdue", portal=portal, limit=OVERDUE_LISTED)
        overdue = [
            {"id": r.get("id"), "title": r.get("title"), "url": r.get("url")}
            for r in listed.get("records", [])
        ]
    previous = None
    if report.get("previous"):
        p = report["previous"]["period"]
        previous = (date.fromisoformat(p["from"]), date.fromisoformat(p["to"]))
    place = _rank(store, portal, flt, sub.user_id) if rank and role == "manager" else None
    return Digest(
        subscription=sub,
        reader_name=_reader_name(store, portal, sub.user_id),
        role=role,
        date_from=flt.date_from,
        date_to=flt.date_to,
        previous=previous,
        currency=report.get("currency"),
        figures=figures,
        rows=rows,
        row_columns=row_columns,
        attention=attention,
        overdue=overdue,
        rank=place,
        link=(links or Links()).to(report_pairs(sub, flt)),
        report=report,
    )
