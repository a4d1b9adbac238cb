"""Reuse the static steps of the relations (close times, base amounts) between queries.

Close times and base-currency amounts depend only on the store's data, not
on the period or the filter, yet computing them means aggregating the whole
stage history. A report runs a query per section and per period, and a web
session runs many reports: so each static ``*_base`` step is computed once
into a table of an in-memory database attached to the store's DuckDB instance,
and reused while the store's data is unchanged. Nothing is written to the
store file (read-only stores work), every cursor shares the tables, and a change of the data (a sync run, a
snapshot load, rows added or removed) changes the fingerprint, so the next
query recomputes. A program that edits rows in place some other way must
stamp ``portals.updated_at``, as the loader and the sync do.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable
from typing import Any

from rop.store.db import Store

_LOCK = threading.Lock()
_COUNTER = itertools.count(1)
# (store path, portal, step sql, params) -> (fingerprint, table name in CACHE_DB)
_TABLES: dict[tuple, tuple[Any, str]] = {}

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
    "SELECT max(updated_at) FROM portals WHERE portal = $p",
    "SELECT count(*), max(id), max(finished_at) FROM sync_runs WHERE portal = $p",
    "SELECT currency, amount, amount_cnt, base FROM currencies WHERE portal = $p ORDER BY currency",
    "SELECT entity_id, status_id, semantics, name FROM statuses WHERE portal = $p "
    "ORDER BY entity_id, status_id",
    "SELECT id, name FROM pipelines WHERE portal = $p ORDER BY id",
)


def fingerprint(store: Store, portal: str) -> str:
    """A digest of what the static steps read; any change to that data changes it."""
    digest = hashlib.sha1()
    for sql in _FINGERPRINT_SQL:
        params = {"p": portal} if "$p" in sql else {}
        digest.update(repr(store.query(sql, params)).encode())
    return digest.hexdigest()


# An in-memory database attached to the store's DuckDB instance: every cursor
# of the instance (the web serves each thread its own) sees the same tables,
# and it is writable even when the store file is opened read-only.
CACHE_DB = "rop_cache"


def _attach(store: Store) -> None:
    store.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {CACHE_DB} (READ_ONLY false)")


def _exists(store: Store, table: str) -> bool:
    return bool(
        store.scalar(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
            [CACHE_DB, table],
        )
    )


def materializer(store: Store, portal: str) -> Callable[[str, str, dict[str, Any]], str]:
    """A ``Context.materialize`` for one report: fingerprints the data once."""
    stamp = fingerprint(store, portal)

    def materialize(name: str, sql: str, params: dict[str, Any]) -> str:
        key = (store.path, portal, sql, tuple(sorted((k, repr(v)) for k, v in params.items())))
        with _LOCK:
            _attach(store)
            known = _TABLES.get(key)
            if known is not None and known[0] == stamp and _exists(store, known[1]):
                return f"{CACHE_DB}.{known[1]}"
            if known is not None:
                store.execute(f"DROP TABLE IF EXISTS {CACHE_DB}.{known[1]}")
            table = f"{name}_{next(_COUNTER)}"
            store.execute(f"CREATE TABLE {CACHE_DB}.{table} AS {sql}", params)
            _TABLES[key] = (stamp, table)
            return f"{CACHE_DB}.{table}"

    return materialize
