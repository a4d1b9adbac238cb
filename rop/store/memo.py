"""Remember small lookups until the next write: what every report and drill-down
reads before its own query (the data's fingerprint, whether the stored facts are
current, the portal row, the directories of stages, pipelines, users).

Each of those is a millisecond, but a drill-down ran about thirty of them
before its one real query (40 ms at 1M deals, most of its time). They change
only when the data does, so a :class:`Generation` per database remembers them
and forgets everything at each write.

Only where every write passes through this process: a DuckDB file is locked
by the process that opens it (a writer excludes every other process, a
reader excludes writers), so while a handle is open here the data changes
only through this process's handles, which all bump the file's generation
(:func:`for_file`: every handle on one file in a process shares one,
whichever ``open_store`` made it; opening bumps it, since another process
may have written before).

PostgreSQL is written by other processes (workers, other web processes), so
there a :class:`Versions` per database remembers values per portal and data
version (rop.store.pg_versions: triggers move a portal's count in the commit
of every write): a handle reads the version as it picks its portal (the
report's first lookup), and a value is served only to a handle holding the
version it was computed under.

Nothing is remembered while any handle of the database is inside a
transaction: a lookup could read that transaction's uncommitted rows, or
remember rows it is about to replace. A value computed across a write is
not kept (the generation is read before computing and checked before
storing), and the bump comes after the write commits.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

# Past this many remembered values the least recently used goes: a server's
# memory stays bounded whatever the mix of portals and viewers.
MAX_ENTRIES = 512


class Generation:
    """One database's write counter and the values remembered since the last write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0
        self._open_transactions = 0
        self._memo: OrderedDict[Hashable, Any] = OrderedDict()

    def bump(self) -> None:
        """The data may have changed: forget everything."""
        with self._lock:
            self._value += 1
            self._memo.clear()

    def begin(self) -> None:
        with self._lock:
            self._open_transactions += 1
            self._value += 1
            self._memo.clear()

    def end(self) -> None:
        """A transaction ended (committed or rolled back): after it, forget everything."""
        with self._lock:
            self._open_transactions = max(0, self._open_transactions - 1)
            self._value += 1
            self._memo.clear()

    def remember(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``'s value for ``key``, computed once per generation."""
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
            seen, busy = self._value, self._open_transactions > 0
        value = compute()
        if busy:
            return value
        with self._lock:
            if self._value == seen and not self._open_transactions:
                self._memo[key] = value
                while len(self._memo) > MAX_ENTRIES:
                    self._memo.popitem(last=False)
        return value


_FILES: dict[str, Generation] = {}
_FILES_LOCK = threading.Lock()


def for_file(path: str) -> Generation:
    """The generation every handle on the file ``path`` shares in this process
    (DuckDB shares one instance between them); an in-memory database gets its own."""
    if path == ":memory:" or path.startswith(":memory:"):
        return Generation()
    key = os.path.realpath(path)
    with _FILES_LOCK:
        found = _FILES.get(key)
        if found is None:
            found = _FILES[key] = Generation()
        return found


# Statements that only read: everything else (INSERT ... RETURNING through
# ``scalar`` included) bumps the generation once it has run.
_READS = ("SELECT", "WITH", "EXPLAIN", "DESCRIBE", "SHOW", "SUMMARIZE", "FROM", "(")
_WRITE_WORD = re.compile(r"\b(INSERT|UPDATE|DELETE|COPY)\b", re.IGNORECASE)


def writes(sql: str) -> bool:
    """Whether ``sql`` may change the data (a guess that errs on "yes")."""
    head = sql.lstrip()[:10].upper()
    if not head.startswith(_READS):
        return True
    # A CTE may feed a write on some engines.
    return head.startswith("WITH") and _WRITE_WORD.search(sql) is not None


class Versions:
    """One PostgreSQL database's memo in this process: per portal, the values
    computed under its latest data version seen (rop.store.pg_versions).

    A handle asks with the version it read (:meth:`remember`); a newer one
    forgets the portal's values, an older one (a handle that read before a
    write another has seen since) is computed and not kept. A value computed
    under version ``v`` read data at least as new as ``v`` (the version is read
    before, and rows and count commit together), so it is never older than
    what a reader holding ``v`` may see.
    """

    def __init__(self, max_portals: int = 64) -> None:
        self._lock = threading.Lock()
        self._max_portals = max_portals
        # portal -> (version, values), least recently used portal first
        self._portals: OrderedDict[str, tuple[int, OrderedDict[Hashable, Any]]] = OrderedDict()

    def remember(self, portal: str, version: int, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            known = self._portals.get(portal)
            if known is not None and known[0] == version and key in known[1]:
                self._portals.move_to_end(portal)
                known[1].move_to_end(key)
                return known[1][key]
        value = compute()
        with self._lock:
            known = self._portals.get(portal)
            if known is None or known[0] < version:
                known = self._portals[portal] = (version, OrderedDict())
            if known[0] == version:
                known[1][key] = value
                self._portals.move_to_end(portal)
                while len(known[1]) > MAX_ENTRIES:
                    known[1].popitem(last=False)
                while len(self._portals) > self._max_portals:
                    self._portals.popitem(last=False)
        return value


_DATABASES: dict[str, Versions] = {}


def for_database(name: str) -> Versions:
    """The memo every handle on the database ``name`` (URL without password,
    with its role: another role sees other rows) shares in this process."""
    with _FILES_LOCK:
        found = _DATABASES.get(name)
        if found is None:
            found = _DATABASES[name] = Versions()
        return found
