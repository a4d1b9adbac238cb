"""Refuse to time a store whose stored facts lag.

No open rebuilds them any more (rop.store.facts.ensure_facts: `rop migrate`
and `rop sync` do), and a lagging store's reports compute the facts in
memory: a bench on it would time the slow path and say nothing of it.
"""

from __future__ import annotations

import sys

from rop.store import Store


def require_current(store: Store, what: str) -> None:
    from rop.store.facts import lagging

    behind = lagging(store)
    if behind:
        sys.exit(
            f"{what}: the stored facts lag for {', '.join(behind)}; "
            f"run `rop migrate --db {what}` first"
        )
