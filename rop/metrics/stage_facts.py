"""Stage facts: the static steps stage analytics reads, derived once per data version.

Three facts per entity (deal stages, lead statuses), each a ``*_base`` step
cached like the report's others (rop.metrics.cache: computed once per store
state, then a plain table), and each *sorted* by the column a period reads a
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

from dataclasses import dataclass

from rop.metrics.sources import Cte


@dataclass(frozen=True)
class Kind:
    """What differs between deal stages and lead statuses."""

    entity: str  # deal|lead
    section: str  # deals|leads
    history: str
    stage_col: str  # the history's stage column
    semantic_col: str
    table: str
    record_stage: str  # the record's current stage column
    record_semantic: str
    dir_where: str  # statuses rows of this kind
    pipe_history: str  # the history's pipeline expression
    pipe_record: str
    move_types: str  # history TYPE_IDs that put a record into a stage
    dir_pipe: str  # a statuses row's pipeline


DEAL = Kind(
    "deal", "deals", "deal_stage_history", "stage_id", "stage_semantic", "deals",
    "stage_id", "stage_semantic", "entity_id LIKE 'DEAL_STAGE%'",
    "h.category_id", "d.category_id", "1, 2, 3, 5",
    # DEAL_STAGE is pipeline 0, DEAL_STAGE_<n> pipeline n (when CATEGORY_ID is missing).
    "coalesce(category_id, CASE WHEN entity_id = 'DEAL_STAGE' THEN 0 "
    "ELSE CAST(substr(entity_id, 12) AS BIGINT) END)",
)  # fmt: skip
LEAD = Kind(
    "lead", "leads", "lead_status_history", "status_id", "status_semantic", "leads",
    "status_id", "status_semantic", "entity_id = 'STATUS'",
    "CAST(0 AS BIGINT)", "CAST(0 AS BIGINT)", "1, 2, 3", "CAST(0 AS BIGINT)",
)  # fmt: skip
KINDS = {"deal": DEAL, "lead": LEAD}


def stage_order(k: Kind, name: str = "stage_order") -> Cte:
    """The kind's stages: sort, semantics, name and pipeline per stage ID.

    Twice: ``<entity>_stage_order`` is a helper inlined into the facts;
    ``<entity>_order_base`` the same rows as a cached step of its own, which
    figures and lists may read (a helper is not there for them).
    """
    return Cte(
        f"{k.entity}_{name}",
        "SELECT status_id, max(sort) AS sort, max(semantics) AS semantics, max(name) AS name, "
        f"max({k.dir_pipe}) AS pipe "
        f"FROM statuses WHERE portal = $portal AND {k.dir_where} GROUP BY status_id",
        static=True,
    )


def _visits_sql(k: Kind) -> str:
    """Every visit of a record to a stage, from its history; MOVED_TIME when it has none.

    A record with no history row at all has one visit: its current stage,
    since MOVED_TIME (else its creation). Records with no responsible are
    left out, as everywhere in the report. ``k`` is the moment the visit last
    matters to a period: when it ended, or (still open) when it began.
    """
    sem = f"coalesce(h.{k.semantic_col}, o.semantics, 'P')"
    rsem = f"coalesce(d.{k.record_semantic}, o.semantics, 'P')"
    return f"""SELECT v.*, o2.sort AS sort, coalesce(v.left_at, v.entered) AS k FROM (
SELECT h.owner_id AS id, d.assigned_by_id AS manager_id, d.date_create AS created,
    {k.pipe_history} AS pipe, h.{k.stage_col} AS stage, {sem} AS semantic,
    h.created_time AS entered,
    lead(h.created_time) OVER (PARTITION BY h.owner_id ORDER BY h.created_time, h.id) AS left_at
FROM {k.history} h
JOIN (SELECT id, assigned_by_id, date_create FROM {k.table}
      WHERE portal = $portal AND assigned_by_id IS NOT NULL) d ON d.id = h.owner_id
LEFT JOIN {k.entity}_stage_order o ON o.status_id = h.{k.stage_col}
WHERE h.portal = $portal AND h.type_id IN ({k.move_types})
UNION ALL
SELECT d.id, d.assigned_by_id, d.date_create, {k.pipe_record}, d.{k.record_stage}, {rsem},
    coalesce(d.moved_time, d.date_create), CAST(NULL AS TIMESTAMP)
FROM {k.table} d
LEFT JOIN {k.entity}_stage_order o ON o.status_id = d.{k.record_stage}
WHERE d.portal = $portal AND d.assigned_by_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM {k.history} x WHERE x.portal = $portal
        AND x.owner_id = d.id AND x.type_id IN ({k.move_types}))
) v LEFT JOIN {k.entity}_stage_order o2 ON o2.status_id = v.stage"""


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
        "SELECT id, manager_id, pipe, stage, semantic, entered "
        f"FROM {k.entity}_visits WHERE left_at IS NULL AND semantic = 'P' ORDER BY entered, id",
        static=True,
    )


def reach_base(k: Kind) -> Cte:
    """Per record and pipeline, the furthest stage it ever reached, sorted by creation.

    "Furthest" is by the stages' sort; lost stages do not count (a lost deal
    reached the furthest stage it was in before), a won stage does. A record
    known only in a lost stage reached the first stage: it was created there
    (and has no visit there, so no ``reach_stage``). ``reach_stage`` is the
    stage of that sort the record visited, which the drill-down shows.

    ``reach_stage`` comes from a join on the visits grouped by (record,
    pipeline, sort), not a subquery per record: PostgreSQL runs a correlated
    subquery on a CTE as a scan of every visit per record (134 s at 10k deals),
    where DuckDB decorrelates it; the join is the same rows on both.
    """
    v = f"{k.entity}_visits"
    return Cte(
        f"{k.entity}_reach_base",
        f"""SELECT r.id, r.manager_id, r.pipe, r.created, r.reach, s.reach_stage
FROM (SELECT r.id, r.manager_id, r.pipe, r.created, coalesce(r.reach, fs.first_sort) AS reach
    FROM (SELECT id, max(manager_id) AS manager_id, pipe, max(created) AS created,
            max(CASE WHEN semantic IN ('P', 'S') THEN sort END) AS reach
        FROM {v} GROUP BY id, pipe) r
    LEFT JOIN (SELECT pipe, min(sort) AS first_sort FROM {k.entity}_stage_order
        WHERE semantics IS NULL OR semantics = 'P' GROUP BY pipe) fs ON fs.pipe = r.pipe
    WHERE coalesce(r.reach, fs.first_sort) IS NOT NULL) r
LEFT JOIN (SELECT id, pipe, sort, max(stage) AS reach_stage FROM {v}
    GROUP BY id, pipe, sort) s ON s.id = r.id AND s.pipe = r.pipe AND s.sort = r.reach
ORDER BY r.created, r.id""",
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
