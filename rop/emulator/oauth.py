"""OAuth mode: access tokens that expire, and token endpoints shaped like
Bitrix24's OAuth server (``GET /oauth/token/?grant_type=refresh_token|authorization_code``,
``GET /oauth/authorize/``; BITRIX24_API.md §8). Every refresh returns a new refresh token.

Bitrix24's authorization server is another host (oauth.bitrix.info); the emulator
serves it under ``/oauth/`` of its own address, so ``server_endpoint`` is
``http://HOST:PORT/oauth/rest/`` and, like the real one minus ``/rest/``, the token
endpoint is ``/oauth/oauth/token/`` (the old ``/oauth/token/`` answers too).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rop.emulator.errors import ApiError

DEFAULT_CLIENT_ID = "local.emulator.app"
DEFAULT_CLIENT_SECRET = "emulator-secret"
# Bitrix24's authorization codes live 30 seconds (BITRIX24_API.md §8).
CODE_TTL_SECONDS = 30.0


class OAuthError(Exception):
    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.code, self.description, self.status = code, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.code, "error_description": self.description}


@dataclass
class _Access:
    user_id: int
    expires: float


def server_endpoint_for(client_endpoint: str) -> str:
    """The emulated auth server's REST URL beside a portal's ``.../rest/``."""
    if client_endpoint.endswith("/rest/"):
        return client_endpoint[: -len("rest/")] + "oauth/rest/"
    return "https://oauth.bitrix.info/rest/"


class TokenStore:
    def __init__(
        self,
        clock: Callable[[], float],
        ttl: float,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        member_id: str = "emulator",
    ) -> None:
        self.clock = clock
        self.ttl = ttl
        self.client_id = client_id
        self.client_secret = client_secret
        self.member_id = member_id
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, int] = {}
        self._codes: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self.scope = "app"  # what replies call the granted scopes (app mode: its list)
        self.status = "L"  # local application

    def issue(self, user_id: int, client_endpoint: str = "") -> dict[str, Any]:
        """New access + refresh tokens for a user (what install or refresh gives)."""
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        expires = self.clock() + self.ttl
        with self._lock:
            self._access[access] = _Access(user_id, expires)
            self._refresh[refresh] = user_id
        server = server_endpoint_for(client_endpoint)
        return {
            "access_token": access,
            "expires": int(expires),
            "expires_in": int(self.ttl),
            "scope": self.scope,
            # settings/oauth/index.md: `domain` is the auth server's host.
            "domain": server.split("/")[2],
            "server_endpoint": server,
            "status": self.status,
            "client_endpoint": client_endpoint,
            "member_id": self.member_id,
            "user_id": user_id,
            "refresh_token": refresh,
        }

    def expire(self, access_token: str) -> None:
        """Test hook: make a token expire now."""
        with self._lock:
            if access_token in self._access:
                self._access[access_token].expires = self.clock() - 1

    def revoke_all(self) -> None:
        """Uninstall: every stored token stops working (app-uninstallation.md)."""
        with self._lock:
            self._access.clear()
            self._refresh.clear()
            self._codes.clear()

    def expires_at(self, access_token: str) -> float:
        with self._lock:
            entry = self._access.get(access_token)
        return entry.expires if entry else 0.0

    def user_of(self, access_token: str) -> int:
        with self._lock:
            entry = self._access.get(access_token)
        if entry is None:
            raise ApiError("invalid_token", "The access token provided is invalid.", 401)
        if entry.expires <= self.clock():
            raise ApiError("expired_token", "The access token provided has expired.", 401)
        return entry.user_id

    def authorization_code(self, user_id: int) -> str:
        """A one-time code for the authorize redirect; valid CODE_TTL_SECONDS."""
        code = secrets.token_hex(12)
        with self._lock:
            self._codes[code] = (user_id, self.clock() + CODE_TTL_SECONDS)
        return code

    def token(self, params: dict[str, str], client_endpoint: str) -> dict[str, Any]:
        """The /oauth/token/ endpoint: grant_type refresh_token or authorization_code."""
        grant = params.get("grant_type", "")
        if grant not in ("refresh_token", "authorization_code"):
            raise OAuthError("invalid_request", f"Unsupported grant_type {grant!r}")
        if (
            params.get("client_id") != self.client_id
            or params.get("client_secret") != self.client_secret
        ):
            raise OAuthError("invalid_client", "Invalid client credentials", 401)
        with self._lock:
            if grant == "refresh_token":
                user_id = self._refresh.pop(params.get("refresh_token", ""), None)
            else:
                user_id, until = self._codes.pop(params.get("code", ""), (None, 0.0))
                if until <= self.clock():
                    user_id = None
        if user_id is None:
            raise OAuthError("invalid_grant", f"Invalid {grant.replace('_', ' ')}")
        return self.issue(user_id, client_endpoint)
