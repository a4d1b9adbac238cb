"""Scheduled digests end to end: emulator (chat) + a real SMTP server (docs/DIGESTS.md).

The portal (tests/digest_portal.py) is copied over REST into a DuckDB file
once; each test works on its own copy of that file. Weekly digests for an
administrator (1), a head (2) and a manager (3) go out on Monday 30 November
2026 at 09:00 in each reader's zone.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from rop.bitrix.sync import run_sync
from rop.digests import sends
from rop.digests.chat import NotifySender
from rop.digests.content import KEY_FIGURES, ROW_FIGURES, Links, report_filter
from rop.digests.mail import MailSender, SmtpSettings
from rop.digests.numbers import show
from rop.digests.run import DigestOptions, send_due_digests, send_now
from rop.digests.subscriptions import add, make
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.report.build import build_report
from rop.report.scope import viewer_scope
from rop.store.db import Store, open_store
from tests.digest_portal import SCRIPT_TITLE, SUPPORT_TITLE, write_digest_portal
from tests.emulator_portal import TOKEN
from tests.smtp_server import Mailbox, smtp_server

MONDAY = date(2026, 11, 30)
MSK_NINE = datetime(2026, 11, 30, 6, 0, 5)  # 09:00:05 in Moscow, UTC
NAMES = {u: f"User{u} Last{u}" for u in range(1, 7)}
LINKS = Links(report_url="https://rop.example.ru/report")


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = write_digest_portal(tmp_path_factory.mktemp("digest-portal"))
    app = create_app(folder, EmulatorConfig(rate_limit=False, test_api=True))
    with serve_in_thread(app) as base:
        webhook = f"{base}/rest/1/{TOKEN}/"
        seed = tmp_path_factory.mktemp("digest-store") / "seed.duckdb"
        with open_store(seed) as store:
            run_sync(store, webhook, rate_per_second=100)
        yield {"base": base, "webhook": webhook, "seed": seed, "app": app}


@pytest.fixture
def store(portal: dict[str, Any], tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "rop.duckdb"
    shutil.copy(portal["seed"], path)
    with open_store(path) as opened:
        yield opened


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


def _im(portal: dict[str, Any]) -> dict[str, Any]:
    return httpx.get(portal["base"] + "/_emulator/im").json()


def _clear_im(portal: dict[str, Any]) -> None:
    from rop.emulator.notify import inbox

    box = inbox(portal["app"].state.portal)
    with box.lock:
        box.calls.clear()
        box.notifications.clear()


def _key(store: Store) -> str:
    return str(store.scalar("SELECT portal FROM portals"))


def _subscribe(store: Store, user: int, **kw: Any) -> Any:
    return add(store, make(_key(store), user, frequency="weekly", weekday="mon",
                           channels="chat,email", created_by=None, **kw))  # fmt: skip


def _send(store: Store, portal: dict[str, Any], box: Mailbox, now: datetime, **kw: Any) -> list:
    smtp = SmtpSettings(host=box.host, port=box.port, security="none", sender="rop@example.ru")
    return send_due_digests(
        store, now, chat=NotifySender(portal["webhook"], rate_per_second=50),
        mail=MailSender(smtp), options=DigestOptions(links=LINKS, **kw),
    )  # fmt: skip


def _grid(attach: dict[str, Any]) -> dict[str, str]:
    return {
        item["NAME"].strip("\u2068\u2069"): item["VALUE"]
        for block in attach["BLOCKS"]
        for item in block.get("GRID", [])
    }


@pytest.fixture
def weekly(store: Store, portal: dict[str, Any], mailbox: Mailbox) -> dict[str, Any]:
    _clear_im(portal)
    subs = {u: _subscribe(store, u, language="en") for u in (1, 2, 3)}
    # Created on Friday: Monday's slot is the first.
    for sub in subs.values():
        store.execute("UPDATE digest_subscriptions SET created_at = ? WHERE id = ?",
                      [datetime(2026, 11, 27, 9, 0), sub.id])  # fmt: skip
    outcomes = _send(store, portal, mailbox, MSK_NINE)
    return {"subs": subs, "outcomes": outcomes}


def test_weekly_digests_carry_each_readers_own_report(store, portal, mailbox, weekly):
    done = sorted((o.user_id, o.channel, o.outcome) for o in weekly["outcomes"])
    assert done == [(u, c, "sent") for u in (1, 2, 3) for c in ("chat", "email")]
    notes = {int(u): n for u, n in _im(portal)["notifications"].items()}
    mails = {int(r[0].split("@")[0].removeprefix("user")): m
             for r, m in zip(mailbox.recipients, mailbox.messages, strict=True)}  # fmt: skip
    assert set(notes) == set(mails) == {1, 2, 3}
    key = _key(store)
    for reader in (1, 2, 3):
        sub = weekly["subs"][reader]
        flt = report_filter(sub, MONDAY)
        assert (flt.date_from, flt.date_to) == (date(2026, 11, 23), date(2026, 11, 29))
        report = build_report(store, flt, portal=key)
        cols = {c["key"]: c for c in report["columns"]}
        total = report["total"]["figures"]
        (note,) = notes[reader]
        grid = _grid(json.loads(json.dumps(note["attach"])))
        html = mails[reader].get_body(("html",)).get_content()
        text = mails[reader].get_body(("plain",)).get_content()
        # Exactly the figures the report shows this reader, in chat and e-mail alike.
        for k in KEY_FIGURES:
            value = show(total[k], cols[k]["kind"], "en", report["currency"])
            assert grid[cols[k]["label_en"]].split(" (")[0] == value, (reader, k)
            assert value in html and value in text
        # A head's and an administrator's managers: the report's rows, with their figures.
        rows = {r["name_en"]: r for r in report["rows"]}
        shown = {name for name in grid if name in NAMES.values()}
        if reader == 3:
            assert shown == set() and set(rows) == {NAMES[3]}
        else:
            assert shown == set(rows)
            for name, row in rows.items():
                values = " · ".join(show(row["figures"][k], cols[k]["kind"], "en", "RUB")
                                    for k in ROW_FIGURES)  # fmt: skip
                assert grid[name] == values
        # Nothing outside the reader's scope: no other manager's name anywhere.
        scope = viewer_scope(store, key, reader)
        body = json.dumps(note, ensure_ascii=False) + html + text
        for uid, name in NAMES.items():
            if not scope.sees(uid):
                assert name not in body, (reader, name)
        assert (SUPPORT_TITLE in body) == scope.sees(5)
        assert "rop.example.ru/report/?lang=en&period=custom&from=2026-11-23&to=2026-11-29" in body


def test_a_deal_titled_script_is_text_in_the_mail_and_not_a_tag_in_chat(portal, mailbox, weekly):
    mail = next(m for r, m in zip(mailbox.recipients, mailbox.messages, strict=True)
                if r == ["user3@example.ru"])  # fmt: skip
    html = mail.get_body(("html",)).get_content()
    assert "<script>" not in html and "alert(" in html
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; [url=https://evil.example]" in html
    )
    note = _im(portal)["notifications"]["3"][0]
    blob = json.dumps(note["attach"], ensure_ascii=False)
    assert "[url=https://evil" not in blob and "[\u200burl=https://evil.example]" in blob
    assert SCRIPT_TITLE.replace("[", "[\u200b") in blob


def test_a_restart_in_the_sending_minute_sends_nothing_twice(store, portal, mailbox, weekly):
    sent_mail = len(mailbox.messages)
    calls = len(_im(portal)["calls"])
    path = store.path
    store.close()
    # The server comes back within the same minute and its scheduler ticks again.
    with open_store(path) as again:
        outcomes = _send(again, portal, mailbox, datetime(2026, 11, 30, 6, 0, 40))
        assert outcomes == []
        assert len(mailbox.messages) == sent_mail and len(_im(portal)["calls"]) == calls
        states = again.query("SELECT DISTINCT state FROM digest_sends")
        assert states == [("sent",)]


def test_the_head_is_due_at_nine_in_yekaterinburg_not_in_moscow(store, portal, mailbox):
    _clear_im(portal)
    for u in (2, 3):
        sub = _subscribe(store, u)
        store.execute("UPDATE digest_subscriptions SET created_at = ? WHERE id = ?",
                      [datetime(2026, 11, 27, 9, 0), sub.id])  # fmt: skip
    # 04:00 UTC: 09:00 in Yekaterinburg (head 2), 07:00 in Moscow (manager 3).
    outcomes = _send(store, portal, mailbox, datetime(2026, 11, 30, 4, 0, 10))
    assert {(o.user_id, o.slot) for o in outcomes} == {(2, "2026-11-30 09:00")}


def test_smtp_refusing_then_accepting_ends_in_one_delivery_and_a_logged_failure(
    store, portal, mailbox
):
    sub = add(store, make(_key(store), 3, frequency="weekly", weekday="mon", channels="email"))
    store.execute("UPDATE digest_subscriptions SET created_at = ? WHERE id = ?",
                  [datetime(2026, 11, 27, 9, 0), sub.id])  # fmt: skip
    mailbox.refuse = 1
    first = _send(store, portal, mailbox, MSK_NINE)
    assert [(o.outcome, o.channel) for o in first] == [("retry", "email")]
    assert "451" in (first[0].reason or "") and mailbox.messages == []
    # Not yet due again half a minute later; due after the backoff (1 minute).
    assert _send(store, portal, mailbox, datetime(2026, 11, 30, 6, 0, 35)) == []
    second = _send(store, portal, mailbox, datetime(2026, 11, 30, 6, 1, 10))
    assert [o.outcome for o in second] == ["sent"]
    assert len(mailbox.messages) == 1 and mailbox.refused == 1
    # The same slot never again.
    assert _send(store, portal, mailbox, datetime(2026, 11, 30, 6, 5, 0)) == []
    assert len(mailbox.messages) == 1
    lines = sends.log_lines(store, _key(store))
    assert [line["outcome"] for line in reversed(lines)] == ["retry", "sent"]
    assert "SMTP 451" in lines[-1]["reason"]


def test_an_empty_digest_is_skipped_and_logged(store, portal, mailbox):
    _clear_im(portal)
    # User 6 (fired) owns nothing: no figures that week, nothing overdue.
    sub = _subscribe(store, 6)
    store.execute("UPDATE digest_subscriptions SET created_at = ? WHERE id = ?",
                  [datetime(2026, 11, 27, 9, 0), sub.id])  # fmt: skip
    outcomes = _send(store, portal, mailbox, MSK_NINE)
    assert {o.outcome for o in outcomes} == {"skipped"}
    assert mailbox.messages == [] and _im(portal)["calls"] == []
    # Configurable: with skip_empty off it goes.
    store.execute("DELETE FROM digest_sends")
    outcomes = _send(store, portal, mailbox, MSK_NINE, skip_empty=False)
    assert {o.outcome for o in outcomes} == {"sent"}


def test_a_resend_of_the_same_period_replaces_the_notification(store, portal, mailbox):
    _clear_im(portal)
    sub = _subscribe(store, 3)
    smtp = SmtpSettings(host=mailbox.host, port=mailbox.port, security="none")
    for minute in (0, 1):
        send_now(store, sub.id, datetime(2026, 11, 30, 6, minute),
                 chat=NotifySender(portal["webhook"]), mail=MailSender(smtp),
                 options=DigestOptions(links=LINKS))  # fmt: skip
    im = _im(portal)
    assert len([c for c in im["calls"] if c["user_id"] == 3]) == 2
    assert len(im["notifications"]["3"]) == 1  # the same TAG: the second replaced the first


def _cli(*args: str, env: dict[str, str] | None = None, code: int = 0) -> str:
    from click.testing import CliRunner

    from rop.cli import cli

    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_adds_lists_sends_and_removes(store, portal, mailbox):
    path = str(store.path)
    store.close()
    out = _cli("digests", "add", "3", "--weekly", "--weekday", "fri", "--at", "18:30",
               "--channel", "chat,email", "--xlsx", "--department", "3", "--db", path)  # fmt: skip
    assert out.startswith("added #1 user 3: weekly on fri at 18:30, working days; last_week")
    assert "#1 user 3" in _cli("digests", "list", "--db", path)
    _clear_im(portal)
    env = {"ROP_WEBHOOK": portal["webhook"], "ROP_SMTP_HOST": mailbox.host,
           "ROP_SMTP_PORT": str(mailbox.port), "ROP_SMTP_SECURITY": "none"}  # fmt: skip
    out = _cli("digests", "send-now", "1", "--db", path, env=env)
    assert "#1 chat: sent" in out and "#1 email: sent" in out
    (mail,) = mailbox.messages
    names = [part.get_filename() for part in mail.iter_attachments()]
    assert names and names[0].endswith(".xlsx")
    assert len(_im(portal)["notifications"]["3"]) == 1
    assert "email: sent" in _cli("digests", "list", "--log", "--db", path)
    assert "removed #1" in _cli("digests", "remove", "1", "--db", path)
    assert "no digests" in _cli("digests", "list", "--db", path)


def test_cli_refuses_bad_input_and_other_readers_digests(store):
    path = str(store.path)
    store.close()
    out = _cli("digests", "add", "3", "--at", "9am", "--db", path, code=2)
    assert "time '9am' must be HH:MM" in out and "Traceback" not in out
    assert "is not a user" in _cli("digests", "add", "77", "--db", path, code=2)
    # A manager subscribes themselves, not someone else; a report admin anyone.
    out = _cli("digests", "add", "4", "--as", "3", "--db", path, code=2)
    assert "may manage only their own digests" in out
    _cli("digests", "add", "3", "--as", "3", "--db", path)
    _cli("digests", "add", "4", "--as", "1", "--db", path)
    assert "may manage only" in _cli("digests", "remove", "2", "--as", "3", "--db", path, code=2)
    assert "no digest #9" in _cli("digests", "remove", "9", "--db", path, code=2)


def test_the_settings_page_manages_own_digests_and_shows_the_log(store, portal, mailbox):
    from rop.config import Settings
    from rop.web import create_app
    from tests.web_client import page_client

    sub = add(store, make(_key(store), 3, frequency="weekly", weekday="mon", channels="email"))
    store.execute("UPDATE digest_subscriptions SET created_at = ? WHERE id = ?",
                  [datetime(2026, 11, 27, 9, 0), sub.id])  # fmt: skip
    mailbox.refuse = 1
    _send(store, portal, mailbox, MSK_NINE)
    app = create_app(Settings(db=store.path, demo=True, digests=False), store)
    with page_client(app) as client:
        page = client.get("/settings/digests?viewer=3&lang=en")
        assert page.status_code == 200
        assert 'id="digest-1"' in page.text and "SMTP 451" in page.text
        assert '<option value="4"' not in page.text  # a manager subscribes only themselves
        # Someone else's digest: 403; bad input: 400 naming it; nothing written.
        denied = client.post("/api/digests?viewer=3", json={"user_id": 4, "channels": ["chat"]})
        assert denied.status_code == 403 and "only their own" in denied.text
        bad = client.post("/api/digests?viewer=3",
                          json={"user_id": 3, "channels": ["chat"], "at_time": "25:99"})  # fmt: skip
        assert bad.status_code == 400 and "HH:MM" in bad.text
        assert client.post("/api/digests?viewer=3", content=b"{").status_code in (400, 415)
        assert len(listed_subs(store)) == 1
        made = client.post("/api/digests?viewer=3", json={"user_id": 3, "frequency": "daily",
                           "channels": ["chat", "email"], "at_time": "08:15"})  # fmt: skip
        assert made.status_code == 200 and made.json()["subscription"]["id"] == 2
        assert [(s.user_id, s.frequency, s.at_time) for s in listed_subs(store)][-1] == (
            3, "daily", "08:15")  # fmt: skip
        # Another manager sees neither user 3's digests nor their log lines.
        other = client.get("/settings/digests?viewer=4&lang=en").text
        assert 'id="digest-1"' not in other and "SMTP 451" not in other
        assert client.post("/api/digests/1/remove?viewer=4", json={}).status_code == 403
        # The administrator sees and removes anyone's.
        admin = client.get("/settings/digests?viewer=1&lang=en").text
        assert 'id="digest-1"' in admin and 'id="digest-2"' in admin
        gone = client.post("/api/digests/1/remove?viewer=1", json={})
        assert gone.status_code == 200 and [s.id for s in listed_subs(store)] == [2]
        # A cross-site request never reaches it.
        forged = client.post("/api/digests/2/remove?viewer=1", json={},
                             headers={"sec-fetch-site": "cross-site"})  # fmt: skip
        assert forged.status_code == 403 and [s.id for s in listed_subs(store)] == [2]


def listed_subs(store: Store) -> list:
    from rop.digests.subscriptions import listed

    return listed(store, _key(store))


# -- in Chromium: the e-mail, the chat notification, the settings page ---------------

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent.parent / "docs"


def _shot(pg: Any, name: str) -> None:
    import os

    if os.environ.get("ROP_SCREENSHOTS") == "1":
        pg.screenshot(path=str(DOCS / name), full_page=True)


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 760, "height": 900})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
        pg.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
        pg.errors = errors
        yield pg
        browser.close()
        assert errors == [], errors


@pytest.mark.browser
def test_the_mail_and_the_chat_card_render_in_chromium(store, portal, mailbox, weekly, chromium):
    pg = chromium
    head = next(m for r, m in zip(mailbox.recipients, mailbox.messages, strict=True)
                if r == ["user2@example.ru"])  # fmt: skip
    pg.set_content(head.get_body(("html",)).get_content())
    text = pg.inner_text("body")
    # The deal titled <script> is shown as text, never run (no dialog, no error).
    assert "<script>alert('x')</script>" in text
    assert "User3 Last3" in text and "User5 Last5" not in text
    assert pg.locator("a[href*='evil.example']").count() == 0
    _shot(pg, "digest-email.png")
    pg.goto(portal["base"] + "/_emulator/im/2")
    card = pg.inner_text(".note")
    assert "User3 Last3" in card and "User5 Last5" not in card
    assert "[\u200burl=https://evil.example]" in card
    assert pg.locator("a[href*='evil.example']").count() == 0
    assert pg.locator("a[href*='rop.example.ru/report']").count() >= 1
    _shot(pg, "digest-chat.png")


@pytest.mark.browser
def test_the_settings_page_adds_a_digest_from_the_form(store, chromium):
    from rop.config import Settings
    from rop.web import create_app, serve_in_thread

    app = create_app(Settings(db=store.path, demo=True, digests=False), store)
    srv = serve_in_thread(app)
    try:
        pg = chromium
        pg.set_viewport_size({"width": 1200, "height": 800})
        pg.goto(srv.url + "/settings/digests?viewer=1&lang=en")
        pg.select_option("select[name=user_id]", "2")
        pg.select_option("select[name=weekday]", "fri")
        pg.fill("input[name=at_time]", "17:45")
        pg.check("input[name=channel][value=email]")
        with pg.expect_navigation():
            pg.click("#digest-add button[type=submit]")
        row = pg.inner_text("#digest-1")
        assert "User2 Last2" in row and "17:45" in row and "chat, email" in row
        # No channel ticked: the page says why, nothing is added.
        pg.uncheck("input[name=channel][value=chat]")
        pg.click("#digest-add button[type=submit]")
        pg.wait_for_selector("#digest-status:not(:empty)")
        assert "no channel" in pg.inner_text("#digest-status").lower()
        assert pg.locator("#digest-subs tbody tr").count() == 1
        _shot(pg, "digest-settings.png")
    finally:
        srv.stop()


def test_a_manager_sees_their_place_only_when_the_administrator_allows_it(store):
    from rop.digests.content import build_digest

    sub = make(_key(store), 4, frequency="weekly", weekday="mon", language="en")
    assert build_digest(store, sub, MONDAY, rank=False).rank is None
    place = build_digest(store, sub, MONDAY, rank=True).rank
    everyone = build_report(store, report_filter(replace_viewer(sub), MONDAY), portal=_key(store))
    ranked = sorted(everyone["rows"], key=lambda r: -(r["figures"]["deals_won_amount"] or 0))
    assert place == ([r["user_id"] for r in ranked].index(4) + 1, len(ranked))
    # A head gets the table, not a place.
    head = make(_key(store), 2, frequency="weekly", weekday="mon")
    assert build_digest(store, head, MONDAY, rank=True).rank is None


def replace_viewer(sub: Any) -> Any:
    from dataclasses import replace

    return replace(sub, user_id=1)  # the portal admin: every manager


@pytest.mark.parametrize("engine", ["postgres"])
def test_send_due_digests_on_postgresql(engine, portal, mailbox, tmp_path, request):
    from rop.bitrix.snapshot import load_snapshot
    from tests.conftest import store_target

    with open_store(store_target(engine, tmp_path, request)) as pg:
        folder = write_digest_portal(tmp_path / "snap")
        key = load_snapshot(pg, folder)
        pg.use_portal(key)
        sub = add(pg, make(key, 3, frequency="weekly", weekday="mon", channels="email"))
        pg.execute("UPDATE digest_subscriptions SET created_at = ? WHERE portal = ? AND id = ?",
                   [datetime(2026, 11, 27, 9, 0), key, sub.id])  # fmt: skip
        mailbox.refuse = 1
        assert [o.outcome for o in _send(pg, portal, mailbox, MSK_NINE)] == ["retry"]
        assert [o.outcome for o in _send(pg, portal, mailbox, MSK_NINE)] == []
        later = datetime(2026, 11, 30, 6, 2)
        assert [o.outcome for o in _send(pg, portal, mailbox, later)] == ["sent"]
        assert len(mailbox.messages) == 1
        html = mailbox.messages[0].get_body(("html",)).get_content()
        assert "&lt;script&gt;" in html and "User5 Last5" not in html


class _DiesAfterSending:
    """A chat sender whose process dies right after Bitrix24 took the message."""

    def __init__(self, real: NotifySender) -> None:
        self.real = real

    def send(self, user_id: int, msg: Any) -> str:
        self.real.send(user_id, msg)
        raise KeyboardInterrupt  # not an Exception: nothing of ours catches it


def test_a_crash_mid_send_is_not_resent_in_the_minute_and_replaces_itself_later(
    store, portal, mailbox
):
    _clear_im(portal)
    sub = add(store, make(_key(store), 3, frequency="weekly", weekday="mon", channels="chat"))
    store.execute("UPDATE digest_subscriptions SET created_at = ? WHERE id = ?",
                  [datetime(2026, 11, 27, 9, 0), sub.id])  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        send_due_digests(store, MSK_NINE, chat=_DiesAfterSending(NotifySender(portal["webhook"])))
    path = store.path
    store.close()
    with open_store(path) as again:
        # Back within the minute (and up to the 15-minute lease): nothing is sent again.
        for at in (datetime(2026, 11, 30, 6, 0, 40), datetime(2026, 11, 30, 6, 14)):
            assert _send(again, portal, mailbox, at) == []
        assert len(_im(portal)["calls"]) == 1
        # The lease ran out: sent again, and the same TAG replaces the first notification.
        outcomes = _send(again, portal, mailbox, datetime(2026, 11, 30, 6, 16))
        assert [(o.channel, o.outcome) for o in outcomes] == [("chat", "sent")]
        im = _im(portal)
        assert len(im["calls"]) == 2 and len(im["notifications"]["3"]) == 1


def test_the_servers_settings_wire_chat_and_mail(store, portal, mailbox):
    from rop.config import Settings
    from rop.web.digests import due_digests

    sub = _subscribe(store, 3)
    store.execute("UPDATE digest_subscriptions SET created_at = ? WHERE id = ?",
                  [datetime(2026, 11, 27, 9, 0), sub.id])  # fmt: skip
    _clear_im(portal)
    settings = Settings(db=store.path, webhook=portal["webhook"], smtp_host=mailbox.host,
                        smtp_port=mailbox.port, smtp_security="none",
                        report_url="https://rop.example.ru")  # fmt: skip
    outcomes = due_digests(store, settings, now=MSK_NINE)
    assert sorted((o.channel, o.outcome) for o in outcomes) == [("chat", "sent"), ("email", "sent")]
    assert (
        "https://rop.example.ru/report/?lang=ru"
        in mailbox.messages[0].get_body(("plain",)).get_content()
    )
    assert due_digests(store, settings, now=MSK_NINE) == []


def test_a_readers_name_is_text_in_the_chat_message_too(store):
    from dataclasses import replace

    from rop.digests.chat import render_chat
    from rop.digests.content import build_digest

    sub = make(_key(store), 3, frequency="weekly", weekday="mon", language="en")
    digest = replace(
        build_digest(store, sub, MONDAY), reader_name="[url=https://evil.example]Me[/url]"
    )
    msg = render_chat(digest)
    assert "[url=https://evil" not in msg.message and "[\u200burl=https://evil" in msg.message
    assert "[url=https://evil.example]Me[/url]" in msg.message_out  # plain text: as it is


def test_a_big_departments_chat_card_stays_within_the_attach_limit(store):
    from dataclasses import replace

    from rop.digests.chat import ATTACH_LIMIT, render_chat
    from rop.digests.content import Row, build_digest

    sub = make(_key(store), 1, frequency="weekly", weekday="mon", language="en")
    digest = build_digest(store, sub, MONDAY)
    many = [Row(name=f"Manager {i} " + "x" * 40, department="Sales",
                figures=dict.fromkeys(k for k in digest.rows[0].figures), user_id=1000 + i)
            for i in range(3000)]  # fmt: skip
    msg = render_chat(replace(digest, rows=many))
    size = len(json.dumps(msg.attach, ensure_ascii=False).encode("utf-8"))
    assert size <= ATTACH_LIMIT
    texts = [b.get("MESSAGE", "") for b in msg.attach["BLOCKS"]]
    shown = sum(1 for b in msg.attach["BLOCKS"] for g in b.get("GRID", [])
                if str(g.get("NAME", "")).strip("\u2068\u2069").startswith("Manager "))  # fmt: skip
    assert 0 < shown < 3000
    assert any(str(3000 - shown) in t for t in texts), texts  # "and N more in the report"


def test_a_sender_keeps_to_its_rate(portal):
    import time

    from rop.digests.chat import ChatMessage

    sender = NotifySender(portal["webhook"], rate_per_second=5)
    msg = ChatMessage(message="x", message_out="x", attach={"ID": 1, "BLOCKS": [{"MESSAGE": "x"}]},
                      tag="ROP_T|3")  # fmt: skip
    started = time.monotonic()
    for _ in range(6):
        sender.send(3, msg)
    assert time.monotonic() - started >= 5 / 5 - 0.05  # six sends: five gaps of 0.2 s


def test_a_weekly_digest_compares_with_the_whole_previous_week(store):
    from rop.digests.content import build_digest

    # The copy's clock is Friday 27 November (inside the week of 23-29): the digest,
    # sent on Monday about a finished week, still compares with all of 16-22.
    assert str(store.scalar("SELECT max(clock) FROM portals"))[:10] == "2026-11-27"
    sub = make(_key(store), 2, frequency="weekly", weekday="mon", language="en")
    d = build_digest(store, sub, MONDAY, links=LINKS)
    assert d.previous == (date(2026, 11, 16), date(2026, 11, 22))
    assert "previous=full" in d.link
