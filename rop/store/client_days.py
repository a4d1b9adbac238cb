"""Stored client days: per company and contact, each local day it had a deal created
or won (per pipeline) or a call.

The companies' and contacts' sections flag the clients with a deal created, a
deal won or a call in the period. Deriving the flags per report groups every
deal and call of the period (and the previous one) by client: on PostgreSQL at
1M deals most of a month's page (docs/BENCHMARKS.md). Kept per (client, local
day, pipeline), a period's flags come from a range of days: an index range on
PostgreSQL, a range of row groups on DuckDB (rows written in day order),
already one row per client and day. The flags are still taken per client
(OR-ed over its days): a per-manager count of distinct clients cannot be summed
over days. For the default pipelines and call bound the client firsts, derived
from these rows, count them with no grouping per client (rop.store.client_firsts).

Each row also holds ``manager_id``, a stored copy of its client's current
manager (ASSIGNED_BY): NULL where the client counts in no section (no
manager, the portal's own company, a client not in the store), as
rop.metrics.sources.client_where decides. The flagged clients per manager are
then one grouped read of the period's days, with no join back to every client
(at 1M deals 70k index probes into 500k contacts on PostgreSQL). A change of
the client itself (the sync marks companies and contacts in ``fact_changes``,
rop.store.facts.MARKS) rewrites its rows, so the copy follows every change.

A row holds ``created``/``won`` (a deal of pipeline ``category_id`` created or
won that day) and ``call_max``, the longest call of the day (NULL: no call
with a duration), so a lower call-duration bound is answered exactly
(``call_max >= $min_s``); calls sit on rows with ``category_id`` NULL. Derived
from the stored deal and call facts only, they are refreshed for the same
clients as the client facts (rop.store.client_facts, rop.store.facts), and
built and versioned with the rollups (rop.store.rollups.ROLLUP_VERSION): a
reader uses them while those are ready.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rop.store.client_facts import KINDS

if TYPE_CHECKING:
    from rop.store.db import Store

TABLE = "client_days"
COLUMNS = ("kind", "day", "id", "category_id", "created", "won", "call_max", "manager_id")
# Client kind -> its table.
TABLES: dict[str, str] = {"company": "companies", "contact": "contacts"}


def counted(kind: str) -> str:
    """The clients (rows ``x`` of the kind's table, one portal) a section counts
    (rop.metrics.sources.client_where reads it: one spelling for the records and
    the stored copies of the manager)."""
    mine = " AND NOT coalesce(x.is_my_company, FALSE)" if kind == "company" else ""
    return f"x.assigned_by_id IS NOT NULL{mine}"


def managers_sql(kind: str, ids: str | None = None) -> str:
    """Each client's manager as the sections count it (``id``, ``manager_id``; NULL:
    the client counts in none), for the clients in ``ids`` (all when None)."""
    return (
        f"SELECT x.id, CASE WHEN {counted(kind)} THEN x.assigned_by_id END AS manager_id "
        f"FROM {TABLES[kind]} x WHERE x.portal = $portal{_only('x.id', ids)}"
    )


def _day(expr: str) -> str:
    # rop.store.rollups.local_day, spelled here to keep the modules apart.
    return f"CAST(timezone($tz, CAST({expr} AS TIMESTAMPTZ)) AS DATE)"


def _only(column: str, ids: str | None) -> str:
    return f" AND {column} IN (SELECT id FROM {ids})" if ids else ""


def days_sql(kind: str, ids: str | None = None) -> str:
    """The rows of ``kind``'s clients in ``ids`` (every client when None), from the
    stored deal and call facts (parameters $portal, $tz)."""
    link = KINDS[kind]
    only = _only(link, ids)
    null_int = "CAST(NULL AS INTEGER)"
    events = (
        f"SELECT {link} AS id, {_day('date_create')} AS day, category_id, TRUE AS created, "
        f"FALSE AS won, {null_int} AS dur FROM deal_facts WHERE portal = $portal "
        f"AND {link} IS NOT NULL AND date_create IS NOT NULL{only}\n"
        f"UNION ALL SELECT {link}, {_day('close_time')}, category_id, FALSE, TRUE, {null_int} "
        f"FROM deal_facts WHERE portal = $portal AND {link} IS NOT NULL AND semantic = 'S' "
        f"AND close_time IS NOT NULL{only}\n"
        # A call without a duration is in no figure (every bound is a duration).
        f"UNION ALL SELECT {link}, {_day('call_start_date')}, CAST(NULL AS BIGINT), FALSE, FALSE, "
        f"call_duration FROM call_facts WHERE portal = $portal AND {link} IS NOT NULL "
        f"AND call_start_date IS NOT NULL AND call_duration IS NOT NULL{only}"
    )
    days = (
        f"SELECT day, id, category_id, bool_or(created) AS created, "
        f"bool_or(won) AS won, max(dur) AS call_max\nFROM (\n{events}\n) e\n"
        "GROUP BY day, id, category_id"
    )
    return (
        f"SELECT '{kind}' AS kind, g.day, g.id, g.category_id, g.created, g.won, g.call_max, "
        f"m.manager_id\nFROM ({days}) g\nLEFT JOIN ({managers_sql(kind, ids)}) m ON m.id = g.id"
    )


def write(store: Store, params: dict[str, Any], kind: str, ids: str | None) -> None:
    """Replace the rows of ``kind``'s clients in ``ids`` (every client when None);
    inside the caller's transaction."""
    bound = {"portal": params["portal"], "tz": params["tz"]}
    delete = f"DELETE FROM {TABLE} WHERE portal = $portal AND kind = '{kind}'{_only('id', ids)}"
    store.execute(delete, {"portal": params["portal"]})
    cols = ", ".join(COLUMNS)
    # In day order: a period is then a range of DuckDB's row groups.
    order = " ORDER BY day" if ids is None else ""
    store.execute(
        f"INSERT INTO {TABLE} (portal, {cols}) SELECT $portal, {cols} "
        f"FROM ({days_sql(kind, ids)}) d{order}",
        bound,
    )
