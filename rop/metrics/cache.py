"""Reuse the static steps of the relations (close times, base amounts) between queries.

Close times and base-currency amounts depend only on the store's data, not
on the period or the filter, yet computing them means aggregating the whole
stage history. A report runs a query per section and per period, and a web
session runs many reports: so each static ``*_base`` step is computed once
into a TEMP table of the connection, and reused while the store's data is
unchanged. TEMP tables live in the connection only (nothing is written to the
store file, read-only stores work), and a change of the data (a sync, a
snapshot load) changes the fingerprint, so the next query recomputes.
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
# (connection id, portal, step sql, params) -> (fingerprint, temp table name)
_TABLES: dict[tuple, tuple[Any, str]] = {}

# One scan per table; each row-count, last-change and ID-sum moves when the
# table's rows are added, deleted or edited (Bitrix24 bumps DATE_MODIFY on edits).
_FINGERPRINT_SQL = """SELECT * FROM
 (SELECT count(*), max(date_modify), sum(id) FROM deals WHERE portal = $p) d,
 (SELECT count(*), max(id) FROM deal_stage_history WHERE portal = $p) dh,
 (SELECT count(*), max(date_modify), sum(id) FROM leads WHERE portal = $p) l,
 (SELECT count(*), max(id) FROM lead_status_history WHERE portal = $p) lh,
 (SELECT count(*), max(id) FROM calls WHERE portal = $p) c,
 (SELECT count(*), max(date_modify), sum(id) + sum(coalesce(company_id, 0))
  FROM contacts WHERE portal = $p) ct,
 (SELECT string_agg(currency || ':' || CAST(amount AS VARCHAR) || '/'
     || CAST(amount_cnt AS VARCHAR) || ':' || CAST(base AS VARCHAR), ',' ORDER BY currency)
  FROM currencies WHERE portal = $p) cur,
 (SELECT string_agg(entity_id || ':' || status_id || ':' || coalesce(semantics, '') || ':'
     || coalesce(name, ''), ',' ORDER BY entity_id, status_id)
  FROM statuses WHERE portal = $p) st,
 (SELECT string_agg(CAST(id AS VARCHAR) || ':' || coalesce(name, ''), ',' ORDER BY id)
  FROM pipelines WHERE portal = $p) pl,
 (SELECT max(updated_at) FROM portals WHERE portal = $p) pt"""


def fingerprint(store: Store, portal: str) -> str:
    """A digest of what the static steps read; any change to that data changes it."""
    row = store.query(_FINGERPRINT_SQL, {"p": portal})[0]
    return hashlib.sha1(repr(row).encode()).hexdigest()


def _exists(store: Store, table: str) -> bool:
    return bool(
        store.scalar(
            "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [table]
        )
    )


def materializer(store: Store, portal: str) -> Callable[[str, str, dict[str, Any]], str]:
    """A ``Context.materialize`` for one report: fingerprints the data once."""
    stamp = fingerprint(store, portal)
    conn_id = id(store.conn)

    def materialize(name: str, sql: str, params: dict[str, Any]) -> str:
        key = (conn_id, portal, sql, tuple(sorted((k, repr(v)) for k, v in params.items())))
        with _LOCK:
            known = _TABLES.get(key)
            if known is not None and known[0] == stamp and _exists(store, known[1]):
                return known[1]
            if known is not None:
                store.execute(f"DROP TABLE IF EXISTS {known[1]}")
            table = f"rop_{name}_{next(_COUNTER)}"
            store.execute(f"CREATE TEMP TABLE {table} AS {sql}", params)
            _TABLES[key] = (stamp, table)
            return table

    return materialize
