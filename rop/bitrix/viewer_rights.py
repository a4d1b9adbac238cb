"""What a viewer may read in the CRM, asked of Bitrix24 with the viewer's own token.

No REST method exposes CRM roles (BITRIX24_APP.md §5): a viewer's rights
show only in what their token's list calls return. Listing every record
with every viewer's token would cost a full copy per viewer, so we compare
counts with the store (the copy made with the installer's token):

1. per entity, the count the viewer sees at all: equal to the store's ->
   the whole entity is visible; zero -> none of it (one batch of 5 calls);
2. otherwise per department (the users whose first department it is):
   CRM roles follow departments, so most departments come out all or nothing;
3. in a mixed department, per user;
4. only for a user seen partly (open records, ``OPENED``), the IDs the token
   lists (keyset, ``select ID``).

Counts are list calls with ``start=0`` (their ``total``), 50 to a ``batch``.
A count above the store's (records added since the last sync) counts as
all; a method the viewer may not call at all (``ACCESS_DENIED``, e.g. call
statistics) as none. The result is a :class:`rop.store.grants.Grant`, saved
per (portal, viewer) and read by the report (rop.report.scope).
:class:`GrantCache` keeps it fresh: worked out on first open, refreshed in
the background after ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rop.bitrix.client import BATCH_MAX_COMMANDS, BitrixClient, Command, RetryPolicy, TokenProvider
from rop.bitrix.errors import BitrixError
from rop.bitrix.export import Chain, count_command, record_id, step_chains
from rop.bitrix.records import CALLS, COMPANIES, CONTACTS, DEALS, LEADS, Entity
from rop.store.db import Store
from rop.store.grants import GRANT_ENTITIES, EntityGrant, Grant, grant_computed_at, save_grant

log = logging.getLogger("rop.bitrix.rights")

ENTITIES: dict[str, Entity] = {
    "deal": DEALS,
    "lead": LEADS,
    "company": COMPANIES,
    "contact": CONTACTS,
    "call": CALLS,
}
# The REST field naming a record's responsible user, per entity.
OWNER_FIELD = {"deal": "ASSIGNED_BY_ID", "lead": "ASSIGNED_BY_ID", "company": "ASSIGNED_BY_ID",
               "contact": "ASSIGNED_BY_ID", "call": "PORTAL_USER_ID"}  # fmt: skip
# Errors that mean "this viewer may read none of it", not a failure.
_DENIED = ("ACCESS_DENIED", "access denied", "insufficient_scope")


@dataclass
class GrantStats:
    """What working out one grant cost (benchmarks, logs)."""

    requests: int = 0
    counts: int = 0  # count commands sent
    partial_users: int = 0
    ids_listed: int = 0
    seconds: float = 0.0  # wall time of compute_grant
    local_seconds: float = 0.0  # of which our own work: store queries and saving


@dataclass
class _Probe:
    entity: str
    users: tuple[int, ...]
    stored: int  # records of these users in the store
    visible: int | None = None


@dataclass
class _Work:
    full: dict[str, set[int]] = field(default_factory=dict)
    partial: dict[str, list[int]] = field(default_factory=dict)


def _denied(exc: BitrixError) -> bool:
    text = f"{exc.code} {exc.description}".lower()
    return any(d.lower() in text for d in _DENIED)


def _store_counts(store: Store, portal: str) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = {}
    for entity, (table, owner) in GRANT_ENTITIES.items():
        out[entity] = {
            int(u): int(n)
            for u, n in store.query(
                f"SELECT {owner}, count(*) FROM {table} WHERE portal = ? "  # noqa: S608
                f"AND {owner} IS NOT NULL GROUP BY {owner}",
                [portal],
            )
        }
    return out


def _first_departments(store: Store, portal: str) -> dict[int, int]:
    return {
        int(u): int(d)
        for u, d in store.query(
            "SELECT id, department_id FROM users WHERE portal = ? AND department_id IS NOT NULL",
            [portal],
        )
    }


def _count(entity: str, users: Sequence[int]) -> Command:
    field_name = OWNER_FIELD[entity]
    value: Any = users[0] if len(users) == 1 else list(users)
    flt = {field_name: value} if users else {}
    return count_command(ENTITIES[entity], flt)


async def _run_counts(client: BitrixClient, probes: list[_Probe], stats: GrantStats) -> None:
    """Fill each probe's ``visible``, 50 commands to a batch, batches concurrently."""

    async def one(chunk: list[_Probe], offset: int) -> None:
        commands = {f"c{offset + i}": _count(p.entity, p.users) for i, p in enumerate(chunk)}
        reply = await client.batch(commands)
        for i, probe in enumerate(chunk):
            key = f"c{offset + i}"
            try:
                reply.get(key)
            except BitrixError as exc:
                if not _denied(exc):
                    raise
                probe.visible = 0
                continue
            total = reply.total(key)
            probe.visible = total if total is not None else len(reply.records(key))

    chunks = [
        (probes[i : i + BATCH_MAX_COMMANDS], i) for i in range(0, len(probes), BATCH_MAX_COMMANDS)
    ]
    stats.counts += len(probes)
    await asyncio.gather(*(one(c, i) for c, i in chunks))


async def _list_ids(
    client: BitrixClient, wanted: list[tuple[str, int]], stats: GrantStats
) -> dict[str, set[int]]:
    """IDs the token lists for each (entity, user) seen partly; chains share batches."""
    out: dict[str, set[int]] = {}
    chains = [
        (entity, Chain(ENTITIES[entity], 0, {OWNER_FIELD[entity]: user}, select=("ID",)))
        for entity, user in wanted
    ]
    while True:
        pending = [(e, c) for e, c in chains if not c.done]
        if not pending:
            return out
        group = pending[:BATCH_MAX_COMMANDS]
        pages = max(1, BATCH_MAX_COMMANDS // len(group))
        got = await step_chains(client, [(c, pages) for _, c in group])
        for (entity, chain), rows in zip(group, got, strict=True):
            ids = out.setdefault(entity, set())
            ids.update(record_id(chain.entity, r) for r in rows)
            stats.ids_listed += len(rows)


def _expected_users(store: Store, portal: str, viewer: int) -> set[int]:
    """The viewer and the users of every department they head, sub-departments included:
    what CRM roles most often grant ("own and department and sub-departments")."""
    children: dict[int, list[int]] = {}
    headed: list[int] = []
    for did, parent, head in store.query(
        "SELECT id, parent_id, head_id FROM departments WHERE portal = ?", [portal]
    ):
        if parent is not None:
            children.setdefault(int(parent), []).append(int(did))
        if head == viewer:
            headed.append(int(did))
    covered: set[int] = set()
    while headed:
        d = headed.pop()
        if d not in covered:
            covered.add(d)
            headed.extend(children.get(d, ()))
    users = {viewer}
    for uid, many in store.query("SELECT id, department_ids FROM users WHERE portal = ?", [portal]):
        if covered & {int(d) for d in json.loads(many or "[]")}:
            users.add(int(uid))
    return users


async def compute_grant(
    store: Store,
    client: BitrixClient,
    portal: str,
    stats: GrantStats | None = None,
    viewer: int | None = None,
) -> Grant:
    """Work out the grant of the user whose token ``client`` carries, on ``portal``'s copy.

    With ``viewer`` (that user's ID) the first batch also counts the users a
    head of department would see: when that alone explains the viewer's
    total, the grant is known after one request.
    """
    stats = stats or GrantStats()
    started, before = time.monotonic(), client.requests
    tick = time.perf_counter()
    counts = _store_counts(store, portal)
    expected = _expected_users(store, portal, viewer) if viewer is not None else set()
    departments = _first_departments(store, portal)
    stats.local_seconds += time.perf_counter() - tick
    # 1. Each entity as a whole, and the expected users' share of it.
    whole = [_Probe(e, (), sum(counts[e].values())) for e in GRANT_ENTITIES]
    guesses: dict[str, _Probe] = {}
    for e in GRANT_ENTITIES:
        mine = tuple(sorted(u for u in expected if u in counts[e]))
        if mine and len(mine) < len(counts[e]):
            guesses[e] = _Probe(e, mine, sum(counts[e][u] for u in mine))
    await _run_counts(client, whole + list(guesses.values()), stats)
    entities: dict[str, EntityGrant] = {}
    work = _Work()
    groups: list[_Probe] = []
    for probe in whole:
        visible = probe.visible or 0
        if probe.stored == 0 or visible >= probe.stored:
            entities[probe.entity] = EntityGrant(whole=True)
            continue
        work.full[probe.entity] = set()
        if visible == 0:
            continue
        guess = guesses.get(probe.entity)
        if guess is not None and (guess.visible or 0) >= guess.stored == visible:
            # Every visible record is an expected user's, and all of theirs are visible.
            work.full[probe.entity].update(guess.users)
            continue
        # 2. Per department (users with no department form one group).
        by_dept: dict[int, list[int]] = {}
        for user in sorted(counts[probe.entity]):
            by_dept.setdefault(departments.get(user, -1), []).append(user)
        for users in by_dept.values():
            stored = sum(counts[probe.entity][u] for u in users)
            groups.append(_Probe(probe.entity, tuple(users), stored))
    await _run_counts(client, groups, stats)
    singles: list[_Probe] = []
    for probe in groups:
        visible = probe.visible or 0
        if visible >= probe.stored:
            work.full[probe.entity].update(probe.users)
        elif visible > 0 and len(probe.users) > 1:
            # 3. A mixed department: per user.
            singles.extend(_Probe(probe.entity, (u,), counts[probe.entity][u]) for u in probe.users)
        elif visible > 0:
            work.partial.setdefault(probe.entity, []).append(probe.users[0])
    await _run_counts(client, singles, stats)
    for probe in singles:
        visible = probe.visible or 0
        if visible >= probe.stored:
            work.full[probe.entity].add(probe.users[0])
        elif visible > 0:
            work.partial.setdefault(probe.entity, []).append(probe.users[0])
    # 4. IDs of the users seen partly.
    wanted = [(e, u) for e, users in work.partial.items() for u in users]
    stats.partial_users += len(wanted)
    ids = await _list_ids(client, wanted, stats) if wanted else {}
    for entity, seen in work.full.items():
        entities[entity] = EntityGrant(
            whole=False, users=frozenset(seen), records=frozenset(ids.get(entity, ()))
        )
    stats.requests += client.requests - before
    stats.seconds += time.monotonic() - started
    return Grant(entities)


def refresh_grant(
    store: Store,
    base_url: str,
    portal: str,
    viewer: int,
    token_provider: TokenProvider,
    *,
    rate_per_second: float = 2.0,
    rate_burst: int = 50,
    retry: RetryPolicy | None = None,
    stats: GrantStats | None = None,
) -> Grant:
    """Work out ``viewer``'s grant with their token and save it (from a thread with no loop).

    ``base_url`` is the portal's REST endpoint ``https://PORTAL/rest/``;
    ``token_provider`` gives the viewer's access token (the frame's AUTH_ID,
    or one refreshed from their stored refresh token).
    """

    async def go() -> Grant:
        async with BitrixClient(
            base_url,
            rate_per_second=rate_per_second,
            burst=rate_burst,
            token_provider=token_provider,
            retry=retry,
        ) as client:
            return await compute_grant(store, client, portal, stats, viewer)

    grant = asyncio.run(go())
    tick = time.perf_counter()
    save_grant(store, portal, viewer, grant)
    if stats is not None:
        stats.local_seconds += time.perf_counter() - tick
    return grant


Refresh = Callable[[str, int], Any]
Ready = Callable[[str, int], bool]


class GrantCache:
    """Grants per (portal, viewer) with a time to live and background refresh.

    ``ensure(portal, viewer)`` before building a viewer's report: with no
    grant yet it works one out now (the first open waits, once); with one
    older than ``ttl`` it answers at once and refreshes in the background
    (one refresh per viewer at a time). ``refresh(portal, viewer)`` does the
    work (the server binds it to :func:`refresh_grant` with the viewer's
    token); ``ready(portal, viewer)`` says whether it can now (the app knows
    the viewer's frame token only in the process the frame was posted to).
    A failed background refresh keeps the old grant and is logged.
    """

    def __init__(
        self, store: Store, refresh: Refresh, ttl: float = 600.0, ready: Ready | None = None
    ) -> None:
        self.store = store
        self._refresh = refresh
        self._ready = ready or (lambda _portal, _viewer: True)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._running: dict[tuple[str, int], threading.Thread] = {}

    def age(self, portal: str, viewer: int) -> float | None:
        from datetime import UTC, datetime

        cursor = self.store.cursor()  # callers' threads: a handle of their own
        try:
            stamp = grant_computed_at(cursor, portal, viewer)
        finally:
            cursor.close()
        if stamp is None:
            return None
        return (datetime.now(UTC).replace(tzinfo=None) - stamp).total_seconds()

    def ensure(self, portal: str, viewer: int) -> str:
        """'computed' (first open, done now), 'fresh', 'refreshing' (stale, in the
        background), 'stale' (old, and nothing here can refresh it: served as it
        is) or 'missing' (none, and none can be worked out here)."""
        age = self.age(portal, viewer)
        if age is None:
            if not self._ready(portal, viewer):
                return "missing"
            self._refresh(portal, viewer)
            return "computed"
        if age < self.ttl:
            return "fresh"
        if not self._ready(portal, viewer):
            return "stale"
        key = (portal, viewer)
        with self._lock:
            running = self._running.get(key)
            if running is None or not running.is_alive():
                thread = threading.Thread(
                    target=self._background, args=key, name="rop-grant", daemon=True
                )
                self._running[key] = thread
                thread.start()
        return "refreshing"

    def _background(self, portal: str, viewer: int) -> None:
        try:
            self._refresh(portal, viewer)
        except Exception as exc:  # the old grant stays; the next open tries again
            log.warning("refreshing the grant of viewer %s on %s failed: %s", viewer, portal, exc)

    def wait(self, timeout: float = 30.0) -> None:
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout)
