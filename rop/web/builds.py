"""Report builds: a few at a time, each one once, never in the way of cheap requests.

Routes that are plain functions run in a pool of worker threads (40). Building
an uncached report takes seconds; fifty of them at once used to fill the pool,
and a cached page, a drill-down or a static file then waited behind them.

So a route that may build a report runs through ``limited(view)``: the view
runs in a worker as before, but when it asks for a report that is not in the
cache (``cached_build``) it gives its worker back at once (``NeedsBuild``).
The build then waits, without a thread, for one of ``ROP_REPORT_BUILDS``
slots (``Builds``); requests for the same report wait for the one build under
way instead of starting their own (single flight, keyed like the cache); and
the view runs again and finds the report ready. Everything else (the page
around the report, drill-downs, static files) never waits for a slot.

Outside a request (tests calling a view directly) ``cached_build`` builds in
place, as ``ReportCache`` always did; the warm-up after a start or a sync does
too, but holding one of the slots (``Builds.run``), so it never makes the
builds at once more than ``ROP_REPORT_BUILDS``; and what it warms beyond the
default page goes a piece at a time, each only when no request's build waits
or runs (``Builds.run_when_idle``): twenty viewers arriving right after a start
used to share the cores and the slots with seconds of it (docs/BENCHMARKS.md).
And every piece of it gives way (``Yielding``): when a request's build finds
every slot taken while a piece of warm-up holds or waits for one, the piece is
stopped (its running statement interrupted) and tried again once no request's
build waits or runs. The default page after a start costs seconds of CPU at 1M
deals (the forecast's stage probabilities); a crowd arriving meanwhile used to
get one slot instead of two until it was done (docs/BENCHMARKS.md, "Issue 16:
the cold crowd").
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from rop.store.db import Store
from rop.web.cache import ReportCache

# (True, value) or (False, the exception the build raised)
Outcome = tuple[bool, Any]

_local = threading.local()


class NeedsBuild(Exception):
    """Raised in a request's worker thread: this report is to be built first."""

    def __init__(self, key: Hashable, build: Callable[[], Any]) -> None:
        super().__init__(key)
        self.key = key
        self.build = build


def cached_build(cache: ReportCache, key: Hashable, build: Callable[[], Any]) -> Any:
    """The cached value for ``key``; built in place outside ``limited`` routes.

    ``build`` may run in another thread than the caller's: it must take its
    own store cursor (``app.state.pool.get()``), not the caller's.
    """
    ready: dict[Hashable, Outcome] | None = getattr(_local, "ready", None)
    if ready is None:
        return cache.get_or_build(key, build)
    if key in ready:
        ok, value = ready[key]
        if ok:
            return value
        raise value
    found, value = cache.peek(key)
    if found:
        return value
    raise NeedsBuild(key, build)


def _run_view(view: Callable[[Request], Response], request: Request, ready: dict) -> Response:
    _local.ready = ready
    try:
        return view(request)
    finally:
        _local.ready = None


class _Flight:
    def __init__(self) -> None:
        self.done = anyio.Event()
        self.outcome: Outcome = (False, RuntimeError("build did not finish"))


class Yielding:
    """A piece of warm-up that gives its slot to a viewer's build: :meth:`ask`
    (from the event loop) marks it and interrupts the statement its store handle
    runs now; the piece sets ``handle`` (its thread's cursor) before its first
    statement, looks at ``asked`` once it has, and clears ``handle`` before it
    returns, so an interrupt never reaches the next user of that thread's cursor."""

    def __init__(self) -> None:
        self.asked = False
        self.handle: Store | None = None

    def ask(self) -> None:
        self.asked = True  # first: a piece setting its handle now sees it
        handle = self.handle
        if handle is not None:
            handle.interrupt()


class Builds:
    """At most ``limit`` report builds at once; one build per key at a time.

    Used from the event loop only (its dict needs no lock); the builds run in
    worker threads under their own limiter, not the route pool's.
    """

    def __init__(self, cache: ReportCache, limit: int) -> None:
        self.cache = cache
        self.limit = limit
        self._limiter: anyio.CapacityLimiter | None = None
        self._flights: dict[Hashable, _Flight] = {}
        self._last_flight = 0.0  # when the last request's build ended (monotonic)
        self.started = 0  # builds begun (tests and benchmarks read it)
        self._count = threading.Lock()
        # Pieces of warm-up holding or waiting for a slot, and the task stopping
        # them while a request's build waits for one (``_make_way``).
        self._yielding: set[Yielding] = set()
        self._way: asyncio.Task[None] | None = None

    @property
    def running(self) -> int:
        return 0 if self._limiter is None else int(self._limiter.borrowed_tokens)

    async def build(self, key: Hashable, build: Callable[[], Any]) -> Outcome:
        flight = self._flights.get(key)
        if flight is not None:
            await flight.done.wait()
            return flight.outcome
        if self._limiter is None:  # made in the event loop, on first use
            self._limiter = anyio.CapacityLimiter(self.limit)
        flight = self._flights[key] = _Flight()
        # Every slot taken and this build would wait: the warm-up gives way.
        waits = self._limiter.available_tokens < 1
        if self._yielding and waits and (self._way is None or self._way.done()):
            self._way = asyncio.get_running_loop().create_task(self._make_way())
        try:
            # Waiting for a slot holds no thread; the build's thread is counted
            # against this limiter, not the route pool's.
            flight.outcome = await anyio.to_thread.run_sync(
                self._capture, key, build, limiter=self._limiter
            )
        finally:
            del self._flights[key]
            self._last_flight = time.monotonic()
            flight.done.set()
        return flight.outcome

    async def run(self, work: Callable[[], Any], yielding: Yielding | None = None) -> Any:
        """``work`` in a worker thread holding one build slot, not cached as such:
        the warm-up after a start or a sync builds reports like a request does.
        With ``yielding``, a request's build that finds every slot taken stops it
        (:class:`Yielding`), waiting for its slot or running."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.limit)
        if yielding is None:
            return await anyio.to_thread.run_sync(work, limiter=self._limiter)
        self._yielding.add(yielding)
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._limiter)
        finally:
            self._yielding.discard(yielding)

    async def _make_way(self, every: float = 0.02) -> None:
        """Stop the pieces of warm-up until none holds or waits for a slot. Again
        and again: an interrupt between two statements finds none to stop (and is
        dropped), so the piece's next statement gets the next one."""
        while self._yielding:
            for piece in list(self._yielding):
                piece.ask()
            await anyio.sleep(every)

    @property
    def wanted(self) -> int:
        """Request builds waiting for a slot or running (one per key)."""
        return len(self._flights)

    async def run_when_idle(
        self,
        work: Callable[[], Any],
        yielding: Yielding | None = None,
        quiet: float = 1.0,
        poll: float = 0.1,
    ) -> Any:
        """``work`` as :meth:`run`, once no request's build has waited or run for
        ``quiet`` seconds: what a warm-up does beyond the default page (the
        drill-downs' static steps, seconds of CPU at 1M deals) never takes a slot
        or the cores from a viewer, nor starts between one viewer's pages. A
        request arriving while it runs waits for at most that one piece."""
        while True:
            while self._flights:
                await anyio.sleep(poll)
            rest = self._last_flight + quiet - time.monotonic()
            if rest <= 0:
                return await self.run(work, yielding)
            await anyio.sleep(rest)

    def _capture(self, key: Hashable, build: Callable[[], Any]) -> Outcome:
        with self._count:
            self.started += 1
        try:
            return True, self.cache.get_or_build(key, build)
        except Exception as exc:  # handed to the view, which answers it as it always did
            return False, exc


# A view that asks for more reports than this is built in place (a safety net:
# each round builds one, and the report page needs one).
ROUNDS = 4


def limited(view: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Response]]:
    """A route running ``view`` in a worker, its report builds through ``Builds``."""

    @functools.wraps(view)
    async def endpoint(request: Request) -> Response:
        builds: Builds = request.app.state.builds
        ready: dict[Hashable, Outcome] = {}
        for _ in range(ROUNDS):
            try:
                return await anyio.to_thread.run_sync(_run_view, view, request, ready)
            except NeedsBuild as need:
                ready[need.key] = await builds.build(need.key, need.build)
        return await anyio.to_thread.run_sync(view, request)

    return endpoint
