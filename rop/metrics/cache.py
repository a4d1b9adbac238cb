"""Reuse the static steps of the relations between queries.

The deal, lead and call facts (close times, base amounts, movements) and the
stage facts (visits) are the store's own tables (rop.store.facts,
rop.store.stage_facts), read directly while they are current;
the steps here are the others (list texts, the stage directory), and those facts
too while the stored ones lag the data (a read-only store left mid-sync,
rows edited in place). Such steps depend only on the store's data, not on
the period or the filter, yet computing them means aggregating the whole
stage history. A report runs a query per section and per period, and a web
session runs many reports: so each static ``*_base`` step is computed once
into a scratch table the store provides (DuckDB: an in-memory database
attached to its instance; PostgreSQL: a temporary table of the session) and
reused while the store's data is unchanged. Nothing is written to the
store's own tables (read-only stores work), and a change of the data (a sync run, a
snapshot load, rows added or removed) changes the fingerprint, so the next
query recomputes. A program that edits rows in place some other way must
stamp ``portals.updated_at``, as the loader and the sync do.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rop.store.db import SCRATCH_DB, Store

_LOCK = threading.Lock()
_COUNTER = itertools.count(1)
# (scratch key, portal, step sql, params) -> (fingerprint, table, name to read it by),
# least recently used first. Bounded: past MAX_TABLES the oldest table is dropped
# (a server's memory stays bounded whatever the mix of portals and connections).
_TABLES: OrderedDict[tuple, tuple[Any, str, str]] = OrderedDict()
MAX_TABLES = 48

# Cheap on purpose (it runs before every report and drill-down): table sizes
# (answered from DuckDB's metadata), the small directories the steps read, and
# the marks every writer leaves: the snapshot loader and the sync stamp
# portals.updated_at, and each sync run ends with a sync_runs row. An edit in
# place by a sync becomes visible when its run ends (the data's "as of" time).
_FINGERPRINT_SQL: tuple[str, ...] = (
    # Separate statements: a bare count(*) is answered from metadata, but not
    # inside a bigger query.
    "SELECT count(*) FROM deals",
    "SELECT count(*) FROM deal_stage_history",
    "SELECT count(*) FROM leads",
    "SELECT count(*) FROM lead_status_history",
    "SELECT count(*) FROM calls",
    "SELECT count(*) FROM contacts",
    # The data-quality steps (rop.metrics.quality) read these as well.
    "SELECT count(*) FROM companies",
    "SELECT count(*) FROM activities",
    "SELECT count(*) FROM requisites",
    "SELECT max(updated_at) FROM portals WHERE portal = $p",
    "SELECT count(*), max(id), max(finished_at) FROM sync_runs WHERE portal = $p",
    "SELECT currency, amount, amount_cnt, base FROM currencies WHERE portal = $p ORDER BY currency",
    "SELECT entity_id, status_id, semantics, name FROM statuses WHERE portal = $p "
    "ORDER BY entity_id, status_id",
    "SELECT id, name FROM pipelines WHERE portal = $p ORDER BY id",
)


# PostgreSQL answers a bare count(*) by scanning the table (the portal's rows,
# under row-level security): the eight counts took 0.75 s at 100k deals and
# several seconds at 1M, before every report. There the writers' own marks
# stand for the sizes: every write through Store.upsert / delete_ids to a table
# the stored facts read marks the record in fact_changes (same transaction),
# and refresh_facts, which every writer calls as it ends, clears the marks and
# stamps facts_state. Tables no fact reads (companies, activities) then show a
# change when the run that wrote it ends (its sync_runs row), as an edit in
# place already does on both engines.
_PG_FINGERPRINT_SQL: tuple[str, ...] = (
    "SELECT count(*) FROM fact_changes WHERE portal = $p",
    "SELECT version, inputs, stamp, refreshed_at FROM facts_state WHERE portal = $p",
    *(sql for sql in _FINGERPRINT_SQL if "$p" in sql),
)


def fingerprint(store: Store, portal: str) -> str:
    """A digest of what the static steps read; any change to that data changes it.

    Remembered until the next write where the store allows it (rop.store.memo)."""
    return store.remember(("fingerprint", portal), lambda: _fingerprint(store, portal))


def _fingerprint(store: Store, portal: str) -> str:
    digest = hashlib.sha1()
    statements = _PG_FINGERPRINT_SQL if store.dialect.name == "postgres" else _FINGERPRINT_SQL
    for sql in statements:
        params = {"p": portal} if "$p" in sql else {}
        digest.update(repr(store.query(sql, params)).encode())
    return digest.hexdigest()


def _exists(store: Store, table: str) -> bool:
    """The cache table is still there (a store closed and opened again has none);
    a table seen once stays until this module drops it, so it is asked once per
    generation of the data (rop.store.memo)."""
    return store.remember(("scratch", table), lambda: store.scratch_exists(table))


# DuckDB: an in-memory database attached to the store's instance, shared by
# every cursor. PostgreSQL: temporary tables of the session (each pooled
# connection keeps its own, so nothing crosses a connection and row-level
# security applied when they were computed). The store says which.
CACHE_DB = SCRATCH_DB


def materializer(store: Store, portal: str) -> Callable[[str, str, dict[str, Any]], str]:
    """A ``Context.materialize`` for one report: fingerprints the data once."""
    stamp = fingerprint(store, portal)

    def materialize(name: str, sql: str, params: dict[str, Any]) -> str:
        key = (
            store.scratch_key(),
            portal,
            sql,
            tuple(sorted((k, repr(v)) for k, v in params.items())),
        )
        with _LOCK:
            known = _TABLES.get(key)
            if known is not None and known[0] == stamp and _exists(store, known[1]):
                _TABLES.move_to_end(key)
                return known[2]
            if known is not None:
                store.scratch_drop(known[1])
            table = f"{name}_{next(_COUNTER)}"
            qualified = store.scratch_create(table, sql, params)
            _TABLES[key] = (stamp, table, qualified)
            # Past the bound, only a table of older data goes: a current one may
            # be in use by a report running now (one report reads many steps).
            for old_key in [k for k, v in _TABLES.items() if v[0] != stamp]:
                if len(_TABLES) <= MAX_TABLES:
                    break
                _, old, _ = _TABLES.pop(old_key)
                if old_key[0] == key[0]:  # another connection's (PostgreSQL) stays
                    store.scratch_drop(old)
            return qualified

    return materialize
