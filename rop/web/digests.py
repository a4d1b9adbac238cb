"""Digests in the server: the settings handed down, and the scheduler thread.

The work is rop.digests.targets.due_digests (every portal this process
serves: the webhook's, or each installed portal in app mode); here the
settings become its :class:`~rop.digests.targets.DigestConfig` and the
``DigestScheduler`` calls it twice a minute. In server mode a worker's
periodic task (rop.jobs.digests) calls the same function; set
``ROP_DIGESTS=false`` on the web servers then. Sending twice is impossible
either way: each slot is claimed once in the store.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from rop.config import Settings
from rop.digests.mail import SmtpSettings
from rop.digests.run import Outcome
from rop.digests.targets import AppKeys, DigestConfig
from rop.digests.targets import due_digests as send_due
from rop.store.db import Store
from rop.store.vault import Vault

log = logging.getLogger("rop.digests")
TICK_SECONDS = 30.0  # twice a minute: a slot is never more than half a minute late


def report_url(settings: Settings) -> str:
    if settings.report_url:
        return settings.report_url.rstrip("/") + "/report"
    if settings.app_public_url:
        return settings.app_public_url.rstrip("/") + "/report"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}/report"


def digest_config(settings: Settings) -> DigestConfig:
    """The settings a digest sender needs (the web server, `rop worker`, the CLI)."""
    smtp = None
    if settings.smtp_host:
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            sender_name=settings.smtp_from_name,
        )
    return DigestConfig(
        report_url=report_url(settings),
        app_code=settings.app_code or settings.app_client_id,
        chat=settings.digests_chat,
        rate_per_second=settings.rate_per_second,
        skip_empty=settings.digests_skip_empty,
        rank=settings.digests_rank,
        smtp=smtp,
    )


def app_keys(settings: Settings) -> AppKeys | None:
    """The installed portals' keys (the same rule as the app mode's vault), or None."""
    if not (settings.app_client_id and settings.app_client_secret):
        return None
    secret = settings.app_secret_key or settings.app_client_secret
    return AppKeys(Vault(secret.split(",")), settings.app_client_id, settings.app_client_secret)


def due_digests(
    store: Store, settings: Settings, appmode: Any = None, now: datetime | None = None
) -> list[Outcome]:
    """Send every digest due now on every portal this server serves."""
    app = app_keys(settings) if appmode is not None else None
    hooks = [settings.webhook] if settings.webhook and app is None else []
    return send_due(store, digest_config(settings), app=app, webhooks=hooks, now=now)


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
