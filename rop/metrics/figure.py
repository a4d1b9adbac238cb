"""What a figure is: a record set over one source relation and a measure on it."""

from __future__ import annotations

from dataclasses import dataclass, field

MEASURES = ("count", "sum", "mean", "share")
KINDS = ("count", "amount", "share", "days", "seconds")


@dataclass(frozen=True)
class Column:
    """One drill-down column: an SQL expression over the source relation."""

    key: str
    expr: str
    label_ru: str
    label_en: str
    kind: str = "text"  # text|count|amount|days|seconds|date|datetime|bool|share

    def as_json(self) -> dict:
        return {
            "key": self.key,
            "label_ru": self.label_ru,
            "label_en": self.label_en,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class Figure:
    """One figure of METRICS.md, as data.

    ``condition`` selects the records (SQL over the source relation, with the
    period bound as ``$p_from``/``$p_to``). ``measure`` says what to do with
    them: ``count`` them, ``sum`` or ``mean`` their ``value``, or take the
    ``share`` of those that also meet ``numerator``. The figure and its
    drill-down are both compiled from these fields.
    """

    key: str
    section: str  # deals|leads|companies|contacts|calls
    source: str  # the relation (rop.metrics.sources)
    measure: str  # count|sum|mean|share
    kind: str  # count|amount|share|days|seconds
    condition: str
    label_ru: str
    label_en: str
    description_ru: str
    description_en: str
    value: str | None = None  # SQL of the summed/averaged value
    value_label: tuple[str, str] = ("Значение", "Value")
    numerator: str | None = None  # share: which of the records count on top
    params: tuple[tuple[str, object], ...] = field(default=())  # extra bound values
    now: bool = False  # about the present, whatever the period (in progress, portfolio)
    # A simpler test every record meeting ``condition`` meets too, in columns an
    # index can find (PostgreSQL): a query of only such figures adds it, so the
    # engine reads the few candidates instead of every record.
    bound: str | None = None

    def as_column(self) -> dict:
        return {
            "key": self.key,
            "section": self.section,
            "label_ru": self.label_ru,
            "label_en": self.label_en,
            "description_ru": self.description_ru,
            "description_en": self.description_en,
            "kind": self.kind,
        }
