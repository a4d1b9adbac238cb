"""Which plans a portal's prepared statements use on PostgreSQL: generic for a small portal.

A report's statements are prepared at their second run (rop.store.postgres
``PREPARE_THRESHOLD``), and PostgreSQL then chooses per execution between a
custom plan (planned for the values bound) and the statement's generic plan
(planned once, reused). Its choice (``plan_cache_mode = auto``) compares the
generic plan's estimated cost with the custom ones': the records' aggregate
statements of deals and leads kept custom plans, so at 10k deals they were
planned again at every report (1.2-1.7 ms each, four per page: about 6 of a
report's 40-50 ms), while their generic plans ran as fast (docs/BENCHMARKS.md,
ninth PostgreSQL run).

For a big portal the values matter (a month or three years of a million deals
want different plans: skewed parameters), and planning is a small part of each
statement, so the choice stays PostgreSQL's. The rule: a portal of at most
:data:`SMALL_DEALS` deals runs ``force_generic_plan``, any other ``auto``. The
size is a hint, not data: read once per data version a process sees for the
portal (a bounded count: it never reads more than ``SMALL_DEALS + 1`` rows),
and set on the session with the portal, in the same statement
(rop.store.pg_versions ``PIN_SQL``), so it costs no round trip of its own.
A stale hint can only choose a slower plan, never another answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

# Up to this many deals a portal's statements run their generic plans.
SMALL_DEALS = 20_000
GENERIC = "force_generic_plan"
AUTO = "auto"
# The portal's deals, counted no further than the threshold (row-level
# security: the session's portal only). Bound: %(n)s is SMALL_DEALS + 1.
SIZE_SQL = "SELECT count(*) FROM (SELECT 1 FROM deals WHERE portal = %(p)s LIMIT %(n)s) AS s"
# Portals remembered per process: past this many the least recently used goes.
MAX_PORTALS = 4096


def mode(deals: int) -> str:
    """The plan mode for a portal of ``deals`` deals (counted up to SMALL_DEALS + 1)."""
    return GENERIC if deals <= SMALL_DEALS else AUTO


class Hints:
    """Per database in a process: each portal's plan mode and the data version it was
    counted under (a newer version is counted again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: OrderedDict[str, tuple[int, str]] = OrderedDict()

    def get(self, portal: str) -> tuple[int, str] | None:
        with self._lock:
            found = self._known.get(portal)
            if found is not None:
                self._known.move_to_end(portal)
            return found

    def put(self, portal: str, version: int, plan_mode: str) -> None:
        with self._lock:
            known = self._known.get(portal)
            if known is None or known[0] <= version:
                self._known[portal] = (version, plan_mode)
                self._known.move_to_end(portal)
            while len(self._known) > MAX_PORTALS:
                self._known.popitem(last=False)


_DATABASES: dict[str, Hints] = {}
_DATABASES_LOCK = threading.Lock()


def for_database(key: str) -> Hints:
    """One Hints per database (its display URL) in this process."""
    with _DATABASES_LOCK:
        return _DATABASES.setdefault(key, Hints())
