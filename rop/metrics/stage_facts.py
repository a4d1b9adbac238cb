"""Stage facts: the static steps stage analytics reads, derived once per data version.

Three facts per entity (deal stages, lead statuses), each a ``*_base`` step.
The store keeps them in tables of its own, refreshed by every writer
(rop.store.stage_facts, which holds their SQL), and a report reads those
while they are current (``Context.stored``); otherwise the steps here compute
the same SQL in memory, cached like the report's others (rop.metrics.cache:
computed once per store state, then a plain table). Each is *sorted* by the column a period reads a
range of, so a period query skips the rest by the engine's zone maps
(DuckDB keeps min/max per row group) instead of scanning every visit:

- ``<entity>_visit_base``: every visit of a record to a stage (entered at
  ``entered``, left at ``left_at``, the next history row; NULL while it is
  still there), sorted by ``k = coalesce(left_at, entered)``. Every visit a
  period can change has ``k >= $p_from``: one that ended in or after the period,
  or an open one that started in it (see rop.metrics.stages' relations).
- ``<entity>_open_base``: the visit each in-progress record is in now, sorted
  by ``entered`` (the matrix's diagonal reads those entered before the period).
- ``<entity>_reach_base``: per record and pipeline the furthest stage it
  reached (and that stage's ID, for the list), sorted by creation (the funnel
  reads those created in the period).

Deals and leads are built by the same code; a lead has no pipeline, so its
pipeline is 0 everywhere.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from rop.metrics.sources import Cte
from rop.store.stage_facts import (
    DEAL,
    KINDS,
    LEAD,
    Kind,
    open_sql,
    order_sql,
    reach_sql,
    visits_sql,
)

__all__ = [
    "DEAL", "KINDS", "LEAD", "Kind", "fact_ctes", "open_base", "reach_base", "stage_order",
    "visit_base", "visits_helper",
]  # fmt: skip


def stage_order(k: Kind, name: str = "stage_order") -> Cte:
    """The kind's stages: sort, semantics, name and pipeline per stage ID.

    Twice: ``<entity>_stage_order`` is a helper inlined into the facts;
    ``<entity>_order_base`` the same rows as a cached step of its own, which
    figures and lists may read (a helper is not there for them).
    """
    return Cte(f"{k.entity}_{name}", order_sql(k), static=True)


def _visits_sql(k: Kind) -> str:
    return visits_sql(k, f"{k.entity}_stage_order")


def visit_base(k: Kind) -> Cte:
    """The visits, sorted by ``k``: a period reads the range ``k >= $p_from``."""
    return Cte(f"{k.entity}_visit_base", _visits_sql(k) + "\nORDER BY k, id", static=True)


def visits_helper(k: Kind) -> Cte:
    # The same rows as a helper, unsorted: a cached step cannot read another,
    # so the open visits and the furthest stages read the visits through it.
    return Cte(f"{k.entity}_visits", _visits_sql(k), static=True)


def open_base(k: Kind) -> Cte:
    """The visit each in-progress record is in now, sorted by when it began.

    A fifth of the visits at most; the diagonal of the matrix and the open
    times read it instead of every visit.
    """
    return Cte(
        f"{k.entity}_open_base",
        open_sql(f"{k.entity}_visits") + " ORDER BY entered, id",
        static=True,
    )


def reach_base(k: Kind) -> Cte:
    """Per record and pipeline, the furthest stage it ever reached, sorted by creation
    (rop.store.stage_facts.reach_sql)."""
    return Cte(
        f"{k.entity}_reach_base",
        reach_sql(f"{k.entity}_visits", f"{k.entity}_stage_order") + "\nORDER BY r.created, r.id",
        static=True,
    )


def fact_ctes(k: Kind) -> list[Cte]:
    """The helpers and facts every stage relation is built on, in their order."""
    return [
        stage_order(k),
        stage_order(k, "order_base"),
        visits_helper(k),
        visit_base(k),
        open_base(k),
        reach_base(k),
    ]
