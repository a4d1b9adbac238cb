"""Stored stage entries: what the weighted-pipeline forecast learns its stage
probabilities from (rop.report.forecast), kept by the sync.

The forecast's probabilities for a window [since, until) of stage history are,
per (pipeline, stage), of the deals with a working-stage row (semantic not won
or lost) in the window, how many have their latest row in the window (latest
moment, then highest ID) won, and how many won or lost. Computed from the
history that needs each deal's latest row of a year of rows (a window sort or
grouped maxima): 8-10 s at 1M deals on PostgreSQL, about a second on DuckDB.

This table holds, per deal, pipeline (missing: 0) and working stage, the latest
moment the deal entered it (``entered``), with the deal's latest history row
overall copied beside it (``last_at``, ``last_semantic``; missing semantic:
'P'). For a deal whose rows are all before ``until`` (``last_at < until``), its
latest row in the window is its latest row overall, and it entered a stage in
the window exactly when ``entered >= since``: the probabilities are then one
filtered scan and one grouping, no sort and no join (:func:`probabilities_sql`).
A deal with a row at or after ``until`` (a history from the future: a test's
fixed today, a clock ahead) is counted from its history as before, so the
figures are the same in every case.

Rows without a deal or a moment count nowhere (they are never in a window) and
are left out. Depends on the deal's history rows alone (every change of one
marks the deal, rop.store.facts.MARKS), so rop.store.facts.refresh_facts rewrites
the marked deals' rows; built and versioned with the rollups
(rop.store.rollups.ROLLUP_VERSION): a reader uses them while those are ready.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rop.store.stage_facts import id_slices

if TYPE_CHECKING:
    from rop.store.db import Store

TABLE = "deal_stage_entries"
COLUMNS = ("id", "category_id", "stage_id", "entered", "last_at", "last_semantic")

# A deal's history rows that can be in a window, its pipeline and semantic read
# as the forecast reads them.
_ROWS = """SELECT id, owner_id, created_time, coalesce(category_id, 0) AS category_id, stage_id,
        coalesce(stage_semantic, 'P') AS semantic
    FROM deal_stage_history
    WHERE portal = $portal AND owner_id IS NOT NULL AND created_time IS NOT NULL{only}"""


def _only(column: str, ids: str | None) -> str:
    return f" AND {column} IN (SELECT id FROM {ids})" if ids else ""


def entries_sql(ids: str | None = None, sliced: bool = False) -> str:
    """The rows of the deals in ``ids`` (a relation of deal IDs; every deal when None);
    ``sliced``: of the deals with IDs in ($after, $top] only."""
    only = _only("owner_id", ids) + (
        " AND owner_id > $after AND owner_id <= $top" if sliced else ""
    )
    return f"""WITH h AS ({_ROWS.format(only=only)}),
last AS (
    SELECT owner_id, created_time AS last_at, semantic AS last_semantic FROM (
        SELECT owner_id, created_time, semantic, row_number() OVER (
            PARTITION BY owner_id ORDER BY created_time DESC, id DESC) AS rn
        FROM h) r
    WHERE rn = 1
),
e AS (
    SELECT owner_id, category_id, stage_id, max(created_time) AS entered
    FROM h WHERE semantic NOT IN ('S', 'F')
    GROUP BY owner_id, category_id, stage_id
)
SELECT e.owner_id AS id, e.category_id, e.stage_id, e.entered, l.last_at, l.last_semantic
FROM e JOIN last l ON l.owner_id = e.owner_id"""


def write(store: Store, params: dict[str, Any], ids: str | None) -> None:
    """Replace the rows of the deals in ``ids`` (every deal when None); inside the
    caller's transaction."""
    bound = {"portal": params["portal"]}
    store.execute(f"DELETE FROM {TABLE} WHERE portal = $portal{_only('id', ids)}", bound)
    cols = ", ".join(COLUMNS)
    # In order of entry on a rebuild: a window's rows are then the last row
    # groups on DuckDB (its zone maps skip the older ones).
    order = " ORDER BY entered" if ids is None else ""
    store.execute(
        f"INSERT INTO {TABLE} (portal, {cols}) SELECT $portal, {cols} "
        f"FROM ({entries_sql(ids)}) e{order}",
        bound,
    )


def rebuild(store: Store, params: dict[str, Any], size: int) -> None:
    """Every deal's rows, a transaction per slice of ``size`` deal IDs (DuckDB: the
    refresh calls it before its last transaction, while readers do not use the
    entries, as the rollups are being rebuilt).

    In the refresh's one transaction, a 1M-deal portal's 3.1M rows and the window
    over its 4.1M history rows did not fit `rop migrate`'s 160 MB
    (ROP_SYNC_MEMORY_LIMIT). The slices are ranges of the deal IDs (the deals'
    table's, open at both ends: history may name a deal no longer copied), written
    in deal order, not sorted by ``entered`` (the forecast's scan of them costs
    0.05 s at 1M deals either way).
    """
    bound = {"portal": params["portal"]}
    with store.transaction():
        store.execute(f"DELETE FROM {TABLE} WHERE portal = $portal", bound)
    cuts = id_slices(store, "deals", params["portal"], size) or [(0, 0)]
    cuts[0] = (-(2**62), cuts[0][1])
    cuts[-1] = (cuts[-1][0], 2**62)
    cols = ", ".join(COLUMNS)
    for after, top in cuts:
        with store.transaction():
            store.execute(
                f"INSERT INTO {TABLE} (portal, {cols}) SELECT $portal, {cols} "
                f"FROM ({entries_sql(sliced=True)}) e",
                {**bound, "after": after, "top": top},
            )


# The deals with a history row at or after the window's end: counted from their
# history (their latest row in the window is not their latest row).
_LATER = f"SELECT DISTINCT id FROM {TABLE} WHERE portal = $portal AND last_at >= $until"


def any_later(store: Store, params: dict[str, Any]) -> bool:
    """Whether a deal has a history row at or after ``params['until']`` (an index
    lookup on PostgreSQL): without one, :func:`probabilities_sql` needs no history.

    Remembered until the next write where the store allows it (rop.store.memo),
    as the facts' readiness is: a warm report sends no statement for it (on
    PostgreSQL a round trip of its own, outside the figures' pipeline)."""
    bound = {"portal": params["portal"], "until": params["until"]}
    sql = f"SELECT EXISTS ({_LATER})"
    key = ("stage_entries.any_later", bound["portal"], bound["until"])
    return store.remember(key, lambda: bool(store.scalar(sql, bound)))


# The history rows of the window, each deal's stage and outcome read from them.
WINDOW = """
    SELECT id, owner_id, created_time, coalesce(category_id, 0) AS category_id, stage_id,
        coalesce(stage_semantic, 'P') AS semantic
    FROM deal_stage_history
    WHERE portal = $portal AND created_time >= $since AND created_time < $until"""


def history_sql(only: str = "") -> str:
    """The forecast's definition read from the history: per deal and stage it
    entered in the window [$since, $until), ``won`` and ``closed`` (0 or 1) of the
    deal's latest row in the window (latest moment, then highest ID), ranked by a
    window. ``only``: a condition on the window's rows (`` AND ...``).

    Grouped per stage it is PostgreSQL's statement when the entries are not
    current (rop.report.forecast); here it counts the deals with history after
    the window. One text for both, so the two paths cannot drift apart.
    """
    return f"""WITH h AS ({WINDOW}{only}),
ranked AS (
    SELECT owner_id, semantic,
        row_number() OVER (PARTITION BY owner_id ORDER BY created_time DESC, id DESC) AS rn
    FROM h
),
outcome AS (SELECT owner_id, semantic AS outcome FROM ranked WHERE rn = 1),
entered AS (
    SELECT DISTINCT owner_id, category_id, stage_id FROM h WHERE semantic NOT IN ('S', 'F')
)
SELECT e.category_id, e.stage_id,
    CASE WHEN o.outcome = 'S' THEN 1 ELSE 0 END AS won,
    CASE WHEN o.outcome IN ('S', 'F') THEN 1 ELSE 0 END AS closed
FROM entered e JOIN outcome o ON o.owner_id = e.owner_id"""


def probabilities_sql(later: bool = True) -> str:
    """Per (pipeline, stage): ``won`` and ``closed`` of the window [$since, $until),
    the columns rop.report.forecast reads; one row per stage any deal entered in it.

    ``later``: count the deals with history after the window from their history
    (:func:`any_later` says whether there are any); without, the history is not
    read at all (on PostgreSQL its semi-join still scanned a year of it, 0.13 s
    at 1M deals, for no deal).
    """
    later_sql = history_sql(f" AND owner_id IN ({_LATER})")
    return f"""SELECT category_id, stage_id, sum(won) AS won, sum(closed) AS closed FROM (
    SELECT category_id, stage_id,
        CASE WHEN last_semantic = 'S' THEN 1 ELSE 0 END AS won,
        CASE WHEN last_semantic IN ('S', 'F') THEN 1 ELSE 0 END AS closed
    FROM {TABLE}
    WHERE portal = $portal AND entered >= $since AND last_at < $until
{f"    UNION ALL SELECT * FROM ({later_sql}) l" if later else ""}
) c
GROUP BY category_id, stage_id"""
