"""Stored client counts: per company or contact kind, manager and local day of
creation, how many clients.

The companies' and contacts' sections count, per manager, all its clients
(``total``) and those created in the period (``new``): a grouped read of every
client (at 1M deals 500k contacts, a sequential scan of ~0.3-0.6 s on
PostgreSQL per report). Kept per (manager, local creation day), both are a sum
over a few thousand rows: ``total`` over all of the manager's, ``new`` over the
period's days (a period is whole local days, so a client created in it is one
created on one of its days). A client without a creation date is a row with
``day`` NULL, counted in ``total`` only. The clients are those the sections count
(rop.store.client_days.counted), by their current manager.

It holds a copy of every client's manager and creation day, so it follows every
change of the clients (marked in ``fact_changes`` by the sync, like the client
days: rop.store.facts.refresh_facts); a marked client of a kind rebuilds that
kind's rows whole: one grouped scan of the table, cheaper than finding the
manager a changed client left (the clients table holds only its new one), and
measured at 1M deals in docs/BENCHMARKS.md. Built and versioned with the
rollups (rop.store.rollups.ROLLUP_VERSION): a reader uses it while those are ready.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rop.store.client_days import TABLES, counted

if TYPE_CHECKING:
    from rop.store.db import Store

TABLE = "manager_clients"
COLUMNS = ("kind", "manager_id", "day", "n")


def counts_sql(kind: str) -> str:
    """The rows of ``kind`` from its clients (parameters $portal, $tz)."""
    # rop.store.rollups.local_day, spelled here to keep the modules apart.
    day = "CAST(timezone($tz, CAST(x.date_create AS TIMESTAMPTZ)) AS DATE)"
    return (
        f"SELECT '{kind}' AS kind, x.assigned_by_id AS manager_id, {day} AS day, "
        f"count(*) AS n FROM {TABLES[kind]} x WHERE x.portal = $portal AND {counted(kind)} "
        "GROUP BY 2, 3"
    )


def write(store: Store, params: dict[str, Any], kind: str) -> None:
    """Replace the rows of ``kind``; inside the caller's transaction."""
    store.execute(
        f"DELETE FROM {TABLE} WHERE portal = $portal AND kind = '{kind}'",
        {"portal": params["portal"]},
    )
    cols = ", ".join(COLUMNS)
    store.execute(
        f"INSERT INTO {TABLE} (portal, {cols}) SELECT $portal, {cols} FROM ({counts_sql(kind)}) c",
        {"portal": params["portal"], "tz": params["tz"]},
    )
