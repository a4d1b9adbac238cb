"""Installed portals: who installed the app, where it lives, its tokens.

One row per portal in ``app_portals``, keyed by ``member_id`` (Bitrix24's
portal id, stable across domain changes). Tokens and the application token
are sealed by the vault before they reach the store and unsealed only here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from rop.store.db import Store
from rop.store.portal_lock import portal_lock
from rop.store.vault import Vault

INSTALLED = "installed"
ATTENTION = "attention"  # tokens refused (invalid_grant, PAYMENT_REQUIRED): a person must act
UNINSTALLED = "uninstalled"
# An uninstall with CLEAN=1 ends a running sync's session, then waits this long
# at most for its lock (the session ends at once; a stuck server is an error).
PURGE_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Install:
    member_id: str
    portal: str  # the CRM tables' portal key: the host of client_endpoint
    domain: str
    client_endpoint: str
    server_endpoint: str
    state: str
    problem: str | None
    installer_id: int | None

    @property
    def active(self) -> bool:
        return self.state in (INSTALLED, ATTENTION)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.client_endpoint)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def portal_key(client_endpoint: str) -> str:
    """The store's portal key for an app portal: the host, as in webhook mode."""
    return urlsplit(client_endpoint).netloc


_COLUMNS = (
    "member_id, portal, domain, client_endpoint, server_endpoint, state, problem, installer_id"
)


class Installs:
    """The ``app_portals`` table through the vault. Thread-safe as its store cursor is."""

    def __init__(self, store: Store, vault: Vault) -> None:
        self.store = store
        self.vault = vault

    def get(self, member_id: str) -> Install | None:
        rows = self.store.query(
            f"SELECT {_COLUMNS} FROM app_portals WHERE member_id = ?",  # noqa: S608
            [member_id],
        )
        return Install(*rows[0]) if rows else None

    def all(self) -> list[Install]:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM app_portals ORDER BY member_id")  # noqa: S608
        return [Install(*r) for r in rows]

    def record(
        self,
        *,
        member_id: str,
        domain: str,
        client_endpoint: str,
        server_endpoint: str,
        application_token: str,
        tokens: Tokens | None,
        installer_id: int | None,
    ) -> Install:
        """Install (or install again): the portal's addresses, its application token, tokens."""
        old = self.get(member_id)
        now = _now()
        row: dict[str, Any] = {
            "member_id": member_id,
            "portal": portal_key(client_endpoint),
            "domain": domain,
            "client_endpoint": client_endpoint,
            "server_endpoint": server_endpoint,
            "application_token": self.vault.seal(application_token),
            "access_token": None,
            "refresh_token": None,
            "expires_at": None,
            "installer_id": installer_id,
            "state": INSTALLED,
            "problem": None,
            "installed_at": now,
            "updated_at": now,
        }
        if tokens is not None:
            row.update(self._sealed(tokens))
        elif old is not None and old.active:
            # ONAPPINSTALL may come after the install page (or not at all):
            # keep the tokens we already hold.
            kept = self.store.query(
                "SELECT access_token, refresh_token, expires_at, installed_at "
                "FROM app_portals WHERE member_id = ?",
                [member_id],
            )[0]
            row.update(
                access_token=self.vault.rotate(kept[0]),
                refresh_token=self.vault.rotate(kept[1]),
                expires_at=kept[2],
                installed_at=kept[3] or now,
            )
        self.store.upsert("app_portals", [row])
        got = self.get(member_id)
        assert got is not None
        return got

    def _sealed(self, tokens: Tokens) -> dict[str, Any]:
        return {
            "access_token": self.vault.seal(tokens.access_token),
            "refresh_token": self.vault.seal(tokens.refresh_token),
            "expires_at": tokens.expires_at.replace(tzinfo=None) if tokens.expires_at else None,
        }

    def token_matches(self, member_id: str, application_token: str | None) -> bool:
        """Whether ``application_token`` is the one this portal gave us (constant time)."""
        if not application_token:
            return False
        sealed = self.store.scalar(
            "SELECT application_token FROM app_portals WHERE member_id = ?", [member_id]
        )
        known = self.vault.unseal(sealed)
        return known is not None and hmac.compare_digest(
            known.encode("utf-8"), application_token.encode("utf-8")
        )

    def set_application_token(self, member_id: str, application_token: str) -> None:
        self.store.execute(
            "UPDATE app_portals SET application_token = ?, updated_at = ? WHERE member_id = ?",
            [self.vault.seal(application_token), _now(), member_id],
        )

    def tokens(self, member_id: str) -> Tokens | None:
        rows = self.store.query(
            "SELECT access_token, refresh_token, expires_at FROM app_portals "
            "WHERE member_id = ? AND state <> ?",
            [member_id, UNINSTALLED],
        )
        if not rows or rows[0][0] is None:
            return None
        access = self.vault.unseal(rows[0][0])
        assert access is not None
        return Tokens(access, self.vault.unseal(rows[0][1]), rows[0][2])

    def save_tokens(self, member_id: str, tokens: Tokens) -> None:
        """A refreshed pair: stored before anyone uses it (a refresh token is single-use)."""
        sealed = self._sealed(tokens)
        self.store.execute(
            "UPDATE app_portals SET access_token = ?, refresh_token = ?, expires_at = ?, "
            "state = CASE WHEN state = ? THEN ? ELSE state END, problem = NULL, updated_at = ? "
            "WHERE member_id = ?",
            [
                sealed["access_token"],
                sealed["refresh_token"],
                sealed["expires_at"],
                ATTENTION,
                INSTALLED,
                _now(),
                member_id,
            ],
        )

    def mark_attention(self, member_id: str, problem: str) -> None:
        self.store.execute(
            "UPDATE app_portals SET state = ?, problem = ?, updated_at = ? "
            "WHERE member_id = ? AND state <> ?",
            [ATTENTION, problem, _now(), member_id, UNINSTALLED],
        )

    def forget(self, member_id: str) -> None:
        """Uninstalled: the tokens go; the row stays so a later event is refused by name."""
        self.store.execute(
            "UPDATE app_portals SET access_token = NULL, refresh_token = NULL, "
            "application_token = NULL, expires_at = NULL, state = ?, updated_at = ? "
            "WHERE member_id = ?",
            [UNINSTALLED, _now(), member_id],
        )

    def purge(self, member_id: str) -> dict[str, int]:
        """CLEAN=1: every row of this portal, in every table, and the install itself."""
        install = self.get(member_id)
        removed: dict[str, int] = {}
        if install is None:
            return removed
        # current_schema(): DuckDB's 'main', PostgreSQL's 'public'.
        tables = [
            r[0]
            for r in self.store.query(
                "SELECT DISTINCT table_name FROM information_schema.columns "
                "WHERE column_name = 'portal' AND table_schema = current_schema() "
                "ORDER BY table_name"
            )
        ]
        # PostgreSQL: the portal's rows are visible to this session only as that portal.
        self.store.use_portal(install.portal)
        # ... and a worker's sync of it still running would write rows after the
        # purge: its session is ended (its lock and its writes go with it) and the
        # purge holds the portal's lock, so a later job finds no install.
        lock = portal_lock(self.store, install.portal, wait=PURGE_WAIT_SECONDS, evict=True)
        with lock, self.store.transaction():
            for table in tables:
                if table == "app_portals":
                    continue
                where = f"FROM {table} WHERE portal = ?"  # noqa: S608
                removed[table] = int(
                    self.store.scalar(f"SELECT count(*) {where}", [install.portal])
                )  # noqa: S608
                self.store.execute(f"DELETE {where}", [install.portal])  # noqa: S608
            self.store.execute("DELETE FROM app_events_seen WHERE member_id = ?", [member_id])
            self.store.execute("DELETE FROM app_portals WHERE member_id = ?", [member_id])
        return removed

    def first_sight(self, member_id: str, digest: str, ts: int, window: timedelta) -> bool:
        """Record an event; False when the same one was seen before (a replay)."""
        now = _now()
        self.store.execute("DELETE FROM app_events_seen WHERE seen_at < ?", [now - window - window])
        # One statement: two deliveries of the same event at once cannot both pass.
        added = self.store.scalar(
            "INSERT INTO app_events_seen (member_id, digest, ts, seen_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING 1",  # a row only when it was added (both engines)
            [member_id, digest, ts, now],
        )
        return bool(added)
