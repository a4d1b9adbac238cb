"""The digest in Bitrix24 chat: BB-code text, an ATTACH card, a notification.

Bitrix24 facts (BITRIX24_APP.md §6, b24restdocs): ``im.notify.system.add``
takes ``MESSAGE`` (BB-code), ``MESSAGE_OUT`` (the text for e-mail and other
channels), ``TAG`` (a new notification with the same tag removes the older
ones; by webhook it needs ``CLIENT_ID``) and ``ATTACH``. ATTACH is not
copied into e-mail or push, so ``MESSAGE`` carries a plain summary too. Its
size limit is 30 KB on the method's page and 60,000 characters on the
attachments page: we keep to the smaller (``ATTACH_LIMIT`` bytes of JSON),
dropping managers' lines from the end until it fits.

A chat bot (``imbot.v2``) is the other way in app mode: ``BotSender``
registers the bot once (idempotent per code) and writes to the reader's
personal chat; Bitrix24 allows 2 requests a second per application.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rop.bitrix.client import BitrixClient, RetryPolicy, TokenProvider
from rop.bitrix.errors import BitrixError
from rop.bitrix.sync import SyncError, run_with_client
from rop.digests.content import Digest
from rop.digests.delivery import DeliveryError
from rop.digests.numbers import change, period, show
from rop.digests.words import word

ATTACH_LIMIT = 30_000
CLIENT_ID = "rop-report"
BOT_CODE = "rop_report_digest"
_FSI, _PDI = "\u2068", "\u2069"


def bb_text(value: Any) -> str:
    """A CRM string inside BB-code: tags neutralised, one line, direction isolated.

    Bitrix24's BB-code has no escape; a zero-width space after ``[`` keeps
    ``[url=…]`` in a deal's title from becoming a tag while it reads the same.
    """
    text = " ".join(str(value if value is not None else "").split())
    return _FSI + text.replace("[", "[\u200b") + _PDI


@dataclass(frozen=True)
class ChatMessage:
    message: str
    message_out: str
    attach: dict[str, Any]
    tag: str


def _title(d: Digest) -> str:
    lang = d.language
    kind = word(d.subscription.frequency, lang)
    return f"{word('title', lang)} {kind}: {period(d.date_from, d.date_to, lang)}"


def _figure_line(d: Digest, f: Any) -> str:
    value = show(f.value, f.kind, d.language, d.currency)
    delta = change(f.change, d.language)
    return f"{value} ({delta})" if delta else value


def summary_lines(d: Digest, data: Callable[[Any], str] = str) -> list[str]:
    """The summary: title, key figures, attention; ``data`` wraps a CRM string
    (``bb_text`` inside BB-code, as it is in plain text)."""
    lang = d.language
    lines = [_title(d), f"{word('for', lang)} {data(d.reader_name)}"]
    lines += [f"{f.label}: {_figure_line(d, f)}" for f in d.figures]
    if d.rank:
        lines.append(f"{word('rank', lang)}: {d.rank[0]} {word('of', lang)} {d.rank[1]}")
    due = [a for a in d.attention if a.count]
    if due:
        lines.append(
            f"{word('attention', lang)}: " + "; ".join(f"{a.label} {a.count}" for a in due)
        )
    return lines


def tag_of(d: Digest) -> str:
    """One tag per reader and period: a resend of the same digest replaces the old one."""
    sub = d.subscription
    return f"ROP_DIGEST|{sub.user_id}|{sub.period}|{d.date_from}|{d.date_to}"


def _blocks(d: Digest, rows: int) -> list[dict[str, Any]]:
    lang = d.language
    blocks: list[dict[str, Any]] = [{"MESSAGE": f"[b]{word('key', lang)}[/b]"}]
    blocks.append(
        {
            "GRID": [
                {"DISPLAY": "LINE", "NAME": f.label, "VALUE": _figure_line(d, f), "WIDTH": 220}
                for f in d.figures
            ]
        }
    )
    if d.rank:
        blocks.append(
            {"MESSAGE": f"{word('rank', lang)}: [b]{d.rank[0]}[/b] {word('of', lang)} {d.rank[1]}"}
        )
    if d.rows:
        blocks.append({"DELIMITER": {"SIZE": 300, "COLOR": "#c6cdd3"}})
        heads = " · ".join(label for _, label, _ in d.row_columns)
        blocks.append({"MESSAGE": f"[b]{word('managers', lang)}[/b] ({heads})"})
        grid = []
        for r in d.rows[:rows]:
            values = " · ".join(show(r.figures.get(k), kind, lang, d.currency)
                                for k, _, kind in d.row_columns)  # fmt: skip
            grid.append({"DISPLAY": "LINE", "NAME": bb_text(r.name), "VALUE": values,
                         "WIDTH": 220})  # fmt: skip
        blocks.append({"GRID": grid})
        if len(d.rows) > rows:
            rest = len(d.rows) - rows
            blocks.append({"MESSAGE": f"{word('more', lang)} {rest} {word('more_tail', lang)}"})
    blocks.append({"DELIMITER": {"SIZE": 300, "COLOR": "#c6cdd3"}})
    blocks.append({"MESSAGE": f"[b]{word('attention', lang)}[/b]"})
    due = [a for a in d.attention if a.count]
    if due:
        blocks.append(
            {
                "GRID": [
                    {
                        "DISPLAY": "LINE",
                        "NAME": a.label,
                        "VALUE": str(a.count),
                        "WIDTH": 220,
                        "COLOR_TOKEN": "alert",
                    }
                    for a in due
                ]
            }  # fmt: skip
        )
    else:
        blocks.append({"MESSAGE": word("nothing", lang)})
    for deal in d.overdue:
        if deal.get("url"):
            blocks.append({"LINK": {"NAME": bb_text(deal["title"]), "LINK": deal["url"]}})
        else:
            blocks.append({"MESSAGE": bb_text(deal["title"])})
    if d.link:
        blocks.append({"LINK": {"NAME": word("open", lang), "LINK": d.link}})
    return blocks


def _size(attach: dict[str, Any]) -> int:
    return len(json.dumps(attach, ensure_ascii=False).encode("utf-8"))


def render_chat(d: Digest) -> ChatMessage:
    """The notification: BB-code summary, the ATTACH card within the limit, the tag."""
    lines = summary_lines(d, bb_text)
    message = "[b]" + lines[0] + "[/b][br]" + "[br]".join(lines[1:])
    if d.link:
        message += f"[br][url={d.link}]{word('open', d.language)}[/url]"
    out = "\n".join(summary_lines(d) + ([d.link] if d.link else []))
    rows = len(d.rows)
    attach = {"ID": 1, "COLOR_TOKEN": "primary", "BLOCKS": _blocks(d, rows)}
    while _size(attach) > ATTACH_LIMIT and rows > 0:
        rows = rows // 2 if rows > 40 else rows - 1
        attach = {"ID": 1, "COLOR_TOKEN": "primary", "BLOCKS": _blocks(d, rows)}
    return ChatMessage(message=message, message_out=out, attach=attach, tag=tag_of(d))


# -- sending -----------------------------------------------------------------------


def _problem(exc: Exception) -> DeliveryError:
    """Bitrix24's answer as a delivery error: transient (retry later) or not."""
    if isinstance(exc, BitrixError):
        transient = exc.status == 0 or exc.status >= 500 or exc.status == 429
        return DeliveryError(str(exc), transient=transient)
    return DeliveryError(f"{type(exc).__name__}: {exc}", transient=True)


class _Throttle:
    """At most ``rate`` sends a second across one sender (Bitrix24's per-app limits)."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                time.sleep(self._next - now)
            self._next = max(now, self._next) + self.gap


class NotifySender:
    """``im.notify.system.add`` through a webhook or the app's token.

    ``base_url``: the webhook URL, or with ``token_provider`` the app's REST
    endpoint ``https://PORTAL/rest/``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token_provider: TokenProvider | None = None,
        rate_per_second: float = 2.0,
    ) -> None:
        self.base_url = base_url
        self.token_provider = token_provider
        self.throttle = _Throttle(rate_per_second)
        self.retry = RetryPolicy(attempts=3, base_delay=0.5, max_delay=4.0)

    def _run(self, job: Any) -> Any:
        self.throttle.wait()
        try:
            return run_with_client(
                self.base_url, job, token_provider=self.token_provider, retry=self.retry
            )
        except SyncError as exc:
            raise DeliveryError(str(exc), transient=False) from None
        except DeliveryError:
            raise
        except Exception as exc:
            raise _problem(exc) from None

    def send(self, user_id: int, msg: ChatMessage) -> str:
        params: dict[str, Any] = {
            "USER_ID": user_id,
            "MESSAGE": msg.message,
            "MESSAGE_OUT": msg.message_out,
            "TAG": msg.tag,
            "ATTACH": json.dumps(msg.attach, ensure_ascii=False),
        }
        if self.token_provider is None:
            params["CLIENT_ID"] = CLIENT_ID  # a TAG by webhook needs it (b24restdocs)

        async def job(client: BitrixClient, portal: str) -> Any:
            return (await client.call("im.notify.system.add", params)).result

        result = self._run(job)
        if result in (None, False):
            raise DeliveryError("im.notify.system.add: no notification created", transient=True)
        return str(result)


class BotSender(NotifySender):
    """A chat bot (``imbot.v2``, app mode): registered once, writes to the reader's chat."""

    def __init__(self, base_url: str, *, token_provider: TokenProvider, name: str = "ROP Report",
                 rate_per_second: float = 2.0) -> None:  # fmt: skip
        super().__init__(base_url, token_provider=token_provider, rate_per_second=rate_per_second)
        self.name = name
        self.bot_id: int | None = None

    def _bot(self) -> int:
        if self.bot_id is None:

            async def job(client: BitrixClient, portal: str) -> Any:
                fields = {"code": BOT_CODE, "type": "bot", "eventMode": "fetch",
                          "properties": {"name": self.name}}  # fmt: skip
                return (await client.call("imbot.v2.Bot.register", {"fields": fields})).result

            result = self._run(job)
            bot = result.get("bot", result) if isinstance(result, dict) else {}
            if not isinstance(bot, dict) or not str(bot.get("id", "")).isdigit():
                raise DeliveryError(f"imbot.v2.Bot.register: no bot id in {result!r}"[:200])
            self.bot_id = int(bot["id"])
        return self.bot_id

    def send(self, user_id: int, msg: ChatMessage) -> str:
        bot = self._bot()
        fields = {"message": msg.message, "attach": msg.attach}

        async def job(client: BitrixClient, portal: str) -> Any:
            params = {"botId": bot, "dialogId": str(user_id), "fields": fields}
            return (await client.call("imbot.v2.Chat.Message.send", params)).result

        result = self._run(job)
        return str(result.get("id") if isinstance(result, dict) else result)
