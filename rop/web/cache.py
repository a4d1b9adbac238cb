"""A small cache of built reports, keyed by the filter and the data's version.

The store changes only when a sync runs, so the same filter on the same data
gives the same report: a head of sales reloading the page, or twenty people
opening the morning link at once, share one computation. Concurrent misses
on one key wait for the first instead of all computing it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from rop.store.db import Store


def data_version(store: Store, portal: str | None = None) -> tuple:
    """Changes whenever the data may have changed (a load, a sync, a viewer's new grant); None: any portal.

    PostgreSQL counts every committed write to a portal (rop.store.pg_versions:
    a rights change or a plan by another web process or the CLI included), so
    there it is that count. Elsewhere remembered until the next write where the
    store allows it (rop.store.memo): a request asked it up to four times (3.5 ms
    of CPU each at 1M deals)."""
    exact = store.data_version(portal)
    if exact is not None:
        return ("writes", exact)
    return store.remember(("data_version", portal), lambda: _data_version(store, portal))


def _data_version(store: Store, portal: str | None) -> tuple:
    row = store.query(
        # CAST: PostgreSQL cannot type a bare NULL parameter.
        "SELECT (SELECT max(updated_at) FROM portals WHERE CAST(? AS TEXT) IS NULL OR portal = ?), "
        "(SELECT max(coalesce(finished_at, started_at)) FROM sync_runs "
        "WHERE CAST(? AS TEXT) IS NULL OR portal = ?), "
        "(SELECT count(*) FROM sync_runs WHERE CAST(? AS TEXT) IS NULL OR portal = ?), "
        "(SELECT count(*) FROM portals), "
        # App mode: a viewer's refreshed Bitrix24 grant changes what they see.
        "(SELECT max(computed_at) FROM viewer_grants WHERE CAST(? AS TEXT) IS NULL OR portal = ?)",
        [portal, portal] * 4,
    )
    return tuple(row[0]) if row else ()


class ReportCache:
    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[Hashable, threading.Lock] = {}
        self.generation = 0  # bumped after every sync the server runs
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.generation += 1

    def peek(self, key: Hashable) -> tuple[bool, Any]:
        """(True, value) when ``key`` is cached, else (False, None); builds nothing."""
        if self.size <= 0:
            return False, None
        with self._lock:
            key = (self.generation, key)
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return True, self._items[key]
        return False, None

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        if self.size <= 0:
            return build()
        with self._lock:
            key = (self.generation, key)
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                if key in self._items:
                    self.hits += 1
                    return self._items[key]
            value = build()  # errors propagate and nothing is stored
            with self._lock:
                self.misses += 1
                self._items[key] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._flights.pop(key, None)
            return value
