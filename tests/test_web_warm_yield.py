"""The warm-up after a start gives its build slot to viewers, against a real
uvicorn server (docs/WEB.md, "The warm-up gives way"; docs/BENCHMARKS.md,
"Issue 16: the cold crowd")."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from rop.config import Settings
from rop.web import create_app, report_view, serve_in_thread
from tests.test_web_support import PERIOD, tiny_store

# A statement a few hundred ms long: the slow default page runs it again and
# again, so it is always in one when it is interrupted, or between two.
SLOW_SQL = "SELECT sum(hash(i)) FROM range(50000000) t(i)"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = tiny_store(tmp_path_factory.mktemp("web_warm_yield"))
    yield s
    s.close()


class SlowPage:
    """The start's default page, its first build slow (statements until ``done``,
    as the forecast's stage probabilities are at 1M deals), then the real one."""

    def __init__(self, real):
        self.real = real
        self.calls = 0
        self.finished = 0
        self.interrupted: list[BaseException] = []
        self.done = threading.Event()
        self.running = threading.Event()

    def __call__(self, request):
        self.calls += 1
        if self.calls == 1:
            cur = request.app.state.pool.get()
            self.running.set()
            deadline = time.monotonic() + 90
            try:
                while not self.done.is_set() and time.monotonic() < deadline:
                    cur.query(SLOW_SQL)
            except Exception as exc:
                self.interrupted.append(exc)
                raise
        page = self.real(request)
        self.finished += 1
        return page


def _serve(store, builds: int, slow: SlowPage):
    settings = Settings(db=store.path, report_builds=builds, webhook="http://127.0.0.1:1/rest/1/x/")
    app = create_app(settings, store, lambda *a, **k: {"deals": 0})
    srv = serve_in_thread(app)
    assert slow.running.wait(30), "the warm-up did not start its page"
    return app, srv


def _settle(app, slow: SlowPage, finished: int) -> None:
    deadline = time.monotonic() + 60
    while (slow.finished < finished or app.state.builds.running) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_warm_up_gives_its_slot_to_a_viewer_and_builds_the_page_after(store, monkeypatch):
    """ROP_REPORT_BUILDS=1 and the start's default page takes long: a viewer's
    report is answered at once (the page's statement interrupted, its slot given
    up), and the page is built once the viewer's build is done."""
    slow = SlowPage(report_view.report_page)
    monkeypatch.setattr(report_view, "report_page", slow)
    app, srv = _serve(store, 1, slow)
    try:
        with httpx.Client(base_url=srv.url, timeout=20) as web:
            began = time.monotonic()
            resp = web.get("/report.json", params=PERIOD)
            took = time.monotonic() - began
            assert resp.status_code == 200, resp.text[:200]
            assert took < 10, f"the viewer waited {took:.1f} s behind the warm-up"
            assert slow.interrupted, "the warm-up's statement ran on"
            _settle(app, slow, 1)
            assert slow.calls == 2 and slow.finished == 1  # tried again, and built
            # The default page is in the cache: the next viewer's is instant.
            hits = app.state.cache.hits
            assert web.get("/report").status_code == 200
            assert app.state.cache.hits > hits
            # The interrupted cursor (its thread's, reused) serves viewers as before.
            for day in range(1, 8):
                other = {**PERIOD, "from": f"2026-10-0{day}"}
                assert web.get("/report.json", params=other).status_code == 200
    finally:
        slow.done.set()
        srv.stop()


def test_a_viewer_with_a_slot_free_leaves_the_warm_up_alone(store, monkeypatch):
    """ROP_REPORT_BUILDS=2: the warm-up holds one slot, a viewer's build takes the
    other; nothing waits, so the default page is not stopped (the first page
    after a start is as fast as before)."""
    slow = SlowPage(report_view.report_page)
    monkeypatch.setattr(report_view, "report_page", slow)
    app, srv = _serve(store, 2, slow)
    try:
        with httpx.Client(base_url=srv.url, timeout=20) as web:
            resp = web.get("/report.json", params=PERIOD)
            assert resp.status_code == 200, resp.text[:200]
            time.sleep(0.5)
            assert not slow.interrupted and slow.finished == 0  # still running
            slow.done.set()
            _settle(app, slow, 1)
            assert slow.calls == 1 and slow.finished == 1 and not slow.interrupted
    finally:
        slow.done.set()
        srv.stop()


def test_a_viewer_waiting_for_a_slot_stops_the_warm_up_beside_another_build(store, monkeypatch):
    """ROP_REPORT_BUILDS=2: one viewer's build beside the warm-up's page, and a
    second viewer's would wait: the warm-up gives way to it."""
    import rop.report.build as build_module

    slow = SlowPage(report_view.report_page)
    monkeypatch.setattr(report_view, "report_page", slow)
    real_build = build_module.build_report
    release = threading.Event()
    held: list[object] = []

    def held_build(store, flt, **kwargs):
        if str(flt.date_from) == PERIOD["from"]:
            held.append(flt)
            release.wait(60)
        return real_build(store, flt, **kwargs)

    monkeypatch.setattr(build_module, "build_report", held_build)
    app, srv = _serve(store, 2, slow)
    try:
        with httpx.Client(base_url=srv.url, timeout=20) as web:
            first = threading.Thread(
                target=web.get, args=("/report.json",), kwargs={"params": PERIOD}
            )
            first.start()
            deadline = time.monotonic() + 20
            while not held and time.monotonic() < deadline:
                time.sleep(0.05)
            assert held, "the first viewer's build did not start"
            assert not slow.interrupted
            other = {**PERIOD, "from": "2026-10-02"}
            began = time.monotonic()
            assert web.get("/report.json", params=other).status_code == 200
            assert time.monotonic() - began < 10
            assert slow.interrupted, "the warm-up kept its slot from the second viewer"
            release.set()
            first.join(60)
            _settle(app, slow, 1)
            assert slow.finished == 1
    finally:
        release.set()
        slow.done.set()
        srv.stop()
