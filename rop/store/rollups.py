"""Rollups of the stored facts: counts and sums per manager and local day.

Most figures of the deal, lead and call sections are counts and sums over
records picked by a day (created, closed, started in the period) and by the
record's state (won, lost, in progress). On PostgreSQL's row store the
report read every stored fact for each of them (a million deal facts, two
million call facts at 1M deals: 0.2-2.5 s a statement); these tables hold
the same counts and sums grouped by what those figures test, so a month
reads a few thousand rows (rop.metrics.rollups compiles the figures over them):

- ``record_rollups``: deals and leads (``entity``), one row per
  (``kind``, local ``day``, manager, pipeline, semantic) with the number of
  records ``n``, their base-currency ``amount`` and, for closed records, the
  sum and count of their days from creation (``days_s``, ``days_n``).
  ``kind`` ``new``: by the day created; ``closed``: won or lost, by the day
  closed (the facts' close time); ``open``: in progress now, by the planned
  close date (CLOSEDATE, deals; none for leads).
- ``call_rollups``: calls with a responsible and a duration, one row per
  (local ``day`` started, manager, call type, connected or not) with their
  number and total seconds.

A day is the portal's local day of a UTC moment (its zone ``$tz``), the same
days a period's bounds are made of (rop.report.periods.utc_bounds), so a
period of whole days reads exactly its records. A change of the zone
rebuilds every fact (rop.store.facts.inputs_digest), these too.

They follow the facts (rop.store.facts.refresh_facts): the (kind, day) pairs a
refreshed record leaves or enters are recomputed from the stored facts, whole
groups at a time (no running sums: the result is what a rebuild gives);
``rollup_state`` records the version built and the ``facts_state`` it was
built with, so a reader uses them only while they match (:func:`rollups_ready`).
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from rop.store import client_days, client_firsts, manager_clients, stage_entries
from rop.store.client_facts import KINDS as CLIENT_KINDS
from rop.store.dialect import days_between

if TYPE_CHECKING:
    from rop.store.db import Store

# Bump when what a rollup holds changes: the next refresh rebuilds them.
# 2: the client days (rop.store.client_days) are built and versioned with them.
# 3: the client days hold their client's manager; the client counts per manager
# (rop.store.manager_clients) are built with them.
# 4: the client firsts (rop.store.client_firsts) are built with them.
# 5: the stage entries (rop.store.stage_entries) are built with them.
ROLLUP_VERSION = 5


def local_day(expr: str) -> str:
    """The portal's local day (``$tz``) of a UTC TIMESTAMP expression.

    The session's zone is UTC on both engines, so the cast to TIMESTAMPTZ
    reads the stored moment as UTC; ``timezone(zone, timestamptz)`` gives
    the local wall time.
    """
    return f"CAST(timezone($tz, CAST({expr} AS TIMESTAMPTZ)) AS DATE)"


@dataclass(frozen=True)
class Kind:
    """One kind of rollup row: its day and which records it holds."""

    name: str
    day: str  # SQL over the fact table's row
    where: str  # which records
    # The column the day comes from, and whether it is a DATE (else a UTC
    # TIMESTAMP): a refresh bounds it by the touched days, so PostgreSQL reads
    # those days' records through its index instead of the portal's every fact.
    column: str | None = None
    date: bool = False


_NO_DAYS = "CAST(NULL AS DOUBLE PRECISION)"
_CLOSED_DAYS = days_between("close_time", "date_create")


@dataclass(frozen=True)
class Entity:
    """Deals or leads: the fact table the rollups of ``name`` are computed from."""

    name: str
    facts: str
    category: str  # the pipeline column (none for leads)
    amount: str
    kinds: tuple[Kind, ...]


_NEW = Kind("new", local_day("date_create"), "date_create IS NOT NULL", "date_create")
_CLOSED = Kind("closed", local_day("close_time"), "close_time IS NOT NULL", "close_time")
DEAL = Entity(
    "deal",
    "deal_facts",
    "category_id",
    "amount",
    (_NEW, _CLOSED, Kind("open", "closedate", "semantic = 'P'", "closedate", date=True)),
)
LEAD = Entity(
    "lead",
    "lead_facts",
    "CAST(NULL AS BIGINT)",
    "CAST(NULL AS DOUBLE PRECISION)",
    (_NEW, _CLOSED, Kind("open", "CAST(NULL AS DATE)", "semantic = 'P'")),
)
ENTITIES: dict[str, Entity] = {"deal": DEAL, "lead": LEAD}
# Which calls the call rollups hold: every call figure asks for a duration of
# at least its lower bound, which is 0 by default (rop.metrics.rollups).
_CALLS_WHERE = (
    "manager_id IS NOT NULL AND call_start_date IS NOT NULL "
    "AND call_duration IS NOT NULL AND call_duration >= 0"
)
_CALL_DAY = local_day("call_start_date")
_CALL_OK = "coalesce(call_failed_code = '200', FALSE)"

RECORD_COLUMNS = (
    "entity", "kind", "day", "manager_id", "category_id", "semantic", "n", "amount", "days_s",
    "days_n",
)  # fmt: skip
CALL_COLUMNS = ("day", "manager_id", "call_type", "ok", "n", "secs")

Touched = dict[str, set[tuple[str, Any]]]  # entity -> (kind, day) pairs; calls: ("call", day)


def _only(ids: str | None) -> str:
    return f" AND id IN (SELECT id FROM {ids})" if ids else ""


def _days_in(day: str, name: str, null: bool) -> str:
    """``day`` is one of the bound days ``$r_<name>`` (or NULL, when ``null``)."""
    test = f"{day} IN (SELECT unnest(CAST($r_{name} AS DATE[])))"
    return f"({day} IS NULL OR {test})" if null else test


def _span(column: str | None, name: str, null: bool) -> str:
    """`` AND column`` within ``$lo_<name>``..``$hi_<name>``: a range an index
    answers, around the touched days (see :func:`_bounds`)."""
    if column is None or null:
        return ""
    return f" AND {column} >= $lo_{name} AND {column} < $hi_{name}"


def _bounds(name: str, days: list[Any], date: bool) -> dict[str, Any]:
    """The range of ``_span``: the touched days' own for a DATE column; for a UTC
    moment a day more on each side (a local day lies within 14 hours of UTC's)."""
    if not days:
        return {}
    low, high = min(days), max(days)
    if date:
        return {f"lo_{name}": low, f"hi_{name}": high + timedelta(days=1)}
    return {
        f"lo_{name}": datetime.combine(low - timedelta(days=1), time()),
        f"hi_{name}": datetime.combine(high + timedelta(days=2), time()),
    }


def _record_sql(entity: Entity, kind: Kind, touched: bool, null: bool = False) -> str:
    """The rollup rows of one kind, computed from the stored facts; ``touched``:
    only the days bound as ``$r_<kind>`` (and the NULL day when ``null``)."""
    days = _CLOSED_DAYS if kind is _CLOSED else _NO_DAYS
    where = f"portal = $portal AND {kind.where}"
    if touched:
        where += f" AND {_days_in(kind.day, kind.name, null)}"
        where += _span(kind.column, kind.name, null)
    return (
        f"SELECT '{entity.name}' AS entity, '{kind.name}' AS kind, {kind.day} AS day, "
        f"manager_id, {entity.category} AS category_id, semantic, count(*) AS n, "
        f"sum({entity.amount}) AS amount, sum({days}) AS days_s, count({days}) AS days_n "
        f"FROM {entity.facts} WHERE {where} GROUP BY 3, 4, 5, 6"
    )


def _call_sql(touched: bool) -> str:
    where = f"portal = $portal AND {_CALLS_WHERE}"
    if touched:
        where += f" AND {_days_in(_CALL_DAY, 'call', False)}"
        where += _span("call_start_date", "call", False)
    return (
        f"SELECT {_CALL_DAY} AS day, manager_id, call_type, {_CALL_OK} AS ok, count(*) AS n, "
        f"sum(call_duration) AS secs FROM call_facts WHERE {where} GROUP BY 1, 2, 3, 4"
    )


def _run(store: Store, sql: str, params: dict[str, Any]) -> list[tuple]:
    """Run ``sql`` with the parameters it names (DuckDB refuses extra ones)."""
    return store.query(sql, {k: v for k, v in params.items() if f"${k}" in sql})


def touched(store: Store, entity: str, params: dict[str, Any], ids: str) -> set[tuple[str, Any]]:
    """The (kind, day) pairs the stored facts of the records in ``ids`` fall in now.

    Taken before and after the records' facts are rewritten: a record that
    moves from one day (or kind) to another changes both groups.
    """
    bound = {"portal": params["portal"], "tz": params["tz"]}
    if entity == "call":
        rows = _run(
            store,
            f"SELECT DISTINCT {_CALL_DAY} FROM call_facts WHERE portal = $portal "
            f"AND {_CALLS_WHERE}{_only(ids)}",
            bound,
        )
        return {("call", r[0]) for r in rows}
    e = ENTITIES[entity]
    parts = [
        f"SELECT '{k.name}' AS kind, {k.day} AS day FROM {e.facts} "
        f"WHERE portal = $portal AND {k.where}{_only(ids)}"
        for k in e.kinds
    ]
    rows = _run(
        store, "SELECT DISTINCT kind, day FROM (" + " UNION ALL ".join(parts) + ") t", bound
    )
    return {(r[0], r[1]) for r in rows}


def rebuild_rollups(store: Store, params: dict[str, Any], entries: bool = True) -> None:
    """All of the portal's rollups (and client days) from its stored facts, inside
    the caller's transaction; the stage entries too unless ``entries`` is false
    (DuckDB rebuilds them in slices before: rop.store.stage_entries.rebuild)."""
    bound = {"portal": params["portal"], "tz": params["tz"]}
    _run(store, "DELETE FROM record_rollups WHERE portal = $portal", {"portal": params["portal"]})
    _run(store, "DELETE FROM call_rollups WHERE portal = $portal", {"portal": params["portal"]})
    cols = ", ".join(RECORD_COLUMNS)
    for entity in ENTITIES.values():
        for kind in entity.kinds:
            # In day order: a period is then a range of DuckDB's row groups.
            _run(
                store,
                f"INSERT INTO record_rollups (portal, {cols}) SELECT $portal, {cols} "
                f"FROM ({_record_sql(entity, kind, False)}) r ORDER BY day",
                bound,
            )
    cols = ", ".join(CALL_COLUMNS)
    _run(
        store,
        f"INSERT INTO call_rollups (portal, {cols}) SELECT $portal, {cols} "
        f"FROM ({_call_sql(False)}) r ORDER BY day",
        bound,
    )
    for client in CLIENT_KINDS:
        client_days.write(store, bound, client, None)
        client_firsts.write(store, bound, client, None)
        manager_clients.write(store, bound, client)
    if entries:
        stage_entries.write(store, bound, None)


def refresh_rollups(store: Store, params: dict[str, Any], days: Touched) -> int:
    """Recompute the rollup groups of the touched (kind, day) pairs; returns how many pairs.

    A group is recomputed whole from the stored facts, so the result is the
    rebuild's; a pair whose day is NULL (an open deal without a planned date,
    every open lead) is a group too.
    """
    bound = {"portal": params["portal"], "tz": params["tz"]}
    count = 0
    cols = ", ".join(RECORD_COLUMNS)
    for entity in ENTITIES.values():
        pairs = days.get(entity.name, set())
        for kind in entity.kinds:
            chosen = sorted({d for k, d in pairs if k == kind.name}, key=repr)
            if not chosen:
                continue
            count += len(chosen)
            known = [d for d in chosen if d is not None]
            null = len(known) < len(chosen)
            _run(
                store,
                f"DELETE FROM record_rollups WHERE portal = $portal AND entity = '{entity.name}' "
                f"AND kind = '{kind.name}' AND {_days_in('day', kind.name, null)}",
                {"portal": params["portal"], f"r_{kind.name}": known},
            )
            sql = _record_sql(entity, kind, True, null)
            _run(
                store,
                f"INSERT INTO record_rollups (portal, {cols}) SELECT $portal, {cols} FROM ({sql}) r",
                {**bound, f"r_{kind.name}": known, **_bounds(kind.name, known, kind.date)},
            )
    call_days = sorted({d for _, d in days.get("call", set()) if d is not None})
    if call_days:
        count += len(call_days)
        _run(
            store,
            f"DELETE FROM call_rollups WHERE portal = $portal AND {_days_in('day', 'call', False)}",
            {"portal": params["portal"], "r_call": call_days},
        )
        cols = ", ".join(CALL_COLUMNS)
        _run(
            store,
            f"INSERT INTO call_rollups (portal, {cols}) SELECT $portal, {cols} "
            f"FROM ({_call_sql(True)}) r",
            {**bound, "r_call": call_days, **_bounds("call", call_days, False)},
        )
    return count


def stamp_rollups(store: Store, portal: str, refreshed_at: Any) -> None:
    """Record that the rollups match the facts' state stamped ``refreshed_at``
    (in the refresh's transaction, with facts_state)."""
    store.execute("DELETE FROM rollup_state WHERE portal = ?", [portal])
    store.execute(
        "INSERT INTO rollup_state (portal, version, refreshed_at) VALUES (?, ?, ?)",
        [portal, ROLLUP_VERSION, refreshed_at],
    )


def rollups_follow(store: Store, portal: str) -> bool:
    """The rollups were built by this version with the facts' current state: a
    refresh may then recompute only the changed days. Not after an older rop
    refreshed the facts (it leaves rollup_state behind facts_state)."""
    found = store.scalar(
        "SELECT count(*) FROM rollup_state r JOIN facts_state f ON f.portal = r.portal "
        "AND f.refreshed_at = r.refreshed_at WHERE r.portal = ? AND r.version = ?",
        [portal, ROLLUP_VERSION],
    )
    return bool(found)


def rollups_ready(store: Store, portal: str) -> bool:
    """The portal's rollups were built with its facts' current state by this version
    (the caller checks the facts themselves: rop.store.facts.facts_ready).

    Remembered until the next write where the store allows it (rop.store.memo)."""
    return store.remember(("rollups_ready", portal), lambda: rollups_follow(store, portal))
