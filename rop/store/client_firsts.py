"""Stored client firsts: per company and contact, each local day it had a deal
created, a deal won or a call, with the previous day it had each.

The companies' and contacts' sections count, per manager, the distinct clients
flagged in the period. From the client days (rop.store.client_days) that needs
every row of the period grouped per client first (a client has many days): at
1M deals on PostgreSQL ~0.4 s of the contacts' statement for a month and its
previous one. Holding, on each of a client's days, the previous day it had the
same flag (``created_prev``, ``won_prev``, ``called_prev``; NULL: none before),
the clients flagged in [a, b] are exactly the rows with ``day`` in [a, b] whose
previous day is NULL or before a: each client counted once, on its first day
in the period. The count per manager is then a plain count over a range of days
(an index range on PostgreSQL, row groups in day order on DuckDB), with no
grouping per client; the previous period is the same count on its own bounds.

The rows answer the default filter only: a deal of any pipeline, a call of any
duration (``called``: the day's longest call is at least 0 s, what
``call_max >= $min_s`` gives with ``$min_s`` 0). A pipeline subset or a
duration bound reads the client days as before (rop.metrics.sources
``client_flag_steps``). Each row holds its client's manager as the client days
do (``manager_id``, NULL: the client counts in no section).

Derived from the client days only, for the same clients and in the same
transaction (rop.store.facts.refresh_facts rewrites a client's days, then its
firsts); built and versioned with the rollups (rop.store.rollups.ROLLUP_VERSION):
a reader uses them while those are ready.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rop.store import client_days

if TYPE_CHECKING:
    from rop.store.db import Store

TABLE = "client_firsts"
FLAGS = ("created", "won", "called")
COLUMNS = ("kind", "day", "id", "manager_id", *FLAGS, *(f"{f}_prev" for f in FLAGS))


def _only(column: str, ids: str | None) -> str:
    return f" AND {column} IN (SELECT id FROM {ids})" if ids else ""


def firsts_sql(kind: str, ids: str | None = None) -> str:
    """The rows of ``kind``'s clients in ``ids`` (every client when None), from the
    stored client days (parameter $portal)."""
    # One row per client and day: the client days are per pipeline too. Every row
    # of a client holds the same manager (its days are rewritten together).
    days = (
        "SELECT d.day, d.id, max(d.manager_id) AS manager_id, bool_or(d.created) AS created, "
        "bool_or(d.won) AS won, coalesce(max(d.call_max) >= 0, FALSE) AS called "
        f"FROM {client_days.TABLE} d WHERE d.portal = $portal AND d.kind = '{kind}'"
        f"{_only('d.id', ids)} GROUP BY d.day, d.id"
    )
    # The latest earlier day with the flag: the days are distinct per client, so
    # the rows strictly before this one are the earlier days.
    earlier = (
        "OVER (PARTITION BY g.id ORDER BY g.day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    )
    prevs = ", ".join(f"max(CASE WHEN g.{f} THEN g.day END) {earlier} AS {f}_prev" for f in FLAGS)
    return (
        f"SELECT '{kind}' AS kind, g.day, g.id, g.manager_id, g.created, g.won, g.called, "
        f"{prevs}\nFROM ({days}) g"
    )


def write(store: Store, params: dict[str, Any], kind: str, ids: str | None) -> None:
    """Replace the rows of ``kind``'s clients in ``ids`` (every client when None),
    after their client days; inside the caller's transaction."""
    bound = {"portal": params["portal"]}
    if ids is None and store.dialect.name == "postgres" and _any_stored(store, bound, kind):
        _rewrite_changed(store, bound, kind)
        return
    store.execute(
        f"DELETE FROM {TABLE} WHERE portal = $portal AND kind = '{kind}'{_only('id', ids)}", bound
    )
    cols = ", ".join(COLUMNS)
    # In day order: a period is then a range of DuckDB's row groups. A day with
    # no flag of these (only calls of a negative duration) counts for none.
    order = " ORDER BY day" if ids is None else ""
    store.execute(
        f"INSERT INTO {TABLE} (portal, {cols}) SELECT $portal, {cols} "
        f"FROM ({firsts_sql(kind, ids)}) f WHERE created OR won OR called{order}",
        bound,
    )


def _any_stored(store: Store, bound: dict[str, Any], kind: str) -> bool:
    """Whether ``kind`` has rows stored: with none (a first build) a plain insert
    is cheaper than the comparison (34.6 s against 41.0 s for 2.2M contacts)."""
    sql = f"SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE portal = $portal AND kind = '{kind}')"
    return bool(store.scalar(sql, bound))


def _rewrite_changed(store: Store, bound: dict[str, Any], kind: str) -> None:
    """PostgreSQL's whole rebuild of ``kind``'s rows: the rows computed into a
    temporary table, then only those that differ deleted and inserted.

    Deleting and inserting every row (2.2M contacts at 1M deals) cost ~52 s, ~31 s
    of it the two indexes' maintenance (dropping and re-creating them cost more,
    40 s); a whole rebuild (``rop migrate`` after a rollup version change, a sync
    that rebuilds a fact table) mostly finds the rows as they were: ~21 s with
    none changed (docs/BENCHMARKS.md, PostgreSQL thirteenth run). The stored rows
    are the same set either way."""
    new = "_client_firsts_new"
    store.execute(f"DROP TABLE IF EXISTS {new}")
    store.execute(
        f"CREATE TEMPORARY TABLE {new} AS SELECT * FROM ({firsts_sql(kind)}) f "
        "WHERE created OR won OR called",
        bound,
    )
    store.execute(f"ANALYZE {new}")
    same = " AND ".join(f"n.{c} IS NOT DISTINCT FROM c.{c}" for c in COLUMNS)
    # A row is kept only when a computed row equals it in every column; after
    # that every stored (day, id) equals its computed row, so the insert adds
    # the computed rows whose (day, id) is no longer there.
    store.execute(
        f"DELETE FROM {TABLE} c WHERE c.portal = $portal AND c.kind = '{kind}' "
        f"AND NOT EXISTS (SELECT 1 FROM {new} n WHERE n.id = c.id AND n.day = c.day AND {same})",
        bound,
    )
    cols = ", ".join(COLUMNS)
    store.execute(
        f"INSERT INTO {TABLE} (portal, {cols}) SELECT $portal, {cols} FROM {new} n "
        f"WHERE NOT EXISTS (SELECT 1 FROM {TABLE} c WHERE c.portal = $portal "
        f"AND c.kind = '{kind}' AND c.id = n.id AND c.day = n.day) ORDER BY n.day",
        bound,
    )
    store.execute(f"DROP TABLE {new}")


def counts_sql(kind: str, periods: dict[str, str]) -> str:
    """Per manager, the clients of ``kind`` flagged in each period: ``periods`` maps a
    column suffix ("" or "_q") to its bounds' parameter prefix ("d": $d_from..$d_to),
    giving ``with_deals{q}``, ``with_sales{q}``, ``called{q}`` (parameter $portal)."""
    names = {"created": "with_deals", "won": "with_sales", "called": "called"}
    counts = []
    for q, b in periods.items():
        low, high = f"${b}_from", f"${b}_to"
        days = f"f.day >= {low} AND f.day <= {high}"
        for flag, name in names.items():
            # Its first day of the flag in the period: none before it within it.
            first = f"(f.{flag}_prev IS NULL OR f.{flag}_prev < {low})"
            counts.append(f"count(*) FILTER (WHERE f.{flag} AND {days} AND {first}) AS {name}{q}")
    ranges = " OR ".join(f"(f.day >= ${b}_from AND f.day <= ${b}_to)" for b in periods.values())
    return (
        f"SELECT f.manager_id, {', '.join(counts)} FROM {TABLE} f "
        f"WHERE f.portal = $portal AND f.kind = '{kind}' AND f.manager_id IS NOT NULL "
        f"AND ({ranges}) GROUP BY f.manager_id"
    )
