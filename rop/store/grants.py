"""What Bitrix24 lets a viewer read: the "granted" visibility of app mode.

In app mode the copy is made with the installer's token, and what each
viewer may see comes from Bitrix24 itself, asked with that viewer's own
token (rop.bitrix.viewer_rights works it out). Per entity of the report
(deal, lead, company, contact, call) it is: every record (``whole``), the
records of some users in full (``users``), and single further records
(``records``: a user the viewer sees only partly, e.g. open records). The
report (rop.report.scope) reads it and combines it with its own overrides.

It lives in the store, one set of rows per (portal, viewer), so every path
that builds a report (page, JSON, exports, drill-downs, CLI) obeys the same
grant, and the record IDs join in SQL instead of travelling as parameters.
No rows for a viewer: no grant, and the report's head-of-department rule
applies (webhook mode).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rop.store.db import Store

# The report's entities (rop.metrics.sources Source.entity) -> (table, owner column).
GRANT_ENTITIES: dict[str, tuple[str, str]] = {
    "deal": ("deals", "assigned_by_id"),
    "lead": ("leads", "assigned_by_id"),
    "company": ("companies", "assigned_by_id"),
    "contact": ("contacts", "assigned_by_id"),
    "call": ("calls", "portal_user_id"),
}


@dataclass(frozen=True)
class EntityGrant:
    """One entity: all of it, or these users' records in full plus these records."""

    whole: bool = False
    users: frozenset[int] = frozenset()
    records: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Grant:
    """A viewer's granted visibility; an entity missing from ``entities`` is not visible."""

    entities: Mapping[str, EntityGrant] = field(default_factory=dict)
    computed_at: datetime | None = None

    def of(self, entity: str) -> EntityGrant:
        return self.entities.get(entity) or EntityGrant()

    @property
    def everything(self) -> bool:
        return all(self.of(e).whole for e in GRANT_ENTITIES)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def save_grant(store: Store, portal: str, viewer: int, grant: Grant) -> datetime:
    """Replace ``viewer``'s grant on ``portal``; returns the moment it was stamped with."""
    stamp = grant.computed_at or _now()
    key = [portal, viewer]
    with store.transaction():
        for table in ("viewer_grants", "viewer_grant_users", "viewer_grant_records"):
            store.execute(
                f"DELETE FROM {table} WHERE portal = ? AND viewer_id = ?",  # noqa: S608
                key,
            )
        store.upsert(
            "viewer_grants",
            [
                {"portal": portal, "viewer_id": viewer, "entity": e, "whole": g.whole,
                 "computed_at": stamp}
                for e, g in grant.entities.items()
            ],
        )  # fmt: skip
        store.upsert(
            "viewer_grant_users",
            [
                {"portal": portal, "viewer_id": viewer, "entity": e, "user_id": u}
                for e, g in grant.entities.items()
                for u in sorted(g.users)
            ],
        )
        store.upsert(
            "viewer_grant_records",
            [
                {"portal": portal, "viewer_id": viewer, "entity": e, "record_id": r}
                for e, g in grant.entities.items()
                for r in sorted(g.records)
            ],
        )
    return stamp


def grant_computed_at(store: Store, portal: str, viewer: int) -> datetime | None:
    """When ``viewer``'s grant was worked out; None: never (no grant)."""
    value = store.scalar(
        "SELECT max(computed_at) FROM viewer_grants WHERE portal = ? AND viewer_id = ?",
        [portal, viewer],
    )
    return value if isinstance(value, datetime) else None


def load_grant(store: Store, portal: str, viewer: int, *, records: bool = False) -> Grant | None:
    """``viewer``'s grant (None if there is none); record IDs only when asked (they can be many).

    Without ``records`` each entity's ``records`` is empty: the report joins
    ``viewer_grant_records`` in SQL instead.
    """
    rows = store.query(
        "SELECT entity, whole, computed_at FROM viewer_grants WHERE portal = ? AND viewer_id = ?",
        [portal, viewer],
    )
    if not rows:
        return None
    users: dict[str, set[int]] = {}
    for entity, user in store.query(
        "SELECT entity, user_id FROM viewer_grant_users WHERE portal = ? AND viewer_id = ?",
        [portal, viewer],
    ):
        users.setdefault(entity, set()).add(int(user))
    ids: dict[str, set[int]] = {}
    if records:
        for entity, rid in store.query(
            "SELECT entity, record_id FROM viewer_grant_records WHERE portal = ? AND viewer_id = ?",
            [portal, viewer],
        ):
            ids.setdefault(entity, set()).add(int(rid))
    entities = {
        entity: EntityGrant(
            bool(whole), frozenset(users.get(entity, ())), frozenset(ids.get(entity, ()))
        )
        for entity, whole, _ in rows
    }
    return Grant(entities, max(r[2] for r in rows))


def partial_owners(store: Store, portal: str, viewer: int, entity: str) -> set[int]:
    """Owners of the single records ``viewer`` was granted in ``entity``."""
    table, owner = GRANT_ENTITIES[entity]
    return {
        int(u)
        for (u,) in store.query(
            f"SELECT DISTINCT t.{owner} FROM {table} t "  # noqa: S608
            "JOIN viewer_grant_records g ON g.record_id = t.id "
            f"WHERE t.portal = ? AND g.portal = ? AND g.viewer_id = ? AND g.entity = ? "
            f"AND t.{owner} IS NOT NULL",
            [portal, portal, viewer, entity],
        )
    }


def all_owners(store: Store, portal: str, entity: str) -> set[int]:
    table, owner = GRANT_ENTITIES[entity]
    return {
        int(u)
        for (u,) in store.query(
            f"SELECT DISTINCT {owner} FROM {table} WHERE portal = ? AND {owner} IS NOT NULL",  # noqa: S608
            [portal],
        )
    }


def forget_grants(store: Store, portal: str, viewer: int | None = None) -> None:
    """Drop grants (one viewer's, or the portal's): the next open works them out again."""
    for table in ("viewer_grants", "viewer_grant_users", "viewer_grant_records"):
        if viewer is None:
            store.execute(f"DELETE FROM {table} WHERE portal = ?", [portal])  # noqa: S608
        else:
            store.execute(
                f"DELETE FROM {table} WHERE portal = ? AND viewer_id = ?",  # noqa: S608
                [portal, viewer],
            )
