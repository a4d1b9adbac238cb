"""Server mode: the page's sync button of a webhook portal queues a job for `rop worker`.

On PostgreSQL the web tier is stateless (several processes behind a proxy),
so the button must not sync inside the web process: it registers the
webhook for the workers and queues one job (pressing again while it waits
merges into it), a real `rop worker` runs it, and the page follows the job
through the queue until it is done. Real PostgreSQL, real HTTP, a real
worker process and a real browser for the button itself.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rop.config import Settings
from tests.conftest import migrated_database
from tests.pg import Cluster
from tests.sync_portal import make_portal
from tests.test_pg_workers import (
    KEY,
    PORTAL_RATE,
    assert_exact,
    job_lines,
    jobs,
    queue_database,
    wait_until,
    workers,
)
from tests.test_sync import emulate

pytest.importorskip("procrastinate")


@contextlib.contextmanager
def web(url: str, webhook: str, ran: list[Any], **settings: Any) -> Iterator[Any]:
    """A `rop serve` on the PostgreSQL store; ``ran`` records any sync it runs itself."""
    from rop.web import create_app, serve_in_thread

    def runner(*args: Any, **kwargs: Any) -> None:
        ran.append(args)
        raise AssertionError("the web process ran a sync")

    app = create_app(Settings(db=url, webhook=webhook, **settings), runner=runner, cache_size=0)
    srv = serve_in_thread(app)
    try:
        yield app, srv.url
    finally:
        srv.stop()


def press(base: str, full: bool = False) -> httpx.Response:
    return httpx.post(
        base + "/api/sync", json={"full": full, "wait": False}, headers={"origin": base}, timeout=30
    )


def status(base: str) -> dict[str, Any]:
    return dict(httpx.get(base + "/api/sync", timeout=30).json())


def test_the_button_queues_one_job_a_worker_runs_and_the_page_follows(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    from playwright.sync_api import sync_playwright

    from tests.test_web_browser import ARGS, CHROMIUM, wait_for

    url = queue_database(pg_cluster)
    portal_dir = make_portal(tmp_path / "portal", deals=40, seed=3)
    ran: list[Any] = []
    with (
        emulate(portal_dir, **PORTAL_RATE) as emu,
        web(url, emu.webhook, ran, app_secret_key=KEY) as (app, base),
    ):
        assert status(base)["state"] == "idle"
        first = press(base)
        assert first.status_code == 202, first.text
        assert first.json()["state"] == "running" and first.json()["queued"] is True
        # Pressed again while it waits: the same job (procrastinate's queueing lock).
        again = press(base)
        assert again.status_code == 409 and again.json()["state"] == "running"
        assert jobs(url) == [(emu.key, "todo", 0)]
        assert status(base)["queued"] is True
        with workers(url, tmp_path, 1) as procs:
            wait_until(lambda: status(base)["state"] == "done", 60, "the worker's sync")
        final = status(base)
        assert final["runs"] == 1 and final["finished_at"] and not final["queued"]
        assert [(p, s) for p, s, _ in jobs(url)] == [(emu.key, "succeeded")]
        assert_exact(url, emu, portal_dir)
        # The worker ran it (its JSON job lines), not the web process.
        done = [r for r in job_lines(procs[0][1]) if r["state"] == "done"]
        assert [r["portal"] for r in done if r["portal"] != "*"] == [emu.key]  # "*": digests
        assert ran == []
        assert not any(t.name == "rop-sync" for t in threading.enumerate())

        # The button on the page: a click queues, the page says it waits for a
        # worker, and reloads with the new data once the worker is done.
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(locale="en-US")
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(base + "/report?lang=en")
                assert page.is_enabled("#sync-button")
                page.click("#sync-button")
                wait_for(
                    page,
                    "document.getElementById('sync-progress').textContent.includes('Waiting for a sync worker')",
                )
                assert page.is_disabled("#sync-button")
                assert [s for _, s, _ in jobs(url)] == ["succeeded", "todo"]
                with workers(url, tmp_path, 1), page.expect_navigation(timeout=60_000):
                    pass  # the page reloads when the worker's job is done
                # A press the workers cannot take (no key, a webhook they do not
                # know): the reason beside the button, which stays usable.
                other = "https://other.example/rest/1/tok/"
                with web(url, other, ran, app_secret_key="", app_client_secret=None) as (_, b2):
                    page.goto(b2 + "/report?lang=en")
                    page.click("#sync-button")
                    wait_for(
                        page,
                        "document.getElementById('sync-progress').textContent.includes('ROP_APP_SECRET_KEY')",
                    )
                    assert page.is_enabled("#sync-button")
                assert errors == []
            finally:
                browser.close()
        assert [s for _, s, _ in jobs(url)] == ["succeeded", "succeeded"]
        assert status(base)["runs"] == 2
        assert ran == []


def test_what_the_button_says_when_the_workers_cannot_sync(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    """No job queue in the store, or no key to hand the webhook to the workers:
    one clear 409 naming what to run or set, the page still renders, nothing queued."""
    hook = "https://a.example/rest/1/tok/"
    bare = migrated_database(pg_cluster)  # migrated without the workers' queue
    ran: list[Any] = []
    with web(bare, hook, ran, app_secret_key=KEY) as (_, base):
        assert status(base)["state"] == "idle"  # the page's status line does not fail
        refused = press(base)
        assert refused.status_code == 409
        assert "rop migrate" in refused.json()["error"]["message"]

    url = queue_database(pg_cluster)
    with web(url, hook, ran, app_secret_key="", app_client_secret=None) as (_, base):
        refused = press(base)
        assert refused.status_code == 409
        message = refused.json()["error"]["message"]
        assert "ROP_APP_SECRET_KEY" in message and "rop sync --queue" in message
        assert jobs(url) == []
    # Once `rop sync --queue` has registered the webhook, the key is not needed to queue.
    from rop.jobs.sources import Sources
    from rop.store.db import open_store
    from tests.test_pg_workers import keys

    with open_store(url) as store:
        Sources(store, keys()).add_webhook(hook)
    with web(url, hook, ran, app_secret_key="", app_client_secret=None) as (_, base):
        assert press(base).status_code == 202
        assert jobs(url) == [("a.example", "todo", 0)]
    assert ran == []
