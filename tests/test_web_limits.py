"""Slow and abusive clients against a real uvicorn server: connections that
never finish a request are closed, bodies are capped, and a crowd of
expensive reports does not hold up cheap pages (docs/WEB.md, Security)."""

from __future__ import annotations

import socket
import threading
import time
from datetime import date, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from rop.config import Settings
from rop.web import create_app, serve_in_thread
from tests.test_web_support import PERIOD, tiny_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = tiny_store(tmp_path_factory.mktemp("web_limits"))
    yield s
    s.close()


@pytest.fixture
def server(store):
    """A server giving a client 1 s to send a request and 1 s idle between them."""
    runs = []
    app = create_app(
        Settings(
            db=store.path,
            webhook="http://127.0.0.1:1/rest/1/x/",
            request_timeout=1.0,
            keep_alive_timeout=1.0,
            max_body_bytes=4096,
        ),
        store,
        lambda *args, **kwargs: runs.append(args),
        cache_size=0,
    )
    srv = serve_in_thread(app)
    yield srv
    srv.stop()
    assert runs == []  # no half-sent request started a sync


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def closed_after(sock: socket.socket) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it said before."""
    start = time.monotonic()
    said = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        said += chunk
    return time.monotonic() - start, said


HEAD = b"GET /report.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
# A request answered at once: the keep-alive tests time the idle wait after an
# answer, not a report build (seconds on a loaded machine).
QUICK = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # connects and says nothing
        HEAD,  # headers never finished
        b"GE",  # not even the method
        # A body announced and never sent in full.
        b"POST /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Sec-Fetch-Site: same-origin\r\nContent-Length: 100\r\n\r\n{"full": ',
    ],
)
def test_a_request_that_never_arrives_is_closed(server, sent):
    with connect(server.url) as sock:
        sock.sendall(sent)
        took, said = closed_after(sock)
    assert took < 3.0, f"still open after {took:.1f} s"
    assert said == b"" or said.startswith(b"HTTP/1.1 408"), said[:200]


def test_a_slowloris_dripping_headers_is_closed(server):
    """Bytes keep arriving, but the request is never complete: the deadline
    counts from the connection, not from the last byte."""
    with connect(server.url) as sock:

        def drip() -> None:
            try:
                sock.sendall(HEAD)
                for i in range(100):
                    time.sleep(0.1)
                    sock.sendall(b"X-A%d: b\r\n" % i)
            except OSError:
                pass  # closed by the server: what we want

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        took, said = closed_after(sock)
    assert took < 3.0, f"open after {took:.1f} s"
    assert said == b"" or said.startswith(b"HTTP/1.1 408")


def test_an_idle_connection_after_an_answer_is_closed(server):
    with connect(server.url) as sock:
        sock.sendall(QUICK + b"\r\n")
        took, said = closed_after(sock)
    assert said.startswith(b"HTTP/1.1 ")
    assert took < 3.0


def test_a_second_request_on_a_kept_alive_connection_gets_the_same_deadline(server):
    with connect(server.url) as sock:
        sock.sendall(QUICK + b"\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        sock.sendall(HEAD)  # and the blank line never comes
        took, _ = closed_after(sock)
    assert took < 3.0


def test_a_slow_but_timely_request_is_answered(server):
    with connect(server.url) as sock:
        sock.sendall(HEAD)
        time.sleep(0.4)
        sock.sendall(b"Connection: close\r\n\r\n")
        _, said = closed_after(sock)
    assert said.startswith(b"HTTP/1.1 "), said[:100]
    assert not said.startswith(b"HTTP/1.1 408")


def test_a_huge_body_is_refused_unread(server):
    """100 MB announced: 413 before a byte of it is sent, and the connection closed."""
    with connect(server.url) as sock:
        sock.sendall(
            b"POST /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Sec-Fetch-Site: same-origin\r\nContent-Length: 104857600\r\n\r\n"
        )
        took, said = closed_after(sock)
    assert said.startswith(b"HTTP/1.1 413"), said[:200]
    assert b"ROP_MAX_BODY_BYTES" in said
    assert took < 1.0


def test_a_long_sync_request_is_not_cut_by_the_deadline(store):
    """The deadline is for sending the request; answering may take long
    (`rop sync` waits for the whole sync)."""
    gate = threading.Event()

    def slow_sync(cur, url, *, full=False, progress=None):
        gate.wait(3.0)
        return {"deals": 1}

    app = create_app(
        Settings(db=store.path, webhook="http://127.0.0.1:1/rest/1/x/", request_timeout=0.5),
        store,
        slow_sync,
        cache_size=0,
    )
    srv = serve_in_thread(app)
    try:
        threading.Timer(1.5, gate.set).start()
        resp = httpx.post(
            f"{srv.url}/api/sync",
            json={"full": False},
            headers={"x-rop-token": app.state.token},
            timeout=10,
        )
        assert resp.status_code == 200 and resp.json()["state"] == "done"
    finally:
        srv.stop()


# -- expensive reports and cheap pages ---------------------------------------------------


def test_cheap_requests_do_not_queue_behind_report_builds(store, monkeypatch):
    """45 different reports (more than the server's 40 worker threads) are held
    mid-build; a cached page, a drill-down and a static file still answer at
    once, at most ROP_REPORT_BUILDS builds run, and two identical requests
    share one build."""
    import rop.report.build as build_module

    app = create_app(Settings(db=store.path, report_builds=2), store)
    srv = serve_in_thread(app)
    real_build = build_module.build_report
    release = threading.Event()
    lock = threading.Lock()
    calls: list[tuple[date, date]] = []

    def held_build(store, flt, **kwargs):
        with lock:
            calls.append((flt.date_from, flt.date_to))
        release.wait(60)
        return real_build(store, flt, **kwargs)

    answers: dict[int, int] = {}

    def ask(i: int, params: dict) -> None:
        try:
            answers[i] = httpx.get(f"{srv.url}/report.json", params=params, timeout=90).status_code
        except httpx.HTTPError as exc:
            answers[i] = repr(exc)  # type: ignore[assignment]

    try:
        with httpx.Client(base_url=srv.url, timeout=30) as web:
            assert web.get("/report", params=PERIOD).status_code == 200  # now cached
        monkeypatch.setattr(build_module, "build_report", held_build)

        start = date(2025, 1, 1)
        periods = [
            {"period": "custom", "from": str(start), "to": str(start + timedelta(days=i))}
            for i in range(44)
        ]
        periods.append(dict(periods[7]))  # the same report twice
        crowd = [threading.Thread(target=ask, args=(i, p)) for i, p in enumerate(periods)]
        for t in crowd:
            t.start()
        deadline = time.monotonic() + 20
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # give the rest every chance to start building too

        with httpx.Client(base_url=srv.url, timeout=10) as web:
            for path, params in [
                ("/report", PERIOD),
                ("/drill.json", {**PERIOD, "figure": "deals_new"}),
                ("/static/app.js", None),
                ("/api/sync", None),
            ]:
                began = time.monotonic()
                resp = web.get(path, params=params)
                took = time.monotonic() - began
                assert resp.status_code == 200, (path, resp.text[:200])
                assert took < 2.0, f"{path} took {took:.1f} s behind the held builds"
        assert len(calls) == 2, f"{len(calls)} builds ran at once (limit 2)"
    finally:
        release.set()
        for t in crowd if "crowd" in locals() else []:
            t.join(90)
        srv.stop()
    assert all(code == 200 for code in answers.values()), answers
    assert len(answers) == 45
    # 44 different reports, each built once: the duplicate shared its build.
    assert len(calls) == 44 and len(set(calls)) == 44


def test_the_warm_up_after_a_sync_waits_for_a_build_slot(store, monkeypatch):
    """ROP_REPORT_BUILDS=1: a request's build holds the slot; the sync that ends
    meanwhile warms the default page only once the slot is free."""
    import rop.report.build as build_module

    def fake_sync(cur, url, *, full=False, progress=None):
        return {"deals": 0}

    settings = Settings(db=store.path, report_builds=1, webhook="http://127.0.0.1:1/rest/1/x/")
    app = create_app(settings, store, fake_sync)
    srv = serve_in_thread(app)
    real_build = build_module.build_report
    release = threading.Event()
    lock = threading.Lock()
    calls: list[date] = []

    def held_build(store, flt, **kwargs):
        with lock:
            calls.append(flt.date_to)
        release.wait(60)
        return real_build(store, flt, **kwargs)

    try:
        with httpx.Client(base_url=srv.url, timeout=60) as web:
            assert web.get("/report").status_code == 200  # the start's warm-up is done
            monkeypatch.setattr(build_module, "build_report", held_build)
            other = {"period": "custom", "from": "2025-01-01", "to": "2025-01-31"}
            asker = threading.Thread(
                target=web.get, args=("/report.json",), kwargs={"params": other}
            )
            asker.start()
            deadline = time.monotonic() + 20
            while not calls and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(calls) == 1
            started = web.post("/api/sync", json={"wait": False}, headers={"origin": srv.url})
            assert started.status_code == 202, started.text
            time.sleep(1.5)  # the warm-up had every chance to start
            assert len(calls) == 1, "the warm-up built beside the request's build (limit 1)"
            release.set()
            asker.join(60)
            deadline = time.monotonic() + 30
            while len(calls) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(calls) == 2  # then it ran
            while app.state.builds.running and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        release.set()
        srv.stop()


def test_the_warm_up_beyond_the_page_waits_while_a_viewers_build_waits_or_runs(store, monkeypatch):
    """ROP_REPORT_BUILDS=2: after a sync the warm-up builds the default page in a
    free slot, but the drill-downs' static steps after it (seconds of CPU at 1M
    deals) wait while a viewer's report is being built, and run once it is done:
    twenty viewers arriving after a start or a sync no longer share the slots and
    the cores with them (docs/BENCHMARKS.md, "Twenty viewers", round 7)."""
    import rop.report.build as build_module
    import rop.report.context as context_module
    from rop.report.context import warm_sources

    def fake_sync(cur, url, *, full=False, progress=None):
        return {"deals": 0}

    warmed: list[tuple[str, ...]] = []
    real_warm = context_module.warm_cache

    def counted_warm(store, portal=None, sources=None):
        warmed.append(tuple(sources or ()))
        return real_warm(store, portal, sources)

    monkeypatch.setattr(context_module, "warm_cache", counted_warm)
    settings = Settings(db=store.path, report_builds=2, webhook="http://127.0.0.1:1/rest/1/x/")
    app = create_app(settings, store, fake_sync)
    srv = serve_in_thread(app)
    real_build = build_module.build_report
    release = threading.Event()
    held: list[date] = []
    built: list[date] = []
    held_from = date(2025, 1, 1)

    def held_build(store, flt, **kwargs):
        if flt.date_from == held_from:
            held.append(flt.date_from)
            release.wait(60)
        built.append(flt.date_from)
        return real_build(store, flt, **kwargs)

    every = len(warm_sources())
    try:
        deadline = time.monotonic() + 60
        while len(warmed) < every and time.monotonic() < deadline:
            time.sleep(0.05)  # the start's warm-up, each source on its own
        assert len(warmed) == every and all(len(w) == 1 for w in warmed), warmed
        monkeypatch.setattr(build_module, "build_report", held_build)
        with httpx.Client(base_url=srv.url, timeout=60) as web:
            other = {"period": "custom", "from": str(held_from), "to": "2025-01-31"}
            asker = threading.Thread(
                target=web.get, args=("/report.json",), kwargs={"params": other}
            )
            asker.start()
            while not held and time.monotonic() < deadline:
                time.sleep(0.05)
            assert held, "the viewer's build did not start"
            before = len(warmed)
            started = web.post("/api/sync", json={"wait": False}, headers={"origin": srv.url})
            assert started.status_code == 202, started.text
            while len(built) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert built, "the warm-up did not build the default page in the free slot"
            time.sleep(1.5)  # the static steps had every chance to start
            assert len(warmed) == before, "static steps warmed beside a viewer's build"
            release.set()
            asker.join(60)
            while len(warmed) < before + every and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(warmed) == before + every  # then they ran, each on its own
            while app.state.builds.running and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        release.set()
        srv.stop()
