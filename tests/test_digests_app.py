"""Digests in app mode: the app's own token (no CLIENT_ID), the chat bot, the link into Bitrix24."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from rop.digests.chat import BotSender, ChatMessage, NotifySender
from rop.digests.content import Links
from rop.digests.delivery import DeliveryError
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.emulator.config import DEFAULT_APP_SCOPES, AppSettings
from tests.emulator_portal import TOKEN, write_portal

MSG = ChatMessage(
    message="[b]Digest[/b]",
    message_out="Digest",
    attach={"ID": 1, "BLOCKS": [{"MESSAGE": "Key figures"}]},
    tag="ROP_DIGEST|3|last_week|2026-11-23|2026-11-29",
)


@pytest.fixture(scope="module")
def app_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = write_portal(tmp_path_factory.mktemp("app-portal"), deals=5)
    settings = AppSettings(client_id="local.t.app", client_secret="s", handler="http://x/app",
                           scopes=(*DEFAULT_APP_SCOPES, "imbot"))  # fmt: skip
    app = create_app(folder, EmulatorConfig(rate_limit=False, test_api=True, app=settings,
                                            simulate_processing=False))  # fmt: skip
    with serve_in_thread(app) as base:
        httpx.post(f"{base}/_emulator/app/install", json={"user_id": 1})
        httpx.post(f"{base}/_emulator/app/finish", json={})
        admin = app.state.engine.host.issue(1)

        async def tokens(refresh: bool) -> str:
            return str(admin["access_token"])

        yield {"base": base, "tokens": tokens}


def _im(base: str) -> dict[str, Any]:
    return httpx.get(base + "/_emulator/im").json()


def test_notify_by_app_token_keeps_the_tag_without_client_id(app_portal):
    base = app_portal["base"]
    sender = NotifySender(base + "/rest/", token_provider=app_portal["tokens"])
    sender.send(3, MSG)
    sender.send(3, MSG)
    im = _im(base)
    sent = [c for c in im["calls"] if c["method"] == "im.notify.system.add"]
    assert len(sent) == 2 and all(c["via_app"] for c in sent)
    assert len(im["notifications"]["3"]) == 1  # the second replaced the first


def test_by_webhook_the_tag_needs_client_id(app_portal):
    # Without CLIENT_ID Bitrix24 ignores a webhook's TAG: the emulator does the
    # same, so a sender that forgot it would pile notifications up here.
    base = app_portal["base"]
    hook = f"{base}/rest/1/{TOKEN}/"
    before = len(_im(base)["notifications"].get("4", []))
    for _ in range(2):
        NotifySender(hook).send(4, MSG)
    assert len(_im(base)["notifications"]["4"]) == before + 1
    raw = {"USER_ID": 4, "MESSAGE": "x", "TAG": "T1"}
    for _ in range(2):
        httpx.post(hook + "im.notify.system.add", json=raw).raise_for_status()
    assert len([n for n in _im(base)["notifications"]["4"] if n["tag"] is None]) == 2


def test_the_bot_registers_once_and_writes_to_the_readers_chat(app_portal):
    base = app_portal["base"]
    bot = BotSender(base + "/rest/", token_provider=app_portal["tokens"])
    bot.send(3, MSG)
    bot.send(4, MSG)
    again = BotSender(base + "/rest/", token_provider=app_portal["tokens"])
    again.send(3, MSG)
    im = _im(base)
    registered = {c["bot_id"] for c in im["calls"] if c["method"] == "imbot.v2.Bot.register"}
    assert len(registered) == 1  # idempotent per code
    assert [m["dialog_id"] for m in im["messages"]] == ["3", "4", "3"]
    assert im["messages"][0]["attach"]["BLOCKS"][0] == {"MESSAGE": "Key figures"}


def test_chat_errors_are_final_or_transient_as_bitrix24_says(app_portal):
    base = app_portal["base"]
    sender = NotifySender(base + "/rest/", token_provider=app_portal["tokens"])
    huge = ChatMessage("x", "x", {"BLOCKS": [{"MESSAGE": "y" * 40_000}]}, "t")
    with pytest.raises(DeliveryError) as err:
        sender.send(3, huge)
    assert "ATTACH_OVERSIZE" in err.value.reason and not err.value.transient
    # Nothing answers at that address: transient, retried later.
    gone = NotifySender("http://127.0.0.1:9/rest/1/x/")
    with pytest.raises(DeliveryError):
        gone.send(3, MSG)


def test_the_link_opens_the_app_inside_bitrix24_or_the_web_report():
    pairs = [("period", "custom"), ("from", str(date(2026, 11, 23)))]
    inside = Links(app_code="local.t.app", portal_url="https://b24.example.ru").to(pairs)
    assert inside == (
        "https://b24.example.ru/marketplace/view/local.t.app/"
        "?params%5Bperiod%5D=custom&params%5Bfrom%5D=2026-11-23"
    )
    web = Links(report_url="https://rop.example.ru/report").to(pairs)
    assert web == "https://rop.example.ru/report/?period=custom&from=2026-11-23&via=link"
