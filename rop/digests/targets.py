"""Who to send for and through what: the portals, their chat senders and links.

``due_digests(store, config, ...)`` sends what is due now on every portal a
process serves: each installed portal (application mode), each webhook
portal, or, with no Bitrix24 connection at all (a demo store, a copy), the
store's portals by e-mail only. The web server's scheduler thread
(rop.web.digests) and server mode's periodic worker task (rop.jobs.digests)
both call it; a slot is claimed once in the store (rop.digests.sends), so
running both, or several of each, sends every slot once.

The settings stay with the top layers: they build a :class:`DigestConfig`
and hand it down, as they hand a store or a webhook to the other layers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from rop.bitrix.installs import Installs
from rop.bitrix.oauth import PortalTokens
from rop.digests.chat import BotSender, NotifySender
from rop.digests.content import Links
from rop.digests.mail import MailSender, SmtpSettings
from rop.digests.run import ChatSender, DigestOptions, Outcome, send_due_digests
from rop.store.db import Store
from rop.store.vault import Vault

log = logging.getLogger("rop.digests")


@dataclass(frozen=True)
class DigestConfig:
    """What sending needs from the settings (ROP_DIGESTS_*, ROP_SMTP_*, ROP_REPORT_URL)."""

    report_url: str  # the web report's page (…/report), for links outside Bitrix24
    app_code: str | None = None  # the app's code for /marketplace/view/<code>/ links
    chat: str = "notify"  # notify: im.notify.system.add; bot: imbot.v2 (app mode)
    rate_per_second: float = 2.0
    skip_empty: bool = True
    rank: bool = False
    smtp: SmtpSettings | None = None  # None: no e-mail


@dataclass(frozen=True)
class AppKeys:
    """What opens an installed portal's sealed tokens (application mode)."""

    vault: Vault
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class Target:
    """One portal to send for: its store key, chat sender and links."""

    portal: str
    chat: ChatSender | None
    links: Links


def mail_sender(config: DigestConfig) -> MailSender | None:
    return MailSender(config.smtp) if config.smtp else None


def options(config: DigestConfig, links: Links) -> DigestOptions:
    return DigestOptions(skip_empty=config.skip_empty, rank=config.rank, links=links)


def app_targets(store: Store, config: DigestConfig, keys: AppKeys) -> Iterator[Target]:
    """Every active installed portal, chat on the installer's tokens, links into Bitrix24."""
    code = config.app_code or keys.client_id
    for install in Installs(store, keys.vault).all():
        if not install.active:
            continue
        tokens = PortalTokens(store, keys.vault, install.member_id, keys.client_id,
                              keys.client_secret)  # fmt: skip
        chat: ChatSender
        if config.chat == "bot":
            chat = BotSender(install.client_endpoint, token_provider=tokens,
                             rate_per_second=config.rate_per_second)  # fmt: skip
        else:
            chat = NotifySender(install.client_endpoint, token_provider=tokens,
                                rate_per_second=config.rate_per_second)  # fmt: skip
        yield Target(install.portal, chat, Links(app_code=code, portal_url=install.origin))


def webhook_target(config: DigestConfig, webhook: str) -> Target:
    """A webhook portal: chat through the webhook, links to the web report."""
    from rop.bitrix.client import parse_webhook

    hook = parse_webhook(webhook)
    sender = NotifySender(webhook, rate_per_second=config.rate_per_second)
    return Target(hook.portal, sender, Links(report_url=config.report_url))


def targets(
    store: Store, config: DigestConfig, app: AppKeys | None = None, webhooks: Iterable[str] = ()
) -> Iterator[Target]:
    """The portals to send for: installed ones (app keys given) and webhook ones.

    With neither (a demo store, a copy: no Bitrix24 connection), the store's
    portals by e-mail only. A portal found twice is sent for once.
    """
    hooks = list(webhooks)
    found = list(app_targets(store, config, app)) if app is not None else []
    found += [webhook_target(config, hook) for hook in hooks]
    seen: set[str] = set()
    for target in found:
        if target.portal not in seen:
            seen.add(target.portal)
            yield target
    if app is None and not hooks:
        web = Links(report_url=config.report_url)
        for (key,) in store.query("SELECT portal FROM portals ORDER BY portal"):
            yield Target(str(key), None, web)


def due_digests(
    store: Store,
    config: DigestConfig,
    app: AppKeys | None = None,
    webhooks: Iterable[str] = (),
    now: datetime | None = None,
) -> list[Outcome]:
    """Send every digest due now on every portal of :func:`targets`."""
    mail = mail_sender(config)
    out: list[Outcome] = []
    # Each thread reads through its own cursor (DuckDB), never the root store.
    lister = store.cursor()
    try:
        found = list(targets(lister, config, app, webhooks))
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
                options=options(config, target.links),
            )  # fmt: skip
        except Exception:  # one portal's trouble must not stop the others
            log.exception("digests of %s failed", target.portal)
        finally:
            cursor.close()
    return out
