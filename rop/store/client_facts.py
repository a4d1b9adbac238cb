"""Stored client facts: per company and contact, when its deals were created and won
and when it was called (the first, the last and all of them in order).

The companies' and contacts' sections flag each client for a period: a deal
created in it (``with_deals``), a deal won in it (``with_sales``), a call in it
(``called``). Deriving the flags per report means grouping every deal and call of
the period by client (1.9M rows over a year at 1M deals: most of a year-to-date
report). Kept per client, a flag is decided like the deals' "moved"
(rop.metrics.sources.moved): a client whose events all lie before or after the
period has none in it, one whose first or last event lies in it has one, and
only a client with events both before and after the period needs its list.

The facts are what the default filter reads (every pipeline, calls of any
duration, no per-record grant of deals or calls); a report with another filter
computes the flags from the deal and call facts as before (rop.metrics.sources).
They are derived from the stored deal and call facts (rop.store.facts) and
refreshed with them in the same transaction, for the clients the changed deals
and calls pointed at before or after the change (a deal moved from one company
to another changes both); a whole rebuild of the deal or call facts rebuilds
them whole.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rop.store.dialect import DUCKDB, Dialect

if TYPE_CHECKING:
    from rop.store.db import Store

TABLE = "client_facts"
# Client kind -> the deal and call facts' column linking a record to it.
KINDS: dict[str, str] = {"company": "company_id", "contact": "contact_id"}
# Each event: (its name, the deal facts' expression, the call facts' expression).
EVENTS = (
    ("created", "date_create", None),
    ("won", "CASE WHEN semantic = 'S' THEN close_time END", None),
    # min_s = 0 (the default filter): a call without a duration is in no figure.
    ("called", None, "CASE WHEN call_duration >= 0 THEN call_start_date END"),
)
COLUMNS = (
    "kind", "id",
    *(f"{name}{part}" for name, *_ in EVENTS for part in ("_first", "_last", "")),
)  # fmt: skip

# The stored deal and call facts of the portal, as the relations the SQL reads.
STORED_DEALS = (
    "(SELECT company_id, contact_id, date_create, semantic, close_time FROM deal_facts "
    "WHERE portal = $portal)"
)
STORED_CALLS = (
    "(SELECT company_id, contact_id, call_duration, call_start_date FROM call_facts "
    "WHERE portal = $portal)"
)


def _only(column: str, ids: str | None) -> str:
    return f" AND {column} IN (SELECT id FROM {ids})" if ids else ""


def client_sql(
    kind: str, deals: str, calls: str, dialect: Dialect = DUCKDB, ids: str | None = None
) -> str:
    """One row per client of ``kind`` with a deal or a call: each event's first, last and
    all moments in order. ``deals``/``calls``: relations with the deal and call facts'
    columns; ``ids``: a relation of the clients to compute (None: all)."""
    link = KINDS[kind]
    null = "CAST(NULL AS TIMESTAMP)"
    deal_cols = ", ".join(d or null for _, d, _ in EVENTS)
    call_cols = ", ".join(c or null for _, _, c in EVENTS)
    names = ", ".join(name for name, *_ in EVENTS)
    aggs = ", ".join(
        f"min({n}) AS {n}_first, max({n}) AS {n}_last, "
        f"{dialect.list_agg(f'{n} ORDER BY {n}')} FILTER (WHERE {n} IS NOT NULL) AS {n}"
        for n, *_ in EVENTS
    )
    return (
        f"SELECT '{kind}' AS kind, id, {aggs} FROM (\n"
        f"SELECT {link} AS id, {deal_cols} FROM {deals} d "
        f"WHERE {link} IS NOT NULL{_only(link, ids)}\n"
        f"UNION ALL SELECT {link}, {call_cols} FROM {calls} c "
        f"WHERE {link} IS NOT NULL{_only(link, ids)}\n"
        f") e ({'id'}, {names}) GROUP BY id"
    )


def stored_sql(kind: str) -> str:
    """What a report reads: the stored facts of ``kind``'s clients (one portal)."""
    cols = ", ".join(c for c in COLUMNS if c != "kind")
    return f"SELECT {cols} FROM {TABLE} WHERE portal = $portal AND kind = '{kind}'"


def step(kind: str) -> str:
    """The metrics' step name of ``kind``'s stored client facts."""
    return f"{kind}_cf"


def stored_steps() -> dict[str, str]:
    return {step(kind): stored_sql(kind) for kind in KINDS}


def write(store: Store, params: dict[str, Any], kind: str, ids: str | None) -> None:
    """Replace the facts of ``kind``'s clients in ``ids`` (every client when None),
    from the stored deal and call facts."""
    cols = ", ".join(COLUMNS)
    delete = f"DELETE FROM {TABLE} WHERE portal = $portal AND kind = '{kind}'{_only('id', ids)}"
    store.execute(delete, {"portal": params["portal"]})
    insert = (
        f"INSERT INTO {TABLE} (portal, {cols}) SELECT $portal, {cols} FROM "
        f"({client_sql(kind, STORED_DEALS, STORED_CALLS, store.dialect, ids)}) f"
    )
    store.execute(insert, {"portal": params["portal"]})


def links(store: Store, portal: str, table: str, ids: str) -> dict[str, set[int]]:
    """The clients the rows of ``table`` (deal_facts, call_facts: taken before and
    after a refresh of them; or deals, the records themselves) link the records in
    ``ids`` to, per kind."""
    out: dict[str, set[int]] = {kind: set() for kind in KINDS}
    rows = store.query(
        f"SELECT company_id, contact_id FROM {table} WHERE portal = $portal "
        f"AND id IN (SELECT id FROM {ids}) AND (company_id IS NOT NULL OR contact_id IS NOT NULL)",
        {"portal": portal},
    )
    for company, contact in rows:
        if company is not None:
            out["company"].add(int(company))
        if contact is not None:
            out["contact"].add(int(contact))
    return out
