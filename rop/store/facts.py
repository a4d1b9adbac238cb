"""Per-record facts kept in the store and refreshed by every writer.

The report reads a few facts per record that depend only on the store's
data, not on the period or the filter: a deal's close time (its last move
into a final stage, else MOVED_TIME, else CLOSEDATE at local midnight), its
amount in the base currency, its first and last stage movement, its source
(its own, else its lead's); a lead's the same; each call's company (directly
or through its contact). Computing them means aggregating the whole stage
history (about 1.3 s at 1M deals), so they live in tables of their own,
``deal_facts``, ``lead_facts`` and ``call_facts`` (keyed by portal and ID,
like every table), and follow the data:

- every write through ``Store.upsert`` / ``Store.delete_ids`` to a table a
  fact reads records the touched record in ``fact_changes`` (same
  transaction: a killed sync loses no mark); a history row marks its owner;
- :func:`refresh_facts` recomputes the facts of the marked records only (the
  IDs go inside the aggregates, so the history of the other records is never
  read), clears the marks and stamps ``facts_state``; the sync, the by-ID
  sync and the snapshot loader call it as they end, and a worker that writes
  a portal's rows must call it too;
- a change of what every fact reads (the portal's zone or base currency, the
  rates, the stage semantics) or of :data:`FACTS_VERSION` rebuilds the
  portal's facts whole; :func:`ensure_facts` does so for a store written by
  an older version, from `rop migrate` and `rop sync` under the sync's memory
  bound (an open never rebuilds: reports compute in memory meanwhile).

A reader uses the stored facts only when :func:`facts_ready` says they match
the data; otherwise (a read-only store left mid-sync, rows written some other
way) the report computes the same SQL in memory as before (rop.metrics.cache),
so a figure never comes from stale facts. A program that edits rows in place
without ``Store.upsert`` must call ``refresh_facts(store, portal, full=True)``
(or stamp ``portals.updated_at``, which sends reports to the in-memory path
until the next refresh).

The SQL lives here, in the store layer, because every writer must refresh
the facts and the sync may import only the store (docs/ARCHITECTURE.md);
rop.metrics.sources reads these tables (or this SQL) as its ``*_base`` steps.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rop.store import (
    client_days,
    client_facts,
    client_firsts,
    client_texts,
    manager_clients,
    stage_entries,
)
from rop.store.dialect import DUCKDB, Dialect
from rop.store.rollups import (
    Touched,
    rebuild_rollups,
    refresh_rollups,
    rollups_follow,
    stamp_rollups,
    touched,
)
from rop.store.stage_facts import KINDS as STAGE_KINDS
from rop.store.stage_facts import (
    Kind,
    checkpoint,
    id_slices,
    rebuild_stage_facts,
    refresh_stage_facts,
)
from rop.store.stage_facts import tables as stage_table_names

if TYPE_CHECKING:
    from rop.store.db import Store

# Bump when a fact's definition changes: each store rebuilds its facts once at
# its next `rop migrate` or sync (and reads compute in memory until then).
# 2: the stage facts (rop.store.stage_facts); 3: the client facts, the funnel's top stage;
# 4: the client texts (rop.store.client_texts)
FACTS_VERSION = 4

# Source table -> (the entity its rows mark, the column holding that entity's ID).
MARKS: dict[str, tuple[str, str]] = {
    "deals": ("deal", "id"),
    "deal_stage_history": ("deal", "owner_id"),
    "leads": ("lead", "id"),
    "lead_status_history": ("lead", "owner_id"),
    "calls": ("call", "id"),
    "contacts": ("contact", "id"),  # a contact's company is its calls' company
    # A client's manager and creation day: the client days and client counts
    # hold copies of them (rop.store.client_days, rop.store.manager_clients).
    "companies": ("company", "id"),
}

# A refresh with more marked records than this share of a table rebuilds it
# whole: one pass over everything beats a semi-join that keeps nearly all.
REBUILD_SHARE = 0.3


def local_midnight_utc(day: str) -> str:
    """The UTC moment of a local day's midnight in the portal's zone ``$tz``.

    Each day with its own offset, so a CLOSEDATE in summer and one in winter
    are both exact in zones with daylight saving. ``timezone(zone, timestamp)``
    reads the timestamp as local time in both DuckDB and PostgreSQL; the
    session's zone is UTC, so the cast back gives UTC.
    """
    return f"CAST(timezone($tz, CAST({day} AS TIMESTAMP)) AS TIMESTAMP)"


def close_time(semantic: str, history: str, moved: str, last_resort: str) -> str:
    """METRICS.md: the latest move into a final stage, else MOVED_TIME, else the date."""
    return (
        f"CASE WHEN {semantic} IN ('S', 'F') THEN coalesce({history}, {moved}, {last_resort}) END"
    )


def _only(column: str, ids: str | None) -> str:
    """`` AND column IN (ids)`` for a refresh of some records; nothing for all."""
    return f" AND {column} IN (SELECT id FROM {ids})" if ids else ""


def history_facts(
    table: str, move_types: str, ids: str | None = None, dialect: Dialect = DUCKDB
) -> str:
    """Per record, from its history: the last close and its movements.

    ``move_types`` are the history TYPE_IDs that count as a movement
    (METRICS.md "moved"); the first and last of them, and all of them as a
    list in time order, decide "moved in the period" with no look at the
    history per query. Only the records in ``ids`` when given: the IDs are
    inside the aggregate, so a refresh reads only their history.
    """
    return (
        "SELECT owner_id, max(created_time) FILTER (WHERE type_id = 3) AS closed_at, "
        "min(created_time) AS first_move, max(created_time) AS last_move, "
        f"{dialect.list_agg('created_time ORDER BY created_time')} AS moves "
        f"FROM {table} WHERE portal = $portal AND type_id IN ({move_types})"
        f"{_only('owner_id', ids)} GROUP BY owner_id"
    )


DEAL_MOVES = ("deal_stage_history", "2, 3, 5")
LEAD_MOVES = ("lead_status_history", "2, 3")


def funnel_top_sql(ids: str | None = None) -> str:
    """Per deal, the furthest working stage it ever stood at in its current pipeline
    (the page's funnel, rop.metrics.catalogue.funnel_figure): the highest sort of a
    stage of its history (any row) or its current stage, among its pipeline's stages
    (DEAL_STAGE / DEAL_STAGE_<n>) that are not lost ones; NULL when none is known."""
    return f"""SELECT r.id, max(st.sort) AS funnel_top FROM (
    SELECT owner_id AS id, stage_id FROM deal_stage_history
    WHERE portal = $portal{_only("owner_id", ids)}
    UNION ALL SELECT id, stage_id FROM deals WHERE portal = $portal{_only("id", ids)}) r
JOIN (SELECT id, CASE WHEN category_id = 0 THEN 'DEAL_STAGE'
        ELSE 'DEAL_STAGE_' || CAST(category_id AS VARCHAR) END AS entity
    FROM deals WHERE portal = $portal{_only("id", ids)}) dc ON dc.id = r.id
JOIN (SELECT entity_id, status_id, max(sort) AS sort FROM statuses
    WHERE portal = $portal AND entity_id LIKE 'DEAL_STAGE%' AND coalesce(semantics, '') <> 'F'
    GROUP BY entity_id, status_id) st ON st.entity_id = dc.entity AND st.status_id = r.stage_id
GROUP BY r.id"""


def deal_sql(ids: str | None = None, dialect: Dialect = DUCKDB) -> str:
    """One row per deal with a responsible: the facts every deal figure reads."""
    semantic = "coalesce(d.stage_semantic, s.semantics, 'P')"
    return f"""SELECT d.id, d.assigned_by_id AS manager_id, d.category_id, {semantic} AS semantic,
    d.date_create, d.closedate, d.company_id, d.contact_id,
    {close_time(semantic, "c.closed_at", "d.moved_time", local_midnight_utc("d.closedate"))}
        AS close_time,
    coalesce(d.opportunity * coalesce(r.rate, CASE WHEN d.currency_id IS NULL THEN 1.0 END), 0)
        AS amount,
    (coalesce(d.opportunity, 0) = 0 OR (r.rate IS NULL AND d.currency_id IS NOT NULL))
        AS amount_missing,
    coalesce(d.source_id, l.source_id) AS grp_source,
    CAST(d.category_id AS VARCHAR) AS grp_pipeline, c.first_move, c.last_move, c.moves,
    ft.funnel_top
FROM deals d
LEFT JOIN ({history_facts(*DEAL_MOVES, ids, dialect)}) c ON c.owner_id = d.id
LEFT JOIN ({funnel_top_sql(ids)}) ft ON ft.id = d.id
-- Joins on the ID alone, the portal fixed inside: a join key with the
-- portal's name in it costs a string comparison per row (0.3 s at 1M deals).
LEFT JOIN (SELECT id, source_id FROM leads WHERE portal = $portal) l ON l.id = d.lead_id
LEFT JOIN (SELECT currency, CASE WHEN currency = $base OR base THEN 1.0
        ELSE amount / amount_cnt END AS rate
    FROM currencies WHERE portal = $portal) r ON r.currency = d.currency_id
LEFT JOIN (SELECT status_id, max(semantics) AS semantics FROM statuses
    WHERE portal = $portal AND entity_id LIKE 'DEAL_STAGE%' GROUP BY status_id) s
    ON s.status_id = d.stage_id
WHERE d.portal = $portal AND d.assigned_by_id IS NOT NULL{_only("d.id", ids)}"""


def lead_sql(ids: str | None = None, dialect: Dialect = DUCKDB) -> str:
    """One row per lead with a responsible: the facts every lead figure reads."""
    semantic = "coalesce(l.status_semantic, s.semantics, 'P')"
    return f"""SELECT l.id, l.assigned_by_id AS manager_id, {semantic} AS semantic, l.date_create,
    {close_time(semantic, "c.closed_at", "l.moved_time", "l.date_closed")} AS close_time,
    l.source_id AS grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline,
    c.first_move, c.last_move, c.moves
FROM leads l
LEFT JOIN ({history_facts(*LEAD_MOVES, ids, dialect)}) c ON c.owner_id = l.id
LEFT JOIN (SELECT status_id, max(semantics) AS semantics FROM statuses
    WHERE portal = $portal AND entity_id = 'STATUS' GROUP BY status_id) s
    ON s.status_id = l.status_id
WHERE l.portal = $portal AND l.assigned_by_id IS NOT NULL{_only("l.id", ids)}"""


def call_sql(ids: str | None = None, dialect: Dialect = DUCKDB) -> str:
    """Every call with its client resolved: a company directly or through its contact."""
    return f"""SELECT c.id, c.portal_user_id AS manager_id, c.call_type, c.call_duration,
    c.call_start_date, c.call_failed_code, c.crm_entity_type, c.crm_entity_id,
    CASE c.crm_entity_type WHEN 'COMPANY' THEN c.crm_entity_id
        WHEN 'CONTACT' THEN ct.company_id END AS company_id,
    CASE c.crm_entity_type WHEN 'CONTACT' THEN c.crm_entity_id END AS contact_id
FROM calls c
LEFT JOIN (SELECT id, company_id FROM contacts WHERE portal = $portal) ct
    ON ct.id = c.crm_entity_id AND c.crm_entity_type = 'CONTACT'
WHERE c.portal = $portal{_only("c.id", ids)}"""


@dataclass(frozen=True)
class Fact:
    """One stored fact table: its name, the entity whose marks it follows, its SQL."""

    table: str
    entity: str  # the marks it follows first (see affected())
    source: str  # the entity's own table
    sql: Any  # (ids relation | None, dialect) -> SELECT of the facts, without portal
    columns: tuple[str, ...]


DEAL = Fact(
    "deal_facts", "deal", "deals", deal_sql,
    ("id", "manager_id", "category_id", "semantic", "date_create", "closedate", "company_id",
     "contact_id", "close_time", "amount", "amount_missing", "grp_source", "grp_pipeline",
     "first_move", "last_move", "moves", "funnel_top"),
)  # fmt: skip
LEAD = Fact(
    "lead_facts", "lead", "leads", lead_sql,
    ("id", "manager_id", "semantic", "date_create", "close_time", "grp_source", "grp_pipeline",
     "first_move", "last_move", "moves"),
)  # fmt: skip
CALL = Fact(
    "call_facts", "call", "calls", call_sql,
    ("id", "manager_id", "call_type", "call_duration", "call_start_date", "call_failed_code",
     "crm_entity_type", "crm_entity_id", "company_id", "contact_id"),
)  # fmt: skip
FACTS: tuple[Fact, ...] = (DEAL, LEAD, CALL)
BY_STEP = {"deal_base": DEAL, "lead_base": LEAD, "call_base": CALL}


def stored_sql(fact: Fact) -> str:
    """What a report reads when the stored facts are current (the same columns)."""
    return f"SELECT {', '.join(fact.columns)} FROM {fact.table} WHERE portal = $portal"


def _affected(fact: Fact) -> str:
    """The IDs of ``fact``'s records the marks touch (a SELECT of ``id``).

    Beyond a record's own marks: a lead's source is its deals' source, and a
    contact's company is its calls' company.
    """
    marked = "SELECT id FROM fact_changes WHERE portal = $portal AND entity = "
    own = f"{marked}'{fact.entity}'"
    if fact is DEAL:
        return (
            f"{own} UNION SELECT id FROM deals WHERE portal = $portal "
            f"AND lead_id IN ({marked}'lead')"
        )
    if fact is CALL:
        return (
            f"{own} UNION SELECT id FROM calls WHERE portal = $portal "
            f"AND crm_entity_type = 'CONTACT' AND crm_entity_id IN ({marked}'contact')"
        )
    return own


# -- what every fact reads beside the records: a change rebuilds them all ----
def inputs_digest(store: Store, portal: str) -> str:
    """A digest of the portal's zone, base currency, rates and stage semantics."""
    digest = hashlib.sha1()
    for sql in (
        "SELECT timezone, base_currency FROM portals WHERE portal = ?",
        "SELECT currency, amount, amount_cnt, base FROM currencies WHERE portal = ? "
        "ORDER BY currency",
        # The stage facts read the stages' sort and pipeline as well.
        "SELECT entity_id, status_id, semantics, sort, category_id FROM statuses WHERE portal = ? "
        "AND (entity_id LIKE 'DEAL_STAGE%' OR entity_id = 'STATUS') ORDER BY entity_id, status_id",
    ):
        digest.update(repr(store.query(sql, [portal])).encode())
    return digest.hexdigest()


def _params(store: Store, portal: str) -> dict[str, Any]:
    row = store.query("SELECT timezone, base_currency FROM portals WHERE portal = ?", [portal])
    tz, base = row[0] if row else (None, None)
    return {"portal": portal, "tz": tz or "UTC", "base": base}


def _bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _write(store: Store, fact: Fact, params: dict[str, Any], ids: str | None) -> None:
    """Replace the facts of the records in ``ids`` (all the portal's when None)."""
    cols = ", ".join(fact.columns)
    delete = f"DELETE FROM {fact.table} WHERE portal = $portal{_only('id', ids)}"
    store.execute(delete, _bind(delete, params))
    insert = (
        f"INSERT INTO {fact.table} (portal, {cols}) "
        f"SELECT $portal, {cols} FROM ({fact.sql(ids, store.dialect)}) f"
    )
    store.execute(insert, _bind(insert, params))


_IDS = "_rop_fact_ids"


def _stage_ids(store: Store, ids: list[int]) -> Any:
    from rop.store.db import TableSpec

    spec = TableSpec({"id": pa.int64()}, ("id",), {"id": "BIGINT"})
    return store.staged(_IDS, spec, {"id": ids})


@dataclass
class Refreshed:
    """What a refresh did: per fact table, the records recomputed (None: rebuilt whole)."""

    portal: str
    records: dict[str, int | None]
    seconds: float
    # The rollup groups (rop.store.rollups) recomputed: (kind, day) pairs; None: rebuilt.
    rollups: int | None = 0

    @property
    def rebuilt(self) -> bool:
        return any(v is None for v in self.records.values())


# A whole rebuild goes in slices of this many records, each in its own
# transaction: one transaction for a whole 1M-deal portal held every new row of
# the three tables until its commit, the peak of a full sync's memory (976 MB;
# DuckDB cannot commit it under a 300 MB limit). The stage facts' visits are
# written in bands of this many rows too (rop.store.stage_facts.rebuild_stage_facts).
SLICE = 200_000
# The stage visits cut a slice's history with three window functions: 200,000
# deals (840k history rows) need more than a 256 MB limit, 50,000 fit.
STAGE_SLICE = 50_000

# Marks of an entity -> the facts that read them (see _affected()): the fact
# tables, and the stage facts (by their entity) of the records' own marks.
_READERS: dict[str, tuple[Fact | str, ...]] = {
    "deal": (DEAL, "deal"),
    "lead": (LEAD, DEAL, "lead"),
    "call": (CALL,),
    "contact": (CALL,),
    # The contact and company marks are read by the client days and client counts
    # too (rop.store.client_days, rop.store.manager_clients): a rebuild of any fact
    # rebuilds those whole as well (the refresh's ``follow``), so none is lost here.
}


def _slices(store: Store, fact: Fact, portal: str) -> list[tuple[int, int]]:
    """(after, up to) ID bounds of consecutive slices of at most SLICE records."""
    return id_slices(store, fact.source, portal, SLICE)


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    """A rebuild step's store error names the step: DuckDB's out-of-memory message
    names no table, and the operator (or the next engineer) needs to know which of
    a 1M-deal rebuild's steps did not fit ``ROP_SYNC_MEMORY_LIMIT``."""
    from rop.store.db import StoreError  # db imports this module

    try:
        yield
    except StoreError as exc:
        raise type(exc)(f"{exc} [rebuilding {name}]") from None


def _rebuild(
    store: Store, facts: list[Fact], stages: list[Kind], params: dict[str, Any], portal: str
) -> None:
    """Rebuild ``facts`` and the stage facts of ``stages`` whole, slice by slice,
    each slice its own transaction.

    First, in one transaction, the portal's facts state goes (every reader
    computes in memory until the end: it never sees half-rebuilt facts), the
    facts go, and so do the marks only these facts read (the rebuild covers
    them; marks left or made meanwhile are handled by the refresh's last step).
    A run cut short leaves no state, so the next sync or `rop migrate` rebuilds.
    The stage facts are sliced on DuckDB only (PostgreSQL rebuilds them in
    the refresh's last transaction, on its server); their marks go here on both.
    """
    whole: set[Fact | str] = set(facts) | {k.entity for k in stages}
    with store.transaction():
        store.execute("DELETE FROM facts_state WHERE portal = ?", [portal])
        for fact in facts:
            store.execute(f"DELETE FROM {fact.table} WHERE portal = ?", [portal])
        for entity, readers in _READERS.items():
            if whole.issuperset(readers):
                store.execute(
                    "DELETE FROM fact_changes WHERE portal = ? AND entity = ?", [portal, entity]
                )
    # The stage facts' rows go a table per transaction: deleting a 1M-deal
    # portal's 4M visits loads their index (150 MB), more than one transaction
    # of everything fits in a 256 MB limit.
    sliced = stages if store.dialect is DUCKDB else []
    for stage in sliced:
        for table in _stage_tables(stage):
            with store.transaction():
                store.execute(f"DELETE FROM {table} WHERE portal = ?", [portal])
    # DuckDB keeps the index entries these deletes (and the inserts below) touch in
    # memory until a checkpoint: at 1M deals the primary keys of the old facts,
    # visits and client rows together left the first stage band no room under
    # 160MB (`rop migrate` failed in three runs of six, BENCHMARKS "Sync").
    if store.dialect is DUCKDB:
        checkpoint(store)
    for fact in facts:
        if store.dialect is not DUCKDB:
            # PostgreSQL computes on its server (no memory of ours to bound), and
            # the slices' ID ranges inside the aggregates can get a plan per
            # record on tables not analysed yet: one statement there.
            with store.transaction():
                _write(store, fact, params, None)
            # The next facts, the client facts and the rollups read these rows.
            store.analyze()
            continue
        for after, top in _slices(store, fact, portal):
            ids = f"(SELECT id FROM {fact.source} WHERE portal = $portal AND id > $after AND id <= $top) s"
            insert = (
                f"INSERT INTO {fact.table} (portal, {', '.join(fact.columns)}) "
                f"SELECT $portal, {', '.join(fact.columns)} FROM ({fact.sql(ids, store.dialect)}) f"
            )
            with _step(f"{fact.table}, ids {after}-{top}"), store.transaction():
                store.execute(insert, _bind(insert, {**params, "after": after, "top": top}))
    if whole & {DEAL, CALL}:
        # The client facts derive from the deal and call facts: whole too, a
        # transaction per kind (readers compute in memory until the state is stamped).
        # So do the client texts (the call facts say whose each call is).
        for kind in client_facts.KINDS:
            with _step(f"{client_facts.TABLE} of {kind}"), store.transaction():
                client_facts.write(store, params, kind, None)
            with _step(f"{client_texts.TABLE} of {kind}"), store.transaction():
                client_texts.write(store, params, kind, None)
    if sliced:
        checkpoint(store)
    for stage in sliced:
        with _step(f"the {stage.entity} stage facts"):
            rebuild_stage_facts(store, stage, params, STAGE_SLICE, SLICE)


def refresh_facts(store: Store, portal: str, *, full: bool = False) -> Refreshed:
    """Bring ``portal``'s stored facts up to date with its rows; returns what it did.

    The hook every writer calls when it has written a portal's rows (the
    sync, the by-ID sync, the snapshot loader, a worker): the records marked
    since the last refresh are recomputed, or everything when ``full``, when
    the facts were never built or built by another :data:`FACTS_VERSION`, or
    when the zone, the rates or the stage semantics changed. A table rebuilt
    whole goes slice by slice (:func:`_rebuild`: a reader meanwhile computes
    the facts in memory); the marked records are recomputed in one
    transaction: a reader sees the old facts or the new ones.
    """
    import time

    start = time.perf_counter()
    store.use_portal(portal)
    # The rows just copied or loaded get statistics before the statements
    # below read them (PostgreSQL: the stale tables only, a catalogue read
    # when none is; rop.store.pg_stats). Planned without, a 10k-deal first
    # sync's rebuild ran as nested loops: 26 s instead of 4.
    store.analyze()
    done: dict[str, int | None] = {}
    params = _params(store, portal)
    inputs = inputs_digest(store, portal)
    state = store.query("SELECT version, inputs FROM facts_state WHERE portal = ?", [portal])
    whole = full or not state or state[0][0] != FACTS_VERSION or state[0][1] != inputs
    rebuild = []
    for fact in FACTS:
        if whole:
            rebuild.append(fact)
            continue
        marked = store.scalar(f"SELECT count(*) FROM ({_affected(fact)}) a", {"portal": portal})
        size = store.scalar(f"SELECT count(*) FROM {fact.source} WHERE portal = ?", [portal])
        if int(marked or 0) > REBUILD_SHARE * int(size or 0):
            rebuild.append(fact)
    # The stage facts read the deal and lead marks, which a whole rebuild of
    # the deal or lead facts deletes: take them first.
    staged = (
        {} if whole else {k.entity: _marked(store, portal, k.entity) for k in STAGE_KINDS.values()}
    )
    # The rollups follow the changed records' days, unless they are rebuilt whole:
    # with a fact table rebuilt, or built by another version (or never).
    follow = not rebuild and not whole and rollups_follow(store, portal)
    stages_whole = [
        k
        for k in STAGE_KINDS.values()
        if whole or _stages_share(store, k, portal, staged[k.entity])
    ]
    # DuckDB rebuilds them in slices first (bounded memory); PostgreSQL in the
    # last transaction, on its server, as one statement per table.
    sliced = stages_whole if store.dialect is DUCKDB else []
    if rebuild or stages_whole:
        _rebuild(store, rebuild, stages_whole, params, portal)
    if not follow and store.dialect is DUCKDB:
        # The stage entries rebuilt with the rollups, in slices (bounded memory);
        # readers do not use them until the rollups are stamped below.
        with _step("the stage entries"):
            stage_entries.rebuild(store, params, STAGE_SLICE)
    days: Touched = {}
    with store.transaction():
        # The clients the changed deals and calls point at, before and after.
        clients: dict[str, set[int]] = {kind: set() for kind in client_facts.KINDS}
        # And, for the client texts, those the deal facts cannot tell of.
        texted: dict[str, set[int]] = {kind: set() for kind in client_facts.KINDS}
        for fact in FACTS:
            ids = [int(r[0]) for r in store.query(_affected(fact), {"portal": portal})]
            if ids:
                with _stage_ids(store, ids):
                    linked = fact in (DEAL, CALL)
                    before = client_facts.links(store, portal, fact.table, _IDS) if linked else {}
                    # The rollup days the records leave and the days they enter.
                    left = touched(store, fact.entity, params, _IDS) if follow else set()
                    _write(store, fact, params, _IDS)
                    entered = touched(store, fact.entity, params, _IDS) if follow else set()
                    after = client_facts.links(store, portal, fact.table, _IDS) if linked else {}
                    for part in (before, after):
                        for client, found in part.items():
                            clients[client] |= found
                    if fact is DEAL:
                        for client, found in client_texts.links(store, portal, _IDS).items():
                            texted[client] |= found
                days[fact.entity] = left | entered
            done[fact.table] = None if fact in rebuild else len(ids)
        for client, found in clients.items():
            if found:
                with _stage_ids(store, sorted(found)):
                    client_facts.write(store, params, client, _IDS)
            if follow:  # else the client days and counts are rebuilt below
                # The clients changed themselves (a new manager, added, deleted): the
                # copies of their manager follow (the days' rows, the counts per manager).
                changed = _marked(store, portal, client)
                if found | changed:
                    with _stage_ids(store, sorted(found | changed)):
                        client_days.write(store, params, client, _IDS)
                        client_firsts.write(store, params, client, _IDS)
                if changed:
                    manager_clients.write(store, params, client)
            if found | texted[client]:
                with _stage_ids(store, sorted(found | texted[client])):
                    client_texts.write(store, params, client, _IDS)
        rebuilt_clients = bool({DEAL, CALL} & set(rebuild))
        done[client_facts.TABLE] = None if rebuilt_clients else sum(map(len, clients.values()))
        done[client_texts.TABLE] = (
            None if rebuilt_clients else sum(len(v | texted[k]) for k, v in clients.items())
        )
        if follow:
            # The stage entries of the deals whose history changed (rebuilt with
            # the rollups otherwise): rop.store.stage_entries.
            moved = staged.get("deal", set()) | _marked(store, portal, "deal")
            if moved:
                with _stage_ids(store, sorted(moved)):
                    stage_entries.write(store, params, _IDS)
            rolled: int | None = refresh_rollups(store, params, days)
        else:
            with _step("the rollups and client days"):
                rebuild_rollups(store, params, entries=store.dialect is not DUCKDB)
            rolled = None
        for kind in STAGE_KINDS.values():
            fresh = _marked(store, portal, kind.entity)
            if kind in sliced:
                # Rebuilt above: only the marks made meanwhile (or kept for
                # another reader) are recomputed, which is exact either way.
                _refresh_stages(store, kind, params, fresh)
                done[f"{kind.entity}_stage"] = None
            elif kind in stages_whole:
                done[f"{kind.entity}_stage"] = _refresh_stages(store, kind, params, None)
            else:
                marked = staged[kind.entity] | fresh
                done[f"{kind.entity}_stage"] = _refresh_stages(store, kind, params, marked)
        store.execute("DELETE FROM fact_changes WHERE portal = ?", [portal])
        stamp = store.scalar("SELECT updated_at FROM portals WHERE portal = ?", [portal])
        store.execute("DELETE FROM facts_state WHERE portal = ?", [portal])
        now = datetime.now(UTC).replace(tzinfo=None)
        store.execute(
            "INSERT INTO facts_state (portal, version, inputs, stamp, refreshed_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [portal, FACTS_VERSION, inputs, stamp, now],
        )
        stamp_rollups(store, portal, now)
    if rebuild or whole or not follow:
        # A first copy or a load: statistics for the planner now (the rollups,
        # client days and stage facts written above), not when autovacuum gets there.
        # So after the rollups alone were rebuilt (a new ROLLUP_VERSION): the
        # stage entries' first rows (rop.store.stage_entries).
        store.analyze()
    return Refreshed(portal, done, time.perf_counter() - start, rolled)


def _marked(store: Store, portal: str, entity: str) -> set[int]:
    rows = store.query(
        "SELECT id FROM fact_changes WHERE portal = ? AND entity = ?", [portal, entity]
    )
    return {int(r[0]) for r in rows}


def _stages_share(store: Store, kind: Kind, portal: str, marked: set[int]) -> bool:
    """More of the kind's records are marked than a refresh of some is worth."""
    size = store.scalar(f"SELECT count(*) FROM {kind.table} WHERE portal = ?", [portal])
    return len(marked) > REBUILD_SHARE * int(size or 0)


def _stage_tables(kind: Kind) -> tuple[str, ...]:
    t = stage_table_names(kind)
    return (t.visits, t.opened, t.reach, t.agg)


def _refresh_stages(
    store: Store, kind: Kind, params: dict[str, Any], marked: set[int] | None
) -> int | None:
    """The stage facts of one kind for its marked records (None: rebuilt whole,
    in this transaction: PostgreSQL's way; DuckDB's is rebuild_stage_facts).

    A record's visits depend on its row and its history only, so its own
    marks are all that matter (not a lead's deals, as for the deal facts).
    """
    if marked is None:
        refresh_stage_facts(store, kind, params, None)
        return None
    if marked:
        with _stage_ids(store, sorted(marked)):
            refresh_stage_facts(store, kind, params, _IDS)
    return len(marked)


def facts_ready(store: Store, portal: str) -> bool:
    """The stored facts match the portal's data: built by this version, from the
    same zone, rates and semantics, nothing marked since, no in-place edit stamped.

    Remembered until the next write where the store allows it (rop.store.memo)."""
    return store.remember(("facts_ready", portal), lambda: _facts_ready(store, portal))


def _facts_ready(store: Store, portal: str) -> bool:
    row = store.query(
        "SELECT s.version, s.inputs, s.stamp, p.updated_at, "
        "(SELECT count(*) FROM (SELECT 1 FROM fact_changes c WHERE c.portal = p.portal "
        "LIMIT 1) x) FROM portals p JOIN facts_state s ON s.portal = p.portal "
        "WHERE p.portal = ?",
        [portal],
    )
    if not row:
        return False
    version, inputs, stamp, updated_at, pending = row[0]
    return (
        version == FACTS_VERSION
        and not pending
        and stamp == updated_at
        and inputs == inputs_digest(store, portal)
    )


def rebuilds_whole(store: Store, portal: str) -> bool:
    """The portal's next refresh rebuilds every fact whole whatever is marked:
    none built yet (a first copy) or built by another :data:`FACTS_VERSION`.

    A writer may then leave its writes unmarked (``Store.unmarked``) and ask
    for ``refresh_facts(full=True)``: the marks of a first copy are every
    record (millions of ``fact_changes`` rows and their index, and a join per
    written batch to make them), all to be deleted by that rebuild. A run cut
    short leaves the state as it was, so the next run rebuilds whole too.
    """
    version = store.scalar("SELECT version FROM facts_state WHERE portal = ?", [portal])
    return version != FACTS_VERSION


def lagging(store: Store) -> list[str]:
    """The portals whose stored facts :func:`ensure_facts` would build: none yet, or
    built by another :data:`FACTS_VERSION`, or built before the rollups.

    Their reports compute the facts in memory meanwhile (:func:`facts_ready` is
    false), so the figures are right, only slower."""
    found = []
    for (portal,) in store.query("SELECT portal FROM portals ORDER BY portal"):
        version = store.scalar("SELECT version FROM facts_state WHERE portal = ?", [portal])
        if version != FACTS_VERSION or not rollups_follow(store, portal):
            found.append(portal)
    return found


def ensure_facts(store: Store) -> list[str]:
    """Build the facts of every portal that has none from this version; returns those.

    A writer's step, never an open's: `rop migrate` and `rop sync` run it under
    the sync's memory bound (``ROP_SYNC_MEMORY_LIMIT``), slice by slice (see
    :func:`refresh_facts`), and the sync's own refresh does the same for its
    portal. Opening a store never rebuilds (`rop serve` would hold its first
    request for minutes and, unbounded, gigabytes at 1M deals): until a writer
    comes, its reports compute the facts in memory.
    """
    # Here, not at the top: portal_lock imports db, which imports this module.
    from rop.store.portal_lock import if_free

    built = []
    before = store.portal
    for portal in lagging(store):
        # PostgreSQL: never beside a sync of the portal (rop.store.portal_lock); one
        # running now ends with its own refresh, whole when the facts lag.
        with if_free(store, portal) as free:
            if not free:
                continue
            store.use_portal(portal)
            version = store.scalar("SELECT version FROM facts_state WHERE portal = ?", [portal])
            # Facts current but the rollups missing (a store from before them): the
            # refresh builds the rollups and recomputes only the marked records.
            refresh_facts(store, portal, full=version != FACTS_VERSION)
        built.append(portal)
    if built or before is not None:
        store.use_portal(before or "")  # PostgreSQL: back to no portal when none was set
        store.portal = before
    return built


def mark_upserted(table: str, columns: list[str], key: tuple[str, ...]) -> str | None:
    """SQL marking the records the staged batch ``_rop_batch`` adds or changes in ``table``
    (None: not a fact source). Run before the batch is written: a row re-read
    unchanged (the sync's overlap, a listed range) marks nothing."""
    mark = MARKS.get(table)
    if mark is None:
        return None
    entity, column = mark
    on = " AND ".join(f"t.{k} = b.{k}" for k in key)
    differs = " OR ".join(f"t.{c} IS DISTINCT FROM b.{c}" for c in columns if c not in key)
    changed = (
        f"FROM _rop_batch b LEFT JOIN {table} t ON {on} "
        f"WHERE t.{key[-1]} IS NULL OR {differs or 'FALSE'}"
    )
    # A row of another record's (a history row): the record it leaves is marked too.
    old = f" UNION SELECT t.portal, t.{column} {changed}" if column not in key else ""
    return (
        "INSERT INTO fact_changes (portal, entity, id) "
        f"SELECT DISTINCT portal, '{entity}', id FROM (SELECT b.portal, b.{column} AS id {changed}"
        f"{old}) m WHERE id IS NOT NULL ON CONFLICT DO NOTHING"
    )


def mark_deleted(table: str, ids: str) -> str | None:
    """SQL marking the records whose rows in ``table`` are about to be deleted.

    ``ids`` is a relation of the row IDs; parameter ``?`` is the portal. A
    history row marks its owner, read before the row goes.
    """
    mark = MARKS.get(table)
    if mark is None:
        return None
    entity, column = mark
    return (
        "INSERT INTO fact_changes (portal, entity, id) "
        f"SELECT DISTINCT portal, '{entity}', {column} FROM {table} "
        f"WHERE portal = ? AND id IN (SELECT id FROM {ids}) AND {column} IS NOT NULL "
        "ON CONFLICT DO NOTHING"
    )
