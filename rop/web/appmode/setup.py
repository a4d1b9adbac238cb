"""Application mode's parts for ``create_app``: state, the gate, the routes."""

from __future__ import annotations

from collections.abc import Callable

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from rop.config import Settings
from rop.store.db import Store
from rop.web.appmode.state import AppMode


def app_mode_parts(
    settings: Settings, store: Store, on_change: Callable[[], None]
) -> tuple[AppMode, list[Middleware], list[BaseRoute]]:
    from rop.bitrix.client import parse_webhook
    from rop.web.appmode.gate import ViewerGate
    from rop.web.appmode.routes import ROUTES

    mode = AppMode(settings, store, on_change)
    # Without a viewer token a request sees the webhook's portal (webhook mode,
    # unchanged), or nothing at all.
    webhook_portal = parse_webhook(settings.webhook).portal if settings.webhook else None
    return mode, [Middleware(ViewerGate, mode=mode, webhook_portal=webhook_portal)], list(ROUTES)
