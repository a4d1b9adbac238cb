"""Digests in the server: senders from the settings, and the scheduler thread.

``due_digests(store, settings, appmode)`` sends what is due for every
portal this server serves (the webhook's, or each installed portal in app
mode) through ``rop.digests.run.send_due_digests``; the ``DigestScheduler``
calls it once a minute. A periodic job in server mode may call the same
function instead (set ``ROP_DIGESTS=false`` on the web servers then);
sending twice is harmless either way: each slot is claimed once in the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rop.config import Settings
from rop.digests.chat import BotSender, NotifySender
from rop.digests.content import Links
from rop.digests.mail import MailSender, SmtpSettings
from rop.digests.run import ChatSender, DigestOptions, Outcome, send_due_digests
from rop.store.db import Store

log = logging.getLogger("rop.digests")
TICK_SECONDS = 30.0  # twice a minute: a slot is never more than half a minute late


@dataclass(frozen=True)
class Target:
    """One portal to send for: its store key, chat sender and links."""

    portal: str
    chat: ChatSender | None
    links: Links


def mail_sender(settings: Settings) -> MailSender | None:
    if not settings.smtp_host:
        return None
    return MailSender(
        SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            sender_name=settings.smtp_from_name,
        )
    )


def report_url(settings: Settings) -> str:
    if settings.report_url:
        return settings.report_url.rstrip("/") + "/report"
    if settings.app_public_url:
        return settings.app_public_url.rstrip("/") + "/report"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}/report"


def options(settings: Settings, links: Links) -> DigestOptions:
    return DigestOptions(
        skip_empty=settings.digests_skip_empty, rank=settings.digests_rank, links=links
    )


def targets(store: Store, settings: Settings, appmode: Any = None) -> Iterator[Target]:
    """The portals this server sends digests for, each with its chat sender."""
    web = Links(report_url=report_url(settings))
    if appmode is not None:
        code = settings.app_code or settings.app_client_id
        for install in appmode.installs(store).all():
            if not install.active:
                continue
            provider = appmode.token_provider(install.member_id)
            chat: ChatSender
            if settings.digests_chat == "bot":
                chat = BotSender(install.client_endpoint, token_provider=provider,
                                 rate_per_second=settings.rate_per_second)  # fmt: skip
            else:
                chat = NotifySender(install.client_endpoint, token_provider=provider,
                                    rate_per_second=settings.rate_per_second)  # fmt: skip
            yield Target(install.portal, chat, Links(app_code=code, portal_url=install.origin))
        return
    if settings.webhook:
        from rop.bitrix.client import parse_webhook

        hook = parse_webhook(settings.webhook)
        sender = NotifySender(settings.webhook, rate_per_second=settings.rate_per_second)
        yield Target(hook.portal, sender, web)
        return
    # No Bitrix24 connection (a demo store, a copy): e-mail only, the store's portals.
    for (key,) in store.query("SELECT portal FROM portals ORDER BY portal"):
        yield Target(str(key), None, web)


def due_digests(
    store: Store, settings: Settings, appmode: Any = None, now: datetime | None = None
) -> list[Outcome]:
    """Send every digest due now on every portal this server serves."""
    mail = mail_sender(settings)
    out: list[Outcome] = []
    # Each thread reads through its own cursor (DuckDB), never the root store.
    lister = store.cursor()
    try:
        found = list(targets(lister, settings, appmode))
    finally:
        lister.close()
    for target in found:
        cursor = store.cursor()
        try:
            cursor.use_portal(target.portal)
            if not cursor.scalar("SELECT count(*) FROM portals WHERE portal = ?", [target.portal]):
                continue  # not copied yet: nothing to report
            out += send_due_digests(
                cursor, now, portal=target.portal, chat=target.chat, mail=mail,
                options=options(settings, target.links),
            )  # fmt: skip
        except Exception:  # one portal's trouble must not stop the others
            log.exception("digests of %s failed", target.portal)
        finally:
            cursor.close()
    return out


class DigestScheduler:
    """Calls ``due_digests`` every ``TICK_SECONDS`` in a background thread."""

    def __init__(self, store: Store, settings: Settings, appmode: Any = None,
                 seconds: float = TICK_SECONDS) -> None:  # fmt: skip
        self.store, self.settings, self.appmode = store, settings, appmode
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.settings.digests:
            return
        self._thread = threading.Thread(target=self._loop, name="rop-digests", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                due_digests(self.store, self.settings, self.appmode)
            except Exception:
                log.exception("digest tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
