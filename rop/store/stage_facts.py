"""Stage facts kept in the store: visits, open visits, furthest stages, open aggregates.

Stage analytics (rop.metrics.stages) reads, per entity (deal stages, lead
statuses), facts that depend on the store's data only:

- ``<entity>_stage_visits``: every visit of a record to a stage (entered at
  ``entered``, left at ``left_at``, the next history row; NULL while it is
  still there), with ``k = coalesce(left_at, entered)``, the moment the visit
  last matters to a period;
- ``<entity>_stage_open``: the visit each in-progress record is in now;
- ``<entity>_stage_reach``: per record and pipeline the furthest stage it
  reached (and that stage's ID, for the list);
- ``<entity>_stage_open_agg``: the open visits counted per pipeline, stage and
  manager (and per pipeline and stage for all managers, ``manager_id`` NULL),
  with the sum and the median of the moments they began: the stage section's
  open times are ``now`` minus these, its matrix diagonal the count minus the
  few open visits that began in or after the period (rop.report.stages).

Computing them means cutting the whole stage history into visits (about 7 s
at 1M deals), so they are stored like the deal facts (rop.store.facts) and
refreshed with them, in the same transaction, for the marked records only: a
record's visits depend on its own row, its own history and the stage
directory (a change of the directory's semantics, sort or pipelines rebuilds
everything, see ``inputs_digest``). A whole rebuild writes each table sorted
by the column a period reads a range of (visits by ``k``, open visits by
``entered``, furthest stages by creation), so DuckDB's zone maps skip the rest;
a refresh appends the few changed records' rows after them.

The SQL lives in the store layer because every writer refreshes the facts;
rop.metrics.stage_facts builds the same SQL in memory for a store whose facts
lag its data.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from rop.store.dialect import epoch_seconds

if TYPE_CHECKING:
    from rop.store.db import Store


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

VISIT_COLUMNS = (
    "id", "manager_id", "created", "pipe", "stage", "semantic", "entered", "left_at", "sort", "k",
    "again", "n",
)  # fmt: skip
# ``n``: the visit's place among the record's (a history without moments can
# leave a record several visits with no end).
OPEN_COLUMNS = ("id", "manager_id", "pipe", "stage", "semantic", "entered", "n")
REACH_COLUMNS = ("id", "manager_id", "pipe", "created", "reach", "reach_stage", "n")
AGG_COLUMNS = ("grp", "pipe", "stage", "manager_id", "n", "entered_sum", "entered_median")


def order_sql(k: Kind) -> str:
    """The kind's stages: sort, semantics, name and pipeline per stage ID."""
    return (
        "SELECT status_id, max(sort) AS sort, max(semantics) AS semantics, max(name) AS name, "
        f"max({k.dir_pipe}) AS pipe "
        f"FROM statuses WHERE portal = $portal AND {k.dir_where} GROUP BY status_id"
    )


def _only(column: str, ids: str | None) -> str:
    return f" AND {column} IN (SELECT id FROM {ids})" if ids else ""


def visits_sql(k: Kind, order: str, ids: str | None = None) -> str:
    """Every visit of a record to a stage, from its history; MOVED_TIME when it has none.

    A record with no history row at all has one visit: its current stage,
    since MOVED_TIME (else its creation). Records with no responsible are
    left out, as everywhere in the report. ``k`` is the moment the visit last
    matters to a period: when it ended, or (still open) when it began.
    ``again``: the record has other visits to the same stage of the pipeline
    (a time in stage sums a record's visits; the others need no grouping).
    ``order`` names the relation of :func:`order_sql`; ``ids`` (a relation
    of record IDs) limits it to those records, inside the window and the
    joins, so a refresh reads only their history.
    """
    sem = f"coalesce(h.{k.semantic_col}, o.semantics, 'P')"
    rsem = f"coalesce(d.{k.record_semantic}, o.semantics, 'P')"
    return f"""SELECT v.*, o2.sort AS sort, coalesce(v.left_at, v.entered) AS k,
    count(*) OVER (PARTITION BY v.id, v.pipe, v.stage) > 1 AS again,
    row_number() OVER (PARTITION BY v.id ORDER BY v.entered, v.hid) AS n FROM (
SELECT h.owner_id AS id, d.assigned_by_id AS manager_id, d.date_create AS created,
    {k.pipe_history} AS pipe, h.{k.stage_col} AS stage, {sem} AS semantic,
    h.created_time AS entered, h.id AS hid,
    lead(h.created_time) OVER (PARTITION BY h.owner_id ORDER BY h.created_time, h.id) AS left_at
FROM {k.history} h
JOIN (SELECT id, assigned_by_id, date_create FROM {k.table}
      WHERE portal = $portal AND assigned_by_id IS NOT NULL{_only("id", ids)}) d
    ON d.id = h.owner_id
LEFT JOIN {order} o ON o.status_id = h.{k.stage_col}
WHERE h.portal = $portal AND h.type_id IN ({k.move_types}){_only("h.owner_id", ids)}
UNION ALL
SELECT d.id, d.assigned_by_id, d.date_create, {k.pipe_record}, d.{k.record_stage}, {rsem},
    coalesce(d.moved_time, d.date_create), CAST(NULL AS BIGINT), CAST(NULL AS TIMESTAMP)
FROM {k.table} d
LEFT JOIN {order} o ON o.status_id = d.{k.record_stage}
WHERE d.portal = $portal AND d.assigned_by_id IS NOT NULL{_only("d.id", ids)}
    AND NOT EXISTS (SELECT 1 FROM {k.history} x WHERE x.portal = $portal
        AND x.owner_id = d.id AND x.type_id IN ({k.move_types}){_only("x.owner_id", ids)})
) v LEFT JOIN {order} o2 ON o2.status_id = v.stage"""


def open_sql(visits: str, ids: str | None = None) -> str:
    """The visit each in-progress record is in now (``visits``: a relation of the visits)."""
    return (
        f"SELECT {', '.join(OPEN_COLUMNS)} FROM {visits} v "
        f"WHERE left_at IS NULL AND semantic = 'P'{_only('id', ids)}"
    )


def reach_sql(visits: str, order: str, ids: str | None = None) -> str:
    """Per record and pipeline, the furthest stage it ever reached.

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
    return f"""SELECT r.id, r.manager_id, r.pipe, r.created, r.reach, s.reach_stage,
    row_number() OVER (PARTITION BY r.id ORDER BY r.pipe) AS n
FROM (SELECT r.id, r.manager_id, r.pipe, r.created, coalesce(r.reach, fs.first_sort) AS reach
    FROM (SELECT id, max(manager_id) AS manager_id, pipe, max(created) AS created,
            max(CASE WHEN semantic IN ('P', 'S') THEN sort END) AS reach
        FROM {visits} v WHERE TRUE{_only("id", ids)} GROUP BY id, pipe) r
    LEFT JOIN (SELECT pipe, min(sort) AS first_sort FROM {order} so
        WHERE semantics IS NULL OR semantics = 'P' GROUP BY pipe) fs ON fs.pipe = r.pipe
    WHERE coalesce(r.reach, fs.first_sort) IS NOT NULL) r
LEFT JOIN (SELECT id, pipe, sort, max(stage) AS reach_stage FROM {visits} x
    WHERE TRUE{_only("id", ids)} GROUP BY id, pipe, sort) s
    ON s.id = r.id AND s.pipe = r.pipe AND s.sort = r.reach"""


def agg_sql(opened: str, median: Callable[[str], str], where: str = "TRUE") -> str:
    """The open visits counted per pipeline, stage and manager, and per pipeline and
    stage (``manager_id`` NULL), with the sum and median of when they began (seconds).

    Sums of whole seconds are exact in a double up to 2^53 (a 1M-deal portal's
    stage sums are near 2^49), so ``now`` minus the mean equals the mean of
    ``now`` minus each to the last digit the report keeps.
    """
    epoch = epoch_seconds("entered")
    return (
        # The row's key: pipeline, manager and stage, any of them NULL (a stage
        # ID is data, so it goes last, after a marker of NULL or not).
        "SELECT coalesce(CAST(pipe AS VARCHAR), '-') || '|' || "
        "coalesce(CAST(manager_id AS VARCHAR), '-') || '|' || "
        "CASE WHEN stage IS NULL THEN '-' ELSE '=' || stage END AS grp, "
        f"pipe, stage, manager_id, count({epoch}) AS n, sum({epoch}) AS entered_sum, "
        f"{median(epoch)} AS entered_median FROM {opened} o WHERE {where} "
        "GROUP BY GROUPING SETS ((pipe, stage, manager_id), (pipe, stage))"
    )


@dataclass(frozen=True)
class Tables:
    """The stored tables of one kind."""

    visits: str
    opened: str
    reach: str
    agg: str


def tables(k: Kind) -> Tables:
    e = k.entity
    return Tables(f"{e}_stage_visits", f"{e}_stage_open", f"{e}_stage_reach", f"{e}_stage_open_agg")


def stored_steps() -> dict[str, str]:
    """The metrics' static step name -> the SELECT reading its stored table (one portal)."""
    out = {}
    for k in KINDS.values():
        t = tables(k)
        for step, table, cols in (
            ("visit_base", t.visits, VISIT_COLUMNS),
            ("open_base", t.opened, OPEN_COLUMNS),
            ("reach_base", t.reach, REACH_COLUMNS),
            ("open_agg", t.agg, AGG_COLUMNS),
        ):
            out[f"{k.entity}_{step}"] = (
                f"SELECT {', '.join(cols)} FROM {table} WHERE portal = $portal"
            )
    return out


def _bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    return {n: v for n, v in params.items() if f"${n}" in sql}


def _run(store: Store, sql: str, params: dict[str, Any]) -> None:
    store.execute(sql, _bind(sql, params))


def id_slices(store: Store, table: str, portal: str, size: int) -> list[tuple[int, int]]:
    """(after, up to) ID bounds of consecutive slices of at most ``size`` of ``table``'s records."""
    out: list[tuple[int, int]] = []
    low = int(store.scalar(f"SELECT min(id) FROM {table} WHERE portal = ?", [portal]) or 0)
    after = low - 1
    while True:
        top = store.scalar(
            f"SELECT max(id) FROM (SELECT id FROM {table} WHERE portal = ? AND id > ? "
            f"ORDER BY id LIMIT {int(size)}) s",
            [portal, after],
        )
        if top is None:
            return out
        out.append((after, int(top)))
        after = int(top)


def _build_table(k: Kind) -> str:
    """The work table a sliced rebuild collects the kind's visits in (dropped at its end)."""
    return f"_rop_rebuild_{k.entity}_stage_visits"


def _bands(store: Store, basis: str, key: str, size: int) -> list[tuple[str, dict[str, Any]]]:
    """Conditions on ``key`` cutting ``basis``'s rows into bands of about ``size`` rows,
    in ``ORDER BY key`` order (NULLs last, DuckDB's default): each with its bound values.

    A band is a range of values, so rows with the same key fall in one band and
    the bands, each written sorted, make one sorted table.
    """
    total = int(store.scalar(f"SELECT count(*) FROM {basis} b") or 0)
    parts = max(1, -(-total // max(1, size)))
    bounds: list[Any] = []
    if parts > 1:
        found = store.scalar(
            # Approximate (a t-digest, constant memory): an exact quantile holds
            # every value, more than a 192 MB limit at 4M visits; a band is a
            # range either way, only its size is approximate.
            f"SELECT approx_quantile({key}, [{', '.join(str(i / parts) for i in range(1, parts))}]) "
            f"FROM {basis} b"
        )
        bounds = sorted({b for b in (found or []) if b is not None})
    out: list[tuple[str, dict[str, Any]]] = []
    low = None
    for high in [*bounds, None]:
        cond = [f"{key} IS NOT NULL"]
        values: dict[str, Any] = {}
        if low is not None:
            cond.append(f"{key} > $band_low")
            values["band_low"] = low
        if high is not None:
            cond.append(f"{key} <= $band_high")
            values["band_high"] = high
        out.append((" AND ".join(cond), values))
        low = high
    out.append((f"{key} IS NULL", {}))
    return out


def checkpoint(store: Store) -> None:
    """Write the committed bands out, so the key's index leaves memory.

    DuckDB keeps an index's new entries in memory until a checkpoint: 4.2M
    visits' primary key grew to 150 MB over one table's bands, more than a
    160 MB limit holds. Best effort: another open transaction (a server's
    reader) makes DuckDB refuse, and the index then stays until it can.
    """
    from rop.store.db import StoreError  # db imports this module's callers

    with contextlib.suppress(StoreError, duckdb.Error):
        store.execute("CHECKPOINT")


def rebuild_stage_facts(
    store: Store, k: Kind, params: dict[str, Any], records: int, size: int
) -> None:
    """Rebuild the portal's stage facts of one kind whole, a transaction per slice (DuckDB).

    The caller has deleted the kind's rows and the facts state (readers compute
    in memory meanwhile: rop.store.facts._rebuild). One transaction for a 1M-deal
    portal held every new visit and its index entries until the commit (the
    peak of a first copy's memory, and no commit at all under a 256 MB limit), so:

    1. the visits are computed per slice of ``records`` record IDs (a record's
       visits depend on its own rows only, so a slice's are exactly its
       records') into a work table of the store file, unsorted;
    2. each stored table is then written from it in bands of its sort key
       (visits by ``k``, open visits by ``entered``, furthest stages by
       ``created``), bands of about ``size`` rows, each sorted and its own
       transaction, in key order:
       the table ends sorted as a one-statement ``ORDER BY`` writes it, which
       the stage section's range reads rely on (zone maps);
    3. the open aggregates, one small grouped table, in one statement.

    A run cut short leaves no facts state (the next sync or `rop migrate` rebuilds) and
    a work table the next rebuild replaces.
    """
    t = tables(k)
    order = f"({order_sql(k)})"
    work = _build_table(k)
    portal = params["portal"]
    cols = ", ".join(VISIT_COLUMNS)
    store.execute(f"CREATE OR REPLACE TABLE {work} AS SELECT {cols} FROM {t.visits} LIMIT 0")
    try:
        for after, top in id_slices(store, k.table, portal, records):
            ids = f"(SELECT id FROM {k.table} WHERE portal = $portal AND id > $after AND id <= $top) s"
            with store.transaction():
                _run(
                    store,
                    f"INSERT INTO {work} ({cols}) SELECT {cols} FROM ({visits_sql(k, order, ids)}) v",
                    {**params, "after": after, "top": top},
                )
        is_open = "left_at IS NULL AND semantic = 'P'"
        for table, columns, basis, key, rows in (
            (t.visits, VISIT_COLUMNS, work, "k", lambda band: f"(SELECT * FROM {work} WHERE {band})"),
            (t.opened, OPEN_COLUMNS, f"(SELECT * FROM {work} WHERE {is_open})", "entered",
             lambda band: f"({open_sql(f'(SELECT * FROM {work} WHERE {band})')})"),
            # A record's visits share its creation: a band of them holds whole records.
            (t.reach, REACH_COLUMNS, work, "created",
             lambda band: f"({reach_sql(f'(SELECT * FROM {work} WHERE {band})', order)})"),
        ):  # fmt: skip
            names = ", ".join(columns)
            for band, values in _bands(store, basis, key, size):
                with store.transaction():
                    _run(
                        store,
                        f"INSERT INTO {table} (portal, {names}) SELECT $portal, {names} "
                        f"FROM {rows(band)} v ORDER BY {key}, id",
                        {**params, **values},
                    )
                checkpoint(store)
        names = ", ".join(AGG_COLUMNS)
        opened = f"(SELECT * FROM {t.opened} WHERE portal = $portal)"
        with store.transaction():
            _run(
                store,
                f"INSERT INTO {t.agg} (portal, {names}) SELECT $portal, {names} "
                f"FROM ({agg_sql(opened, store.dialect.median)}) a",
                params,
            )
    finally:
        store.execute(f"DROP TABLE IF EXISTS {work}")


def refresh_stage_facts(store: Store, k: Kind, params: dict[str, Any], ids: str | None) -> None:
    """Replace the stage facts of the records in ``ids`` (all the portal's when None).

    Inside the caller's transaction (rop.store.facts.refresh_facts). The open
    aggregates are recomputed for the (pipeline, stage) pairs the records
    leave or enter, all of them on a rebuild.
    """
    t = tables(k)
    order = f"({order_sql(k)})"
    portal_only = "portal = $portal"
    mine = f"(SELECT * FROM {t.visits} WHERE {portal_only})"
    touched: list[tuple[Any, ...]] = []
    if ids:
        touched = store.query(
            f"SELECT DISTINCT pipe, stage FROM {t.opened} WHERE {portal_only}{_only('id', ids)}",
            {"portal": params["portal"]},
        )
    for table in (t.visits, t.opened, t.reach):
        _run(store, f"DELETE FROM {table} WHERE {portal_only}{_only('id', ids)}", params)
    # Sorted on a rebuild: each read of a period is then a range of row groups.
    sort = (
        ("", "", "") if ids else ("ORDER BY k, id", "ORDER BY entered, id", "ORDER BY created, id")
    )
    cols = ", ".join(VISIT_COLUMNS)
    _run(
        store,
        f"INSERT INTO {t.visits} (portal, {cols}) SELECT $portal, {cols} "
        f"FROM ({visits_sql(k, order, ids)}) v {sort[0]}",
        params,
    )
    cols = ", ".join(OPEN_COLUMNS)
    _run(
        store,
        f"INSERT INTO {t.opened} (portal, {cols}) SELECT $portal, {cols} "
        f"FROM ({open_sql(mine, ids)}) v {sort[1]}",
        params,
    )
    cols = ", ".join(REACH_COLUMNS)
    _run(
        store,
        f"INSERT INTO {t.reach} (portal, {cols}) SELECT $portal, {cols} "
        f"FROM ({reach_sql(mine, order, ids)}) v {sort[2]}",
        params,
    )
    cols = ", ".join(AGG_COLUMNS)
    opened = f"(SELECT * FROM {t.opened} WHERE {portal_only})"
    if ids:
        touched += store.query(
            f"SELECT DISTINCT pipe, stage FROM {t.opened} WHERE {portal_only}{_only('id', ids)}",
            {"portal": params["portal"]},
        )
        pairs = sorted(set(touched), key=repr)
        if not pairs:
            return
        # The pairs as bound lists: a stage ID is data.
        params = {**params, "agg_pipes": [p for p, _ in pairs], "agg_stages": [s for _, s in pairs]}
        # NULL-safe: a history row without a pipeline or stage is a pair too.
        where = (
            "EXISTS (SELECT 1 FROM (SELECT unnest(CAST($agg_pipes AS BIGINT[])) AS p, "
            "unnest(CAST($agg_stages AS VARCHAR[])) AS s) x "
            "WHERE x.p IS NOT DISTINCT FROM pipe AND x.s IS NOT DISTINCT FROM stage)"
        )
    else:
        where = "TRUE"
    _run(store, f"DELETE FROM {t.agg} WHERE {portal_only} AND {where}", params)
    _run(
        store,
        f"INSERT INTO {t.agg} (portal, {cols}) SELECT $portal, {cols} "
        f"FROM ({agg_sql(opened, store.dialect.median, where)}) a",
        params,
    )
