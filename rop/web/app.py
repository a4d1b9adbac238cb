"""The app factory and the server: nothing is built until ``create_app`` runs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from rop.config import Settings
from rop.store.db import Store, StoreOverloaded, open_store
from rop.store.dialect import POSTGRES
from rop.store.holder import announce
from rop.web import bidi, errors, report_view, routes
from rop.web.access_log import AccessLog
from rop.web.builds import Builds, Yielding
from rop.web.cache import ReportCache
from rop.web.formatting import fmt_cell, fmt_value
from rop.web.limits import BodyLimit, deadline_protocol
from rop.web.queued_sync import QueuedWebhookSync
from rop.web.security import SameOriginGuard, SecurityHeaders, TrustedHosts
from rop.web.sync import Scheduler, SyncJob
from rop.web.urls import Urls

HERE = Path(__file__).parent
log = logging.getLogger("rop.web")


class StorePool:
    """One DuckDB cursor per worker thread: a connection is not shared across threads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Store] = []

    def get(self) -> Store:
        cur = getattr(self._local, "store", None)
        if cur is None:
            cur = self.store.cursor()
            self._local.store = cur
            with self._lock:
                self._all.append(cur)
        return cur

    def close(self) -> None:
        """Close every cursor handed out (DuckDB aborts on cursors left at exit)."""
        with self._lock:
            cursors, self._all = self._all, []
        for cur in cursors:
            with contextlib.suppress(Exception):
                cur.close()
        self._local = threading.local()


def _templates(urls: Urls, token: str) -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every CRM string is data: escaped, always
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = lambda value, kind, currency="RUB", lang="ru": fmt_value(
        kind, value, currency, lang
    )
    env.filters["cell"] = lambda value, col, currency="RUB", lang="ru": fmt_cell(
        col.get("kind", "text"), value, col.get("key", ""), currency, lang
    )
    # Every CRM string in its own <bdi> (rop.web.bidi): "bdi" for a value,
    # "isolated" for a sentence composed around names.
    env.filters["bdi"] = bidi.bdi
    env.filters["isolated"] = bidi.html
    env.globals["urls"] = urls
    # Sent back by the page's own requests that change state (rop.web.security).
    env.globals["request_token"] = token
    return Jinja2Templates(env=env)


def create_app(
    settings: Settings, store: Store | None = None, runner: Any = None, cache_size: int = 64
) -> Starlette:
    """The web report over ``store`` (opened from ``settings.db`` when not given).

    ``runner`` replaces ``rop.bitrix.sync.run_sync`` (tests use a fake);
    ``cache_size`` built reports are kept until the data changes (0: none).
    """
    owned = store is None
    if store is None:
        store = open_store(settings.db)
    # A server's memory stays bounded: the engine's buffer pool and threads.
    store.bound(settings.db_memory_limit, settings.db_threads)
    urls = Urls()
    job: SyncJob | QueuedWebhookSync
    if store.dialect is POSTGRES:
        # Server mode: the button queues a job for `rop worker` (stateless web tier).
        job = QueuedWebhookSync(
            str(settings.db),
            store,
            settings.webhook,
            settings.app_secret_key or settings.app_client_secret,
        )
    else:
        job = SyncJob(
            store,
            settings.webhook,
            runner=runner,
            options={
                "rate_per_second": settings.rate_per_second,
                "rate_burst": settings.rate_burst,
                "timezone": settings.timezone,
            },
        )
    # Server mode (PostgreSQL): the workers' periodic re-scan syncs every
    # portal (rop.jobs); every web process behind the proxy would sync too.
    scheduler = Scheduler(job, 0 if store.dialect is POSTGRES else settings.sync_interval_minutes)
    pool = StorePool(store)
    cache = ReportCache(cache_size)
    warmers: list[threading.Thread] = []

    def after_sync() -> None:
        # A sync changes the data: drop what was built and build the default
        # page again now, so the reload that follows is instant.
        cache.clear()
        warm(app)

    job.on_finish = after_sync

    # Bitrix24 application mode (docs/WEB.md): installed portals, each its own.
    appmode: Any = None
    app_middleware: list[Middleware] = []
    app_routes: list[Any] = []
    if settings.app_mode:
        from rop.web.appmode.setup import app_mode_parts

        appmode, app_middleware, app_routes = app_mode_parts(settings, store, cache.clear)
    # Scheduled digests (docs/DIGESTS.md): what is due, once a minute.
    from rop.web.digests import DigestScheduler

    digests = DigestScheduler(store, settings, appmode)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Warm-ups started from other threads (after a sync) take a build slot here.
        app.state.loop = asyncio.get_running_loop()
        scheduler.start()
        if appmode is not None:
            appmode.start()
        digests.start()
        if cache_size > 0:
            warmer = threading.Thread(target=warm, args=(app,), name="rop-warm", daemon=True)
            warmers.append(warmer)
            warmer.start()
        try:
            yield
        finally:
            app.state.stopping.set()
            scheduler.stop()
            digests.stop()
            if isinstance(job, SyncJob):
                job.wait(timeout=30)
            else:
                job.close()  # the workers' job goes on without this process
            if appmode is not None:
                appmode.stop()
            for warmer in warmers:
                warmer.join(timeout=60)
            # A warm-up or request build still running in its slot reads the store.
            for _ in range(600):
                if not app.state.builds.running:
                    break
                await asyncio.sleep(0.1)
            pool.close()
            if owned:
                store.close()

    handlers: dict[Any, Any] = {
        errors.WebError: errors.handle,
        HTTPException: errors.handle,
        StoreOverloaded: errors.handle,
    }
    with contextlib.suppress(ImportError):
        from rop.report.filter import AccessDenied, ReportInputError

        handlers[AccessDenied] = errors.handle
        handlers[ReportInputError] = errors.handle

    # The page's requests that change state send it back when their browser
    # sends neither Origin nor Sec-Fetch-Site (rop.web.security). Not the
    # command line's token of <db>.server.json, which grants more.
    token = secrets.token_urlsafe(32)
    app = Starlette(
        # Outermost first: headers on every answer (refusals included), then
        # who may ask (host name), how much (body size), and from where (origin).
        middleware=[
            Middleware(AccessLog),
            Middleware(SecurityHeaders),
            Middleware(TrustedHosts, allowed_hosts=settings.host_names()),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
            Middleware(SameOriginGuard),
            # The report page is ~0.5-0.7 MB of table markup that compresses ~15:1;
            # a middle level costs a few ms per page where 9 costs several times that.
            Middleware(GZipMiddleware, minimum_size=1024, compresslevel=5),
            *app_middleware,
        ],
        routes=[
            *routes.ROUTES,
            *app_routes,
            Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.pool = pool
    app.state.urls = urls
    app.state.templates = _templates(urls, token)
    app.state.sync = job
    app.state.scheduler = scheduler
    app.state.cache = cache
    app.state.builds = Builds(cache, settings.report_builds)
    app.state.stopping = threading.Event()
    app.state.token = token
    # The app mode sets a callable returning the installed portals' origins
    # (rop.web.security.frame_ancestors); None: only our own pages frame ours.
    app.state.frame_ancestors = appmode.frame_ancestors if appmode is not None else None
    app.state.appmode = appmode
    app.state.digests = digests
    return app


def warm(app: Starlette) -> None:
    """Build the default page (this month, the configured viewer) into the cache,
    then the other sections' static steps.

    While the server runs, in its report build slots (rop.web.builds): the page
    is a build like any request's and waits its turn; each static step after it
    waits until no request's build waits or runs (``Builds.run_when_idle``). Each
    piece gives way to viewers (``Yielding``): stopped when a request's build
    finds every slot taken, it is tried again once no request's build waits or
    runs (what it had computed, the static steps' tables, stays).
    """
    from rop.report.context import warm_sources

    loop = getattr(app.state, "loop", None)
    if loop is not None and loop.is_running():
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a thread of our own, not the loop's: hand it over
            builds: Builds = app.state.builds
            pieces = [functools.partial(_warm, app)]
            pieces += [functools.partial(_warm_steps, app, [name]) for name in warm_sources()]
            for i, piece in enumerate(pieces):
                first = i == 0  # the page at once; the rest once idle
                while True:
                    yielding = Yielding()
                    work = functools.partial(_giving_way, app, piece, yielding)
                    run = (
                        builds.run(work, yielding)
                        if first
                        else builds.run_when_idle(work, yielding)
                    )
                    if _in_slot(app, loop, run):
                        break
                    if not yielding.asked or app.state.stopping.is_set():
                        return  # nothing to warm, or shutting down
                    log.debug("the warm-up gave its slot to a viewer; again once idle")
                    first = False
            return
    if _warm(app):
        _warm_steps(app, None)


def _giving_way(app: Starlette, piece: Any, yielding: Yielding) -> bool:
    """``piece`` of the warm-up in a build slot, on this thread's store handle,
    which ``yielding`` interrupts when a viewer's build waits for the slot."""
    yielding.handle = app.state.pool.get()
    try:
        if yielding.asked:  # asked before it began: a viewer waits already
            return False
        return bool(piece())
    finally:
        yielding.handle = None


def _in_slot(app: Starlette, loop: asyncio.AbstractEventLoop, work: Any) -> bool:
    """Run the coroutine ``work`` on the server's loop from this thread; False
    when it failed, gave way to a viewer (``Yielding.asked``: the warm-up tries
    it again) or the server is stopping (the warm-up then ends)."""
    future = asyncio.run_coroutine_threadsafe(work, loop)
    stopping: threading.Event = app.state.stopping
    while True:
        try:
            return bool(future.result(timeout=0.5))
        except concurrent.futures.TimeoutError:
            # Shutting down, the loop may be waiting for this very thread;
            # a build under way finishes in its slot, and the shutdown waits
            # for it; one still waiting for a slot or a quiet moment is dropped.
            if stopping.is_set():
                future.cancel()
                return False
            continue
        except Exception:  # an empty store: the page shows it itself
            log.debug("nothing to warm", exc_info=True)
            return False


def _warm(app: Starlette) -> bool:
    """The default page into the cache; False when there is nothing to warm."""
    from starlette.requests import Request

    if getattr(app.state, "stopping", threading.Event()).is_set():
        return False  # a slot that came free during the shutdown: the store is closing

    scope = {
        "type": "http",
        "app": app,
        "method": "GET",
        "path": "/report",
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    try:
        report_view.report_page(Request(scope))
    except Exception:  # an empty store or a bad setting shows on the page itself
        log.debug("nothing to warm", exc_info=True)
        return False
    return True


def _warm_steps(app: Starlette, sources: list[str] | None) -> bool:
    """What the default page did not need: the other sections' static steps
    (rop.report.context.warm_cache), so the first drill-down after a start or a
    sync does not pay for them (its page names its own rows)."""
    if getattr(app.state, "stopping", threading.Event()).is_set():
        return False
    try:
        from rop.report.context import warm_cache

        warm_cache(app.state.pool.get(), sources=sources)
    except Exception:
        log.debug("static steps not warmed", exc_info=True)
        return False
    return True


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@dataclass
class RunningServer:
    url: str
    thread: threading.Thread
    server: Any

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _uvicorn(app: Starlette) -> Any:
    import uvicorn

    settings: Settings = app.state.settings
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        # Idle between requests: closed after this; a request that is slow to
        # arrive: 408 and closed (rop.web.limits).
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]
        http=deadline_protocol(settings.request_timeout),
    )
    return uvicorn.Server(config)


def _announce(app: Starlette, url: str) -> Path | None:
    store = app.state.store
    path = str(getattr(store, "path", ":memory:"))
    # PostgreSQL needs no forwarding: every process may write the store.
    if path == ":memory:" or getattr(store, "dialect", None) is POSTGRES:
        return None
    # The token lets the command line read through this server (rop.web.local).
    target, app.state.local_token = announce(path, url)
    return target


def _retract(target: Path | None) -> None:
    if target is None:
        return
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(target.read_text(encoding="utf-8"))
        if data.get("pid") == os.getpid():
            target.unlink()


def serve(app: Starlette, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until interrupted; print the URL, announce it in ``<db>.server.json``."""
    sock = _bind(host, port)
    url = _url(host, sock.getsockname()[1])
    announced = _announce(app, url)
    print(f"ROP Report: {url}/report", flush=True)
    # uvicorn stops gracefully on SIGTERM, then raises the signal again with
    # the handler it found; the default one would end the process before the
    # announcement is removed, so the one it finds exits through `finally`.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        _uvicorn(app).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        _retract(announced)
        sock.close()


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def serve_in_thread(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start a server in a background thread (tests, benchmarks); ``.stop()`` ends it."""
    sock = _bind(host, port)
    url = _url(host, sock.getsockname()[1])
    server = _uvicorn(app)
    announced = _announce(app, url)

    def run() -> None:
        try:
            server.run(sockets=[sock])
        finally:
            _retract(announced)
            sock.close()

    thread = threading.Thread(target=run, name="rop-web", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    return RunningServer(url, thread, server)
