"""Whose records a calling user may read (METRICS.md "Who may see what").

Bitrix24 applies the caller's CRM role; the emulator models the report's
rule: admins see everything, department heads see the users of their
departments and all sub-departments, everyone else sees only themselves.
``None`` means "no restriction".
"""

from __future__ import annotations

from typing import Any

from rop.emulator.data import Portal

Scope = frozenset[int] | None

# kind -> the field naming the record's owner
OWNER_FIELD = {
    "deal": "ASSIGNED_BY_ID",
    "lead": "ASSIGNED_BY_ID",
    "company": "ASSIGNED_BY_ID",
    "contact": "ASSIGNED_BY_ID",
    "call": "PORTAL_USER_ID",
    "activity": "RESPONSIBLE_ID",
}
# History rows follow the visibility of the record they belong to.
HISTORY_OWNER = {"deal_history": "deal", "lead_history": "lead"}


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
        departments = portal.tables["department"].rows.values()
        children: dict[int, list[int]] = {}
        for dep in departments:
            parent = _int(dep.get("PARENT"))
            if parent is not None:
                children.setdefault(parent, []).append(_int(dep.get("ID")) or 0)
        headed = [_int(d.get("ID")) or 0 for d in departments if _int(d.get("UF_HEAD")) == user_id]
        covered: set[int] = set()
        stack = list(headed)
        while stack:
            dep_id = stack.pop()
            if dep_id in covered:
                continue
            covered.add(dep_id)
            stack.extend(children.get(dep_id, ()))
        users = {user_id}
        if covered:
            for user in portal.tables["user"].rows.values():
                if covered.intersection(departments_of(user)):
                    users.add(_int(user.get("ID")) or 0)
        return frozenset(users)


def visible(portal: Portal, kind: str, record: dict[str, Any], scope: Scope) -> bool:
    if scope is None:
        return True
    owner_kind = HISTORY_OWNER.get(kind)
    if owner_kind is not None:
        owner = portal.tables[owner_kind].rows.get(_int(record.get("OWNER_ID")) or 0)
        return owner is not None and visible(portal, owner_kind, owner, scope)
    field = OWNER_FIELD.get(kind)
    if field is None:
        return True
    return _int(record.get(field)) in scope
