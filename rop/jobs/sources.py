"""Where each portal of a server-mode store syncs from.

Two kinds: a webhook portal registered by ``rop sync --queue`` (its URL is a
secret, sealed by the vault in ``sync_sources`` as app tokens are), and an
installed app's portal (``app_portals``: its REST endpoint and the
installer's tokens). Workers on any machine read both from the store, so
nothing but the settings' keys has to travel with a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rop.bitrix.client import TokenProvider, parse_webhook
from rop.bitrix.installs import Installs
from rop.bitrix.oauth import PortalTokens
from rop.store.db import Store
from rop.store.vault import Vault


@dataclass(frozen=True)
class Source:
    portal: str  # the store's key (the portal's host)
    endpoint: str  # a webhook URL, or an app's https://PORTAL/rest/
    tokens: TokenProvider | None = None  # app portals: the installer's tokens
    member_id: str | None = None


@dataclass(frozen=True)
class Keys:
    """What opens the sealed secrets: the settings' keys and the app's credentials."""

    vault: Vault
    client_id: str | None = None
    client_secret: str | None = None


class Sources:
    def __init__(self, store: Store, keys: Keys) -> None:
        self.store = store
        self.keys = keys

    def add_webhook(self, webhook: str) -> str:
        """Register (or replace) a webhook portal; returns its key. ValueError if malformed."""
        hook = parse_webhook(webhook)
        self.store.upsert(
            "sync_sources",
            [
                {
                    "portal": hook.portal,
                    "webhook": self.keys.vault.seal(webhook),
                    "added_at": datetime.now(UTC).replace(tzinfo=None),
                }
            ],
        )
        return hook.portal

    def get(self, portal: str) -> Source | None:
        rows = self.store.query("SELECT webhook FROM sync_sources WHERE portal = ?", [portal])
        if rows:
            url = self.keys.vault.unseal(rows[0][0])
            return Source(portal, url) if url else None
        for install in Installs(self.store, self.keys.vault).all():
            if install.portal == portal and install.active:
                if not (self.keys.client_id and self.keys.client_secret):
                    return None  # the app's credentials are not in this worker's settings
                tokens = PortalTokens(
                    self.store,
                    self.keys.vault,
                    install.member_id,
                    self.keys.client_id,
                    self.keys.client_secret,
                )
                return Source(portal, install.client_endpoint, tokens, install.member_id)
        return None

    def portals(self) -> list[str]:
        """Every portal the workers keep in sync (periodic re-scans)."""
        hooks = {r[0] for r in self.store.query("SELECT portal FROM sync_sources")}
        apps = {i.portal for i in Installs(self.store, self.keys.vault).all() if i.active}
        return sorted(hooks | apps)
