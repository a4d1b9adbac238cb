"""``crm.permissions.json``: the CRM role level of each user per entity (CONTRACT.md §1).

Read and checked at load; :mod:`visibility` turns levels into what a user may read.
"""

from __future__ import annotations

from typing import Any

ENTITIES = ("deal", "lead", "company", "contact", "call")
LEVELS = ("none", "own", "department", "subdepartments", "open", "all")


def check_permissions(data: Any, where: str) -> dict[str, Any]:
    """Validate ``crm.permissions.json``; the message names the bad part."""
    if not isinstance(data, dict) or set(data) - {"default", "users"}:
        raise ValueError(f"{where}: expected an object with 'default' and/or 'users'")

    def levels(value: Any, at: str) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: {at} must be an object of ENTITY: LEVEL")
        out = {}
        for entity, level in value.items():
            if entity not in ENTITIES:
                raise ValueError(
                    f"{where}: {at}: unknown entity {entity!r} ({', '.join(ENTITIES)})"
                )
            if level not in LEVELS:
                raise ValueError(f"{where}: {at}: unknown level {level!r} ({', '.join(LEVELS)})")
            out[entity] = level
        return out

    users = data.get("users") or {}
    if not isinstance(users, dict) or not all(str(k).isdigit() for k in users):
        raise ValueError(f"{where}: 'users' must map user IDs to levels")
    return {
        "default": levels(data.get("default") or {}, "'default'"),
        "users": {int(k): levels(v, f"user {k}") for k, v in users.items()},
    }
