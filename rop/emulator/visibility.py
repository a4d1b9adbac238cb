"""Whose records a calling user may read: Bitrix24's CRM role levels per entity.

Bitrix24 applies the caller's CRM role; no REST method exposes roles, so the
snapshot may carry them in ``crm.permissions.json`` (CONTRACT.md §1):
``{"default": {ENTITY: LEVEL}, "users": {"ID": {ENTITY: LEVEL}}}`` with ENTITY
``deal lead company contact call`` and LEVEL

- ``none``: nothing;
- ``own``: records the user is responsible for;
- ``department``: own + those of the users of the user's departments;
- ``subdepartments``: + the users of every department below them;
- ``open``: what ``subdepartments`` gives + every record with ``OPENED`` = ``Y``;
- ``all``: everything.

A user's level for an entity: their own entry, else ``default``'s, else the
rule of METRICS.md "Who may see what" (department heads ``subdepartments``,
everyone else ``own``). Portal admins see everything. Stage history follows its
deal or lead; an activity follows its owner record (``OWNER_TYPE_ID``/``OWNER_ID``:
CRM roles have no entry for activities, Bitrix24 shows one to whoever may read
the record it belongs to; an owner of another type is hidden from a restricted
user); calls have no ``OPENED``, so ``open`` is ``subdepartments`` for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rop.emulator.data import Portal, Table
from rop.emulator.roles import ENTITIES

# kind -> the field naming the record's owner
OWNER_FIELD = {
    "deal": "ASSIGNED_BY_ID",
    "lead": "ASSIGNED_BY_ID",
    "company": "ASSIGNED_BY_ID",
    "contact": "ASSIGNED_BY_ID",
    "call": "PORTAL_USER_ID",
}
# kind -> the entity whose level applies
ENTITY_OF = {
    "deal": "deal",
    "lead": "lead",
    "company": "company",
    "contact": "contact",
    "call": "call",
}
# History rows follow the visibility of the record they belong to.
HISTORY_OWNER = {"deal_history": "deal", "lead_history": "lead"}
# An activity's OWNER_TYPE_ID -> the kind of the record it belongs to.
ACTIVITY_OWNER = {1: "lead", 2: "deal", 3: "contact", 4: "company"}


@dataclass(frozen=True)
class Rule:
    """Which records of one entity a user reads: owners in ``users`` (None: any owner),
    plus, with ``opened``, every record marked ``OPENED`` = ``Y``."""

    users: frozenset[int] | None
    opened: bool = False

    def allows(self, record: dict[str, Any], owner_field: str) -> bool:
        if self.users is None:
            return True
        if _int(record.get(owner_field)) in self.users:
            return True
        return self.opened and str(record.get("OPENED") or "").upper() == "Y"


@dataclass(frozen=True)
class Access:
    """One user's rules per entity; an entity absent from ``rules`` is unrestricted."""

    rules: dict[str, Rule]

    def rule(self, kind: str) -> Rule | None:
        entity = ENTITY_OF.get(HISTORY_OWNER.get(kind, kind))
        return self.rules.get(entity) if entity else None


Scope = Access | None  # None: no restriction at all (admins)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def departments_of(user: dict[str, Any]) -> list[int]:
    raw = user.get("UF_DEPARTMENT") or []
    if not isinstance(raw, list):
        raw = [raw]
    return [d for d in (_int(x) for x in raw) if d is not None]


class ScopeCache:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self._cache: dict[int, Scope] = {}
        self._version = -1

    def scope(self, user_id: int) -> Scope:
        portal = self.portal
        if self._version != portal.structure_version:
            self._cache.clear()
            self._version = portal.structure_version
        if user_id not in self._cache:
            self._cache[user_id] = self._compute(user_id)
        return self._cache[user_id]

    def _compute(self, user_id: int) -> Scope:
        portal = self.portal
        if user_id in portal.admins:
            return None
        departments = list(portal.tables["department"].rows.values())
        children: dict[int, list[int]] = {}
        for dep in departments:
            parent = _int(dep.get("PARENT"))
            if parent is not None:
                children.setdefault(parent, []).append(_int(dep.get("ID")) or 0)
        headed = {_int(d.get("ID")) or 0 for d in departments if _int(d.get("UF_HEAD")) == user_id}
        user = portal.tables["user"].rows.get(user_id) or {}
        own_departments = set(departments_of(user)) | headed
        below: set[int] = set()
        stack = list(own_departments)
        while stack:
            dep_id = stack.pop()
            if dep_id in below:
                continue
            below.add(dep_id)
            stack.extend(children.get(dep_id, ()))
        members: dict[int, set[int]] = {}
        for person in portal.tables["user"].rows.values():
            for dep_id in departments_of(person):
                members.setdefault(dep_id, set()).add(_int(person.get("ID")) or 0)

        def users_of(deps: set[int]) -> frozenset[int]:
            found = {user_id}
            for dep_id in deps:
                found |= members.get(dep_id, set())
            return frozenset(found)

        permissions = portal.permissions
        mine = permissions["users"].get(user_id, {})
        default = permissions["default"]
        # METRICS.md's rule when nothing says otherwise.
        fallback = "subdepartments" if headed else "own"
        rules: dict[str, Rule] = {}
        for entity in ENTITIES:
            level = mine.get(entity) or default.get(entity) or fallback
            if level == "all":
                continue
            if level == "none":
                rules[entity] = Rule(frozenset())
            elif level == "own":
                rules[entity] = Rule(frozenset({user_id}))
            elif level == "department":
                rules[entity] = Rule(users_of(own_departments))
            else:  # subdepartments, open
                rules[entity] = Rule(users_of(below), opened=level == "open")
        return Access(rules) if rules else None


def _activity_restricted(scope: Scope) -> bool:
    return scope is not None and any(scope.rule(k) is not None for k in ACTIVITY_OWNER.values())


def visible(portal: Portal, kind: str, record: dict[str, Any], scope: Scope) -> bool:
    if scope is None:
        return True
    if kind == "activity":
        if not _activity_restricted(scope):
            return True
        owner_kind = ACTIVITY_OWNER.get(_int(record.get("OWNER_TYPE_ID")) or 0)
        if owner_kind is None:
            return False
        if scope.rule(owner_kind) is None:
            return True
        owner = portal.tables[owner_kind].rows.get(_int(record.get("OWNER_ID")) or 0)
        return owner is not None and visible(portal, owner_kind, owner, scope)
    owner_kind = HISTORY_OWNER.get(kind)
    if owner_kind is not None:
        if scope.rule(owner_kind) is None:
            return True
        owner = portal.tables[owner_kind].rows.get(_int(record.get("OWNER_ID")) or 0)
        return owner is not None and visible(portal, owner_kind, owner, scope)
    field = OWNER_FIELD.get(kind)
    rule = scope.rule(kind)
    if field is None or rule is None:
        return True
    return rule.allows(record, field)


def restricts(kind: str, scope: Scope) -> bool:
    """Whether listing ``kind`` needs a per-row check at all (keeps the fast path)."""
    if kind == "activity":
        return _activity_restricted(scope)
    return (
        scope is not None and kind in OWNER_FIELD | HISTORY_OWNER and scope.rule(kind) is not None
    )


def scope_sql(portal: Portal | None, table: Table, scope: Scope) -> str | None:
    """The scope as a condition on ``table``'s indexed columns (tables.py), or None
    when they cannot say it exactly (then rows are checked one by one)."""
    if scope is None:
        return "1"
    if table.kind == "activity":
        return _activity_sql(portal, table, scope)
    owner_kind = HISTORY_OWNER.get(table.kind)
    if owner_kind is not None:
        if scope.rule(owner_kind) is None:
            return "1"
        if portal is None:
            return None
        owners = portal.tables[owner_kind]
        link = table.column("OWNER_ID")
        inner = scope_sql(portal, owners, scope)
        if link is None or inner is None or owners.db is not table.db:
            return None
        return f"{link.name} IN (SELECT id FROM {owners.name} WHERE {inner})"
    field = OWNER_FIELD.get(table.kind)
    rule = scope.rule(table.kind)
    if field is None or rule is None or rule.users is None:
        return "1"
    owner = table.column(field)
    if owner is None:
        return None
    listed = ", ".join(str(int(u)) for u in sorted(rule.users))
    clause = f"{owner.name} IN ({listed})" if listed else "0"
    if rule.opened:
        opened = table.column("OPENED")
        if opened is None:
            return None
        clause = f"({clause} OR {opened.name} = 1)"
    return clause


def _activity_sql(portal: Portal | None, table: Table, scope: Scope) -> str | None:
    """Activities whose owner record the user may read, on the indexed columns."""
    if not _activity_restricted(scope):
        return "1"
    kind_col, link = table.column("OWNER_TYPE_ID"), table.column("OWNER_ID")
    if portal is None or kind_col is None or link is None:
        return None
    parts = []
    for type_id, owner_kind in ACTIVITY_OWNER.items():
        owners = portal.tables[owner_kind]
        inner = scope_sql(portal, owners, scope)
        if inner is None or owners.db is not table.db:
            return None
        seen = (
            "1" if inner == "1" else f"{link.name} IN (SELECT id FROM {owners.name} WHERE {inner})"
        )
        parts.append(f"({kind_col.name} = {type_id} AND {seen})")
    return "(" + " OR ".join(parts) + ")"
