"""Webhook scopes: which permissions (``crm``, ``user``, ...) a webhook was given.

An incoming webhook is created with a set of scopes; a method outside them
answers 401 ``insufficient_scope`` (system-errors.md), and inside a ``batch``
the command fails alone with ``{"error": "insufficient_scope",
"error_description": ""}`` (batch.md's error example). ``portal.json`` gives a
webhook its scopes as ``"scopes": ["crm", "user", ...]``; without the key a
webhook may call everything, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rop.emulator.errors import ApiError

# Methods every webhook may call whatever its scopes (scope "basic").
_BASIC = frozenset({"batch", "profile", "app.info", "server.time", "user.admin", "scope", "events"})
# Method name prefix -> the scope it needs, longest prefix first.
_BY_PREFIX: tuple[tuple[str, frozenset[str]], ...] = (
    ("voximplant.", frozenset({"telephony"})),
    ("telephony.", frozenset({"telephony"})),
    ("department.", frozenset({"department"})),
    # user-get.md: user, user_brief or user_basic.
    ("user.", frozenset({"user", "user_brief", "user_basic"})),
    ("crm.", frozenset({"crm"})),
    ("placement.", frozenset({"placement"})),
    ("im.", frozenset({"im"})),
    ("imbot.", frozenset({"imbot"})),
    # event.bind/get/unbind and the offline queue are "basic" (no scope).
)


def needed(method: str) -> frozenset[str] | None:
    """Scopes of which one is needed for ``method``; None: any webhook may call it."""
    if method in _BASIC:
        return None
    for prefix, scopes in _BY_PREFIX:
        if method.startswith(prefix):
            return scopes
    return None


def parse(value: Any) -> frozenset[str] | None:
    """``portal.json``'s ``scopes`` of a webhook: a list or a comma-separated string."""
    if value is None:
        return None
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    return frozenset(str(s).strip().lower() for s in items if str(s).strip())


def check(method: str, granted: frozenset[str] | None) -> None:
    """Raise 401 insufficient_scope if ``granted`` lacks what ``method`` needs."""
    if granted is None:
        return
    wanted = needed(method)
    if wanted is not None and not (wanted & granted):
        raise ApiError(
            "insufficient_scope",
            "The request requires higher privileges than provided by the webhook token",
            401,
        )
