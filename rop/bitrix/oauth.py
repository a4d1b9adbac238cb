"""OAuth for an installed portal: refresh on the auth server, once per portal at a time.

Bitrix24 (settings/oauth/auto-renewal.md): call with the stored access token;
on 401 ``expired_token`` refresh, store the new pair, repeat once. Never on a
timer. A refresh token is single-use, so two refreshes of one portal at once
would lose it: a per-portal lock lets one through and the other reuses its
pair. ``invalid_grant`` and ``PAYMENT_REQUIRED`` cannot be fixed by retrying:
the portal is marked as needing attention, with the reason for its page.

The client secret goes only to the auth server, in a form body (never in a
URL, so never in an access log).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from rop.bitrix.errors import BitrixError
from rop.bitrix.installs import Installs, Tokens
from rop.store.db import Store
from rop.store.vault import Vault

# Auth-server errors that need a person (settings/oauth/error-codes.md).
NEEDS_ATTENTION = {
    "invalid_grant": (
        "Bitrix24 no longer accepts this portal's stored authorization (invalid_grant): "
        "an administrator should open the application once in the portal, or reinstall it"
    ),
    "PAYMENT_REQUIRED": (
        "Bitrix24 refuses the application's tokens: the paid or trial period is over "
        "(PAYMENT_REQUIRED)"
    ),
}

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _portal_lock(member_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(member_id, threading.Lock())


@contextlib.contextmanager
def _cursor(store: Store) -> Iterator[Store]:
    # Called from whatever thread the client runs in: a cursor of its own.
    cursor = store.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


class TokenRefused(BitrixError):
    """The auth server refused to refresh; ``code`` says why."""


def token_url(server_endpoint: str) -> str:
    """``https://oauth.bitrix.info/rest/`` -> ``https://oauth.bitrix.info/oauth/token/``:
    the token endpoint sits beside ``server_endpoint`` minus ``rest/``."""
    parts = urlsplit(server_endpoint)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    path = path.removesuffix("rest/")
    return f"{parts.scheme}://{parts.netloc}{path}oauth/token/"


def refresh_tokens(
    server_endpoint: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> Tokens:
    """One refresh on the auth server; raises TokenRefused with Bitrix24's error code."""
    with httpx.Client(transport=transport, timeout=30.0, follow_redirects=False) as http:
        try:
            reply = http.post(
                token_url(server_endpoint),
                data={
                    "grant_type": "refresh_token",
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "refresh_token": refresh_token,
                },
            )
        except httpx.HTTPError as exc:
            raise BitrixError("oauth/token", "CONNECT", f"auth server unreachable: {exc}") from None
    try:
        data: Any = reply.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BitrixError(
            "oauth/token", "", "the auth server's answer is not JSON", reply.status_code
        )
    if data.get("error") or not data.get("access_token"):
        code = str(data.get("error") or "")
        raise TokenRefused(
            "oauth/token",
            code,
            str(data.get("error_description") or "no token in the answer"),
            reply.status_code,
        )
    expires_in = int(data.get("expires_in") or 3600)
    return Tokens(
        str(data["access_token"]),
        str(data.get("refresh_token") or refresh_token),
        datetime.now(UTC) + timedelta(seconds=expires_in),
    )


class PortalTokens:
    """The token provider (rop.bitrix.client.TokenProvider) of one installed portal.

    ``refresh=False``: the stored access token. ``refresh=True``: a new pair,
    stored before it is returned; if another caller refreshed meanwhile (the
    stored token is no longer the one this provider handed out), that pair is
    used instead of refreshing again.
    """

    def __init__(
        self,
        store: Store,
        vault: Vault,
        member_id: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._store = store
        self._vault = vault
        self.member_id = member_id
        self._client = (client_id, client_secret)
        self._transport = transport
        self._handed: str | None = None

    async def __call__(self, refresh: bool) -> str:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.token, refresh)

    def token(self, refresh: bool) -> str:
        with _portal_lock(self.member_id), _cursor(self._store) as cursor:
            installs = Installs(cursor, self._vault)
            current = installs.tokens(self.member_id)
            if current is None:
                raise BitrixError(
                    "oauth", "NO_AUTH_FOUND", "the application holds no tokens for this portal", 401
                )
            if refresh and current.access_token == self._handed:
                install = installs.get(self.member_id)
                assert install is not None
                if not current.refresh_token:
                    raise BitrixError("oauth", "NO_AUTH_FOUND", "no refresh token stored", 401)
                try:
                    current = refresh_tokens(
                        install.server_endpoint,
                        *self._client,
                        current.refresh_token,
                        transport=self._transport,
                    )
                except TokenRefused as refused:
                    if refused.code in NEEDS_ATTENTION:
                        installs.mark_attention(self.member_id, NEEDS_ATTENTION[refused.code])
                    raise
                installs.save_tokens(self.member_id, current)
            self._handed = current.access_token
            return current.access_token
