"""Who may see what (METRICS.md "Who may see what").

Admins (portal admins, or users marked as report admins) see everyone; a head
of departments sees themselves and every user of those departments and of
all their sub-departments; everyone else sees themselves. The report
administrator's overrides (``scope_overrides``) then widen or narrow a
viewer's scope, user by user. The scope limits rows, totals and drill-downs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from rop.metrics.errors import ReportInputError
from rop.store.db import Store
from rop.store.grants import GRANT_ENTITIES, Grant, all_owners, load_grant, partial_owners


@dataclass(frozen=True)
class Granted:
    """The record-level part of a scope granted by Bitrix24 (app mode, rop.store.grants).

    ``full``: per restricted entity, the users whose records the viewer sees
    in full; further single records are ``viewer``'s rows of
    ``viewer_grant_records``. An entity not in ``full`` is seen whole.
    ``owners``: per entity, every user with at least one visible record.
    """

    viewer: int
    full: Mapping[str, frozenset[int]] = field(default_factory=dict)
    owners: Mapping[str, frozenset[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    """The users a viewer sees: everyone but ``excluded``, or exactly ``users``.

    With ``granted`` (app mode) only some records of those users may be
    visible, entity by entity: queries add :attr:`Granted.full` and the
    granted records (rop.metrics.compile, Context.grant_*).
    """

    everyone: bool
    users: frozenset[int] = frozenset()
    excluded: frozenset[int] = frozenset()
    granted: Granted | None = None

    def sees(self, user_id: int) -> bool:
        if self.everyone:
            return user_id not in self.excluded
        return user_id in self.users

    def sees_in(self, user_id: int, entity: str) -> bool:
        """Whether any of ``user_id``'s records of ``entity`` (deal, lead...) is visible."""
        if not self.sees(user_id):
            return False
        g = self.granted
        if g is None or entity not in g.full:
            return True
        return user_id in g.owners.get(entity, frozenset())

    def narrowed(self, to: frozenset[int] | None) -> Scope:
        """This scope intersected with an explicit set of users (None = no narrowing)."""
        if to is None:
            return self
        return Scope(False, frozenset(u for u in to if self.sees(u)), granted=self.granted)


EVERYONE = Scope(True)


def user_departments(store: Store, portal: str) -> dict[int, list[int]]:
    """Every user's departments (first one first)."""
    out: dict[int, list[int]] = {}
    for uid, first, many in store.query(
        "SELECT id, department_id, department_ids FROM users WHERE portal = ?", [portal]
    ):
        ids = [int(d) for d in json.loads(many)] if many else []
        if first is not None and first not in ids:
            ids.insert(0, first)
        out[uid] = ids
    return out


def subtree(store: Store, portal: str, roots: set[int]) -> set[int]:
    """``roots`` and every department below them."""
    children: dict[int, list[int]] = {}
    for did, parent in store.query(
        "SELECT id, parent_id FROM departments WHERE portal = ?", [portal]
    ):
        if parent is not None:
            children.setdefault(parent, []).append(did)
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.add(d)
        todo.extend(children.get(d, []))
    return seen


def users_of(store: Store, portal: str, departments: set[int]) -> set[int]:
    """Users in any of ``departments`` (not their sub-departments: pass a subtree)."""
    return {uid for uid, deps in user_departments(store, portal).items() if set(deps) & departments}


def is_report_admin(store: Store, portal: str, user_id: int) -> bool:
    row = store.query(
        "SELECT coalesce(is_admin, FALSE) OR EXISTS (SELECT 1 FROM report_admins a "
        "WHERE a.portal = u.portal AND a.user_id = u.id) FROM users u "
        "WHERE u.portal = ? AND u.id = ?",
        [portal, user_id],
    )
    return bool(row and row[0][0])


def viewer_scope(store: Store, portal: str | None, viewer: int | None) -> Scope:
    """The scope of ``viewer``; None means no restriction (the admin CLI).

    ``portal`` None means the store's one portal.
    """
    if viewer is None:
        return EVERYONE
    if portal is None:
        from rop.report.portal import select_portal

        portal = select_portal(store).key
    known = store.scalar("SELECT count(*) FROM users WHERE portal = ? AND id = ?", [portal, viewer])
    if not known:
        raise ReportInputError("unknown_user", user=viewer, portal=portal)
    overrides = store.query(
        "SELECT user_id, allow FROM scope_overrides WHERE portal = ? AND viewer_id = ?",
        [portal, viewer],
    )
    allow = {u for u, a in overrides if a}
    deny = {u for u, a in overrides if not a}
    if is_report_admin(store, portal, viewer):
        return Scope(True, excluded=frozenset(deny - allow))
    grant = load_grant(store, portal, viewer)
    if grant is not None:
        return granted_scope(store, portal, viewer, grant, allow, deny)
    headed = {
        d for (d,) in store.query(
            "SELECT id FROM departments WHERE portal = ? AND head_id = ?", [portal, viewer]
        )
    }  # fmt: skip
    users = {viewer} | users_of(store, portal, subtree(store, portal, headed))
    return Scope(False, frozenset((users | allow) - deny))


def choosable_departments(
    store: Store, portal: str, viewer: int | None, scope: Scope
) -> set[int] | None:
    """The departments ``viewer`` may pick in a filter or drill into; None: every one.

    A viewer who sees everyone picks any department. Anyone else picks the
    department of each user they see (the first one: where the report puts
    the user's row, and what the filter bar offers) and every department
    below one they head: naming any other would show a department outside
    their scope (its name in the filter's sentence, a heading over no records).
    """
    if scope.everyone or viewer is None:
        return None
    chosen = {
        deps[0] for uid, deps in user_departments(store, portal).items() if deps and scope.sees(uid)
    }
    headed = {
        d for (d,) in store.query(
            "SELECT id FROM departments WHERE portal = ? AND head_id = ?", [portal, viewer]
        )
    }  # fmt: skip
    return chosen | subtree(store, portal, headed)


def is_known_user(store: Store, portal: str, user: int) -> bool:
    """A user of user.get, or an ID that owns records (shown as "user #ID").

    Remembered until the data changes (rop.store.memo): a drill-down asks it
    of its manager each time."""
    return store.remember(
        ("known_user", portal, user),
        lambda: _is_user(store, portal, user) or _owns_records(store, portal, user),
    )


def granted_scope(
    store: Store, portal: str, viewer: int, grant: Grant, allow: set[int], deny: set[int]
) -> Scope:
    """Bitrix24's grant combined with the report's overrides (docs/METRICS_DECISIONS.md).

    The grant replaces the head-of-department rule. An override that allows
    a user shows all of that user's records (the report administrator's
    decision, as in webhook mode); one that denies hides the user entirely.
    """
    if grant.everything:
        return Scope(True, excluded=frozenset(deny - allow))
    full: dict[str, frozenset[int]] = {}
    owners: dict[str, frozenset[int]] = {}
    users: set[int] = {viewer}
    for entity in GRANT_ENTITIES:
        part = grant.of(entity)
        if part.whole:
            seen = all_owners(store, portal, entity)
        else:
            whole_users = (set(part.users) | allow) - deny
            full[entity] = frozenset(whole_users)
            seen = whole_users | partial_owners(store, portal, viewer, entity)
        owners[entity] = frozenset(seen - deny)
        users |= seen
    return Scope(
        False,
        frozenset((users | allow) - deny),
        granted=Granted(viewer, full, owners),
    )


def granted_clause(
    scope: Scope, portal: str, entity: str, alias: str = ""
) -> tuple[str, list[object]]:
    """`` AND ...`` (``?`` parameters) keeping ``entity``'s records ``scope`` grants.

    For queries outside the catalogue (the page's funnel and trend); the
    catalogue's own queries get the same rule in rop.metrics.compile.
    """
    g = scope.granted
    if g is None or entity not in g.full:
        return "", []
    _, owner = GRANT_ENTITIES[entity]
    prefix = f"{alias}." if alias else ""
    full = sorted(g.full[entity])
    marks = ", ".join("?" for _ in full) or "NULL"
    sql = (
        f" AND ({prefix}{owner} IN ({marks}) OR {prefix}id IN (SELECT record_id "  # noqa: S608
        "FROM viewer_grant_records WHERE portal = ? AND viewer_id = ? AND entity = ?))"
    )
    return sql, [*full, portal, g.viewer, entity]


# -- editing rights (rop rights) ---------------------------------------------


def _is_user(store: Store, portal: str, user: int) -> bool:
    return bool(
        store.scalar("SELECT count(*) FROM users WHERE portal = ? AND id = ?", [portal, user])
    )


def _owns_records(store: Store, portal: str, user: int) -> bool:
    # Users unknown to user.get still own records (and get a row "user #ID").
    return bool(
        store.scalar(
            "SELECT EXISTS (SELECT 1 FROM deals WHERE portal = $p AND assigned_by_id = $u) "
            "OR EXISTS (SELECT 1 FROM leads WHERE portal = $p AND assigned_by_id = $u) "
            "OR EXISTS (SELECT 1 FROM companies WHERE portal = $p AND assigned_by_id = $u) "
            "OR EXISTS (SELECT 1 FROM contacts WHERE portal = $p AND assigned_by_id = $u) "
            "OR EXISTS (SELECT 1 FROM calls WHERE portal = $p AND portal_user_id = $u)",
            {"p": portal, "u": user},
        )
    )


def set_override(store: Store, portal: str, viewer: int, user: int, allow: bool) -> None:
    """Let ``viewer`` see ``user`` (allow) or hide ``user`` from them (deny)."""
    if not _is_user(store, portal, viewer):
        raise ReportInputError("unknown_user", user=viewer, portal=portal)
    if not (_is_user(store, portal, user) or _owns_records(store, portal, user)):
        raise ReportInputError("unknown_user", user=user, portal=portal)
    store.upsert(
        "scope_overrides",
        [{"portal": portal, "viewer_id": viewer, "user_id": user, "allow": allow}],
    )


def clear_override(store: Store, portal: str, viewer: int, user: int | None = None) -> int:
    """Remove one override (or all of ``viewer``'s); returns how many went."""
    if user is None:
        n = store.scalar(
            "SELECT count(*) FROM scope_overrides WHERE portal = ? AND viewer_id = ?",
            [portal, viewer],
        )
        store.execute(
            "DELETE FROM scope_overrides WHERE portal = ? AND viewer_id = ?", [portal, viewer]
        )
        return int(n or 0)
    n = store.scalar(
        "SELECT count(*) FROM scope_overrides WHERE portal = ? AND viewer_id = ? AND user_id = ?",
        [portal, viewer, user],
    )
    store.execute(
        "DELETE FROM scope_overrides WHERE portal = ? AND viewer_id = ? AND user_id = ?",
        [portal, viewer, user],
    )
    return int(n or 0)


def set_report_admin(store: Store, portal: str, user: int, admin: bool) -> None:
    """Mark (or unmark) ``user`` as an administrator of the report: sees everyone."""
    if not _is_user(store, portal, user):
        raise ReportInputError("unknown_user", user=user, portal=portal)
    if admin:
        store.upsert("report_admins", [{"portal": portal, "user_id": user}])
    else:
        store.execute("DELETE FROM report_admins WHERE portal = ? AND user_id = ?", [portal, user])


def list_rights(store: Store, portal: str) -> dict:
    """Report admins, portal admins and every override, for display."""
    return {
        "portal_admins": [
            r[0]
            for r in store.query(
                "SELECT id FROM users WHERE portal = ? AND is_admin ORDER BY id", [portal]
            )
        ],
        "report_admins": [
            r[0]
            for r in store.query(
                "SELECT user_id FROM report_admins WHERE portal = ? ORDER BY user_id", [portal]
            )
        ],
        "overrides": [
            {"viewer_id": v, "user_id": u, "allow": bool(a)}
            for v, u, a in store.query(
                "SELECT viewer_id, user_id, allow FROM scope_overrides WHERE portal = ? "
                "ORDER BY viewer_id, user_id",
                [portal],
            )
        ],
    }
