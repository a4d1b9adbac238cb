"""Server mode's digests: `rop worker` processes send what is due, once (issue 14).

Real PostgreSQL (tests/pg.py), two real `rop worker` subprocesses, the
emulator (records im.notify.system.add) and an aiosmtpd server. A reader's
daily digest fell due a minute ago; the workers' periodic task sends it: one
notification and one e-mail. A web server's tick (rop.web.digests, the
thread `rop serve` runs) and another run of the task send nothing more.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from rop.bitrix.sync import run_sync
from rop.digests.subscriptions import add, make
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.store.db import open_store
from tests.digest_portal import write_digest_portal
from tests.emulator_portal import TOKEN
from tests.pg import Cluster
from tests.smtp_server import smtp_server
from tests.test_pg_workers import KEY, jobs, keys, queue_database, wait_until, workers

pytest.importorskip("procrastinate")

READER = 3  # a manager of the digest portal, in Moscow


@pytest.fixture
def emulated(tmp_path: Path) -> Iterator[dict[str, Any]]:
    folder = write_digest_portal(tmp_path / "portal")
    app = create_app(folder, EmulatorConfig(rate_limit=False, test_api=True))
    with serve_in_thread(app) as base:
        yield {"base": base, "webhook": f"{base}/rest/1/{TOKEN}/"}


def _notify_calls(base: str) -> list[Any]:
    return list(httpx.get(base + "/_emulator/im").json()["calls"])


def _sends(url: str, portal: str) -> list[tuple[str, str]]:
    """(channel, state) of the portal's slot claims (row-level security: bound to it)."""
    with open_store(url) as store:
        store.use_portal(portal)
        rows = store.query("SELECT channel, state FROM digest_sends ORDER BY channel")
    return [(str(c), str(s)) for c, s in rows]


@pytest.mark.timeout(300)
def test_workers_send_a_due_digest_once(
    tmp_path: Path, pg_cluster: Cluster, emulated: dict[str, Any]
) -> None:
    from rop.jobs.digests import DIGESTS_TASK
    from rop.jobs.sources import Sources

    url = queue_database(pg_cluster)
    # Due a minute ago in the reader's zone; subscribed yesterday.
    due = datetime.now(UTC).astimezone(ZoneInfo("Europe/Moscow")) - timedelta(minutes=1)
    with open_store(url) as store:
        portal = Sources(store, keys()).add_webhook(emulated["webhook"])
        store.use_portal(portal)
        run_sync(store, emulated["webhook"], rate_per_second=100)
        sub = add(store, make(portal, READER, frequency="daily", workdays_only=False,
                              at_time=due.strftime("%H:%M"), channels="chat,email"))  # fmt: skip
        store.execute(
            "UPDATE digest_subscriptions SET created_at = ? WHERE portal = ? AND id = ?",
            [datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1), portal, sub.id],
        )
    assert _notify_calls(emulated["base"]) == []

    with smtp_server() as mailbox, contextlib.ExitStack() as stack:
        settings = {
            "ROP_SMTP_HOST": mailbox.host,
            "ROP_SMTP_PORT": str(mailbox.port),
            "ROP_SMTP_SECURITY": "none",
            "ROP_DIGESTS_SKIP_EMPTY": "false",  # whatever yesterday held, it goes out
        }
        stack.enter_context(workers(url, tmp_path, 2, **settings))
        # A worker defers the minute's tick as it starts (procrastinate's periodic deferrer).
        sent = [("chat", "sent"), ("email", "sent")]
        wait_until(lambda: _sends(url, portal) == sent, 90, "the digest sent by the workers")
        wait_until(lambda: len(mailbox.messages) == 1, 10, "the e-mail")
        calls = _notify_calls(emulated["base"])
        assert [c["method"] for c in calls] == ["im.notify.system.add"]
        assert calls[0]["user_id"] == READER
        assert mailbox.recipients[0] == [f"user{READER}@example.ru"]

        # A web server sending too (ROP_DIGESTS=true) finds the slot claimed.
        from rop.config import Settings
        from rop.web.digests import due_digests

        web = Settings(db=url, webhook=emulated["webhook"], smtp_host=mailbox.host,
                       smtp_port=mailbox.port, smtp_security="none",
                       digests_skip_empty=False, app_secret_key=KEY)  # fmt: skip
        with open_store(url) as store:
            assert due_digests(store, web) == []
        # Another run of the periodic task, by whichever worker takes it: nothing more.
        job_id = _defer_again(url, DIGESTS_TASK)
        wait_until(lambda: _status(url, job_id) == "succeeded", 60, "the second digests run")
        assert len(_notify_calls(emulated["base"])) == 1
        assert len(mailbox.messages) == 1
        assert _sends(url, portal) == sent
    assert all(state != "failed" for _, state, _ in jobs(url, DIGESTS_TASK))


def _status(url: str, job_id: int) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT status::text FROM procrastinate_jobs WHERE id = %s",
                           [job_id]).fetchone()  # fmt: skip
    return str(row[0]) if row else ""


def _defer_again(url: str, task: str) -> int:
    """One more run of ``task``; its queueing lock refuses while a tick's job waits."""
    import time

    from procrastinate.exceptions import AlreadyEnqueued

    from rop.jobs.defer import deferrer

    app = deferrer(url)
    try:
        for _ in range(50):
            with contextlib.suppress(AlreadyEnqueued):
                return int(app.configure_task(task).defer(timestamp=0))
            time.sleep(0.2)
    finally:
        app.close()
    raise AssertionError(f"{task} stayed queued")


@pytest.mark.timeout(300)
def test_email_only_digests_on_postgres_without_webhook_or_app(
    tmp_path: Path, pg_cluster: Cluster, emulated: dict[str, Any]
) -> None:
    """A store copied once (no webhook registered for the workers, no installed app):
    a `rop worker` sends its portals' digests by e-mail alone, the link to
    ROP_REPORT_URL; nothing goes to Bitrix24, and a web server's tick sends nothing more."""
    url = queue_database(pg_cluster)
    due = datetime.now(UTC).astimezone(ZoneInfo("Europe/Moscow")) - timedelta(minutes=1)
    with open_store(url) as store:
        run_sync(store, emulated["webhook"], rate_per_second=100)  # a copy, not a source
        portal = str(store.scalar("SELECT portal FROM portals"))
        store.use_portal(portal)
        assert store.query("SELECT count(*) FROM sync_sources") == [(0,)]
        sub = add(store, make(portal, READER, frequency="daily", workdays_only=False,
                              at_time=due.strftime("%H:%M"), channels="email"))  # fmt: skip
        store.execute(
            "UPDATE digest_subscriptions SET created_at = ? WHERE portal = ? AND id = ?",
            [datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1), portal, sub.id],
        )
    with smtp_server() as mailbox:
        settings = {
            "ROP_SMTP_HOST": mailbox.host,
            "ROP_SMTP_PORT": str(mailbox.port),
            "ROP_SMTP_SECURITY": "none",
            "ROP_DIGESTS_SKIP_EMPTY": "false",
            "ROP_REPORT_URL": "https://rop.example.ru",
            "ROP_WEBHOOK": "",
        }
        with workers(url, tmp_path, 1, **settings):
            wait_until(lambda: _sends(url, portal) == [("email", "sent")], 90, "the e-mail digest")
            wait_until(lambda: len(mailbox.messages) == 1, 10, "the e-mail")
        assert mailbox.recipients[0] == [f"user{READER}@example.ru"]
        body = mailbox.messages[0].get_body(("plain",)).get_content()
        assert "https://rop.example.ru/report/?lang=" in body and "via=link" in body
        assert _notify_calls(emulated["base"]) == []  # no chat: no connection to Bitrix24

        from rop.config import Settings
        from rop.web.digests import due_digests

        web = Settings(db=url, smtp_host=mailbox.host, smtp_port=mailbox.port,
                       smtp_security="none", digests_skip_empty=False)  # fmt: skip
        with open_store(url) as store:
            assert due_digests(store, web) == []
        assert len(mailbox.messages) == 1
