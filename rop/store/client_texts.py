"""Stored client texts: per company and contact, what a list of clients shows beside
its facts: when it was last called, a number called (the greatest as text, which is
what the list always showed) and when it last bought.

A drill-down of companies or contacts (who was not called, who bought nothing)
shows these for its page's rows. Computed from the tables, they need each
client's calls and won deals, and neither table is ordered or indexed by client:
a page read all 1.94M calls (0.44 s warm at 1M deals), so the lists cached the
texts of every client instead (1.5-4.4 s for the first page after a store was
opened). Stored here, a page reads its 100 rows by key, on both engines
(docs/METRICS_DECISIONS.md "List texts per page").

The columns are exactly what the list computed from the tables
(rop.metrics.sources, the ``<kind>_text`` step it still uses while the stored
facts lag the data): the last call and the number among every call of the client
(a company's own and its contacts', through the contact's company, as in the call
facts), whatever its duration; the last sale among its deals won by their stage's
semantics as stored (``stage_semantic = 'S'``), responsible or not, at the last
move into a final stage, else MOVED_TIME. The card's own phone is not stored:
the list reads it from the client's row.

Refreshed with the client facts (rop.store.facts.refresh_facts), for the clients
the changed deals and calls pointed at before and after the change. A deal with
no responsible has no deal facts to say which client it pointed at before; so
each client keeps the deal that gave its last sale (``won_deal``): a changed or
deleted deal can lower a client's last sale only if it was that deal, and those
clients are recomputed too (:func:`links`).
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rop.store import client_facts
from rop.store.client_facts import KINDS

if TYPE_CHECKING:
    from rop.store.db import Store

TABLE = "client_texts"
COLUMNS = ("kind", "id", "last_call", "phone", "last_won", "won_deal")


def _only(column: str, ids: str | None) -> str:
    return f" AND {column} IN (SELECT id FROM {ids})" if ids else ""


def text_sql(kind: str, ids: str | None = None) -> str:
    """One row per client of ``kind`` with a call or a won deal: the list's texts.

    ``ids``: a relation of the clients to compute (None: all). The client's calls
    are found by the call facts' client columns (current when this runs: the
    refresh writes them first), each call's number read from its row.
    """
    link = KINDS[kind]
    won = f"d.portal = $portal AND d.stage_semantic = 'S' AND d.{link} IS NOT NULL"
    won += _only(f"d.{link}", ids)
    # The history of the won deals only when some clients are asked for: the
    # ids inside the aggregate, so a refresh reads only those deals' rows.
    won_ids = f" AND owner_id IN (SELECT d.id FROM deals d WHERE {won})" if ids else ""
    return f"""WITH won AS (
    SELECT d.{link} AS cid, d.id AS deal, coalesce(h.t, d.moved_time) AS t
    FROM deals d
    LEFT JOIN (SELECT owner_id, max(created_time) AS t FROM deal_stage_history
        WHERE portal = $portal AND type_id = 3{won_ids} GROUP BY owner_id) h ON h.owner_id = d.id
    WHERE {won}
), last_won AS (
    SELECT w.cid, max(w.t) AS last_won, max(w.deal) AS won_deal
    FROM won w JOIN (SELECT cid, max(t) AS t FROM won GROUP BY cid) m
        ON m.cid = w.cid AND m.t = w.t
    GROUP BY w.cid
), called AS (
    SELECT f.{link} AS cid, max(f.call_start_date) AS last_call, max(c.phone_number) AS phone
    FROM call_facts f
    JOIN (SELECT id, phone_number FROM calls WHERE portal = $portal) c ON c.id = f.id
    WHERE f.portal = $portal AND f.{link} IS NOT NULL{_only(f"f.{link}", ids)}
    GROUP BY f.{link}
)
SELECT '{kind}' AS kind, coalesce(c.cid, w.cid) AS id, c.last_call, c.phone, w.last_won,
    w.won_deal
FROM called c FULL OUTER JOIN last_won w ON w.cid = c.cid"""


def write(store: Store, params: dict[str, Any], kind: str, ids: str | None) -> None:
    """Replace the texts of ``kind``'s clients in ``ids`` (every client when None)."""
    cols = ", ".join(COLUMNS)
    delete = f"DELETE FROM {TABLE} WHERE portal = $portal AND kind = '{kind}'{_only('id', ids)}"
    portal = {"portal": params["portal"]}
    store.execute(delete, portal)
    # In id order when written whole: a page's clients are a run of ids, so on
    # DuckDB the ids' range skips the other row groups, as in the clients' own
    # tables (a page's lookup 10-14 -> ~3 ms at 1M deals).
    order = " ORDER BY id" if ids is None else ""
    insert = (
        f"INSERT INTO {TABLE} (portal, {cols}) SELECT $portal, {cols} FROM "
        f"({text_sql(kind, ids)}) t{order}"
    )
    store.execute(insert, portal)


def links(store: Store, portal: str, ids: str) -> dict[str, set[int]]:
    """The clients whose texts the deals in ``ids`` may change, per kind, beyond
    those their deal facts link them to (rop.store.client_facts.links): the
    clients the deals' rows point at now (a deal with no responsible has no deal
    facts), and those whose last sale came from one of them (where such a deal
    pointed before its change or deletion, only its stored client knows)."""
    out = client_facts.links(store, portal, "deals", ids)  # the deals' own rows
    rows = store.query(
        f"SELECT kind, id FROM {TABLE} WHERE portal = $portal "
        f"AND won_deal IN (SELECT id FROM {ids})",
        {"portal": portal},
    )
    for kind, client in rows:
        out[kind].add(int(client))
    return out


def paged_sql(kind: str, table: str, ids: str | None, name: str) -> str:
    """The list's ``<kind>_text`` step from the stored texts: the clients of ``table``
    in ``ids`` (a ``(SELECT id FROM ...)`` subquery; None: every client), each with
    its name (``name``, SQL over the client's row ``x``) and its card's phone, else
    the number last called."""
    among = f" AND id IN {ids}" if ids else ""
    return f"""SELECT x.id, {name} AS title, coalesce(x.phone, t.phone) AS phone, t.last_call,
    t.last_won
FROM (SELECT * FROM {table} WHERE portal = $portal{among}) x
LEFT JOIN (SELECT id, phone, last_call, last_won FROM {TABLE}
    WHERE portal = $portal AND kind = '{kind}'{among}) t ON t.id = x.id"""
