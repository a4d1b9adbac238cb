"""Typed settings, read from the environment with the ROP_ prefix.

Settings are built where they are needed (the CLI command, ``create_app``),
never at import time, so tests can construct their own.
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_db_path() -> Path:
    """One store file in the user's data folder (XDG_DATA_HOME on Linux)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rop-report" / "rop.duckdb"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the ROP_ variable."""


class Settings(BaseSettings):
    # An empty variable (`ROP_DB=`) means "not set", not "the current folder".
    model_config = SettingsConfigDict(env_prefix="ROP_", extra="ignore", env_ignore_empty=True)

    db: Path = Field(default_factory=default_db_path, description="Store file (DuckDB)")
    webhook: str | None = Field(default=None, description="Bitrix24 incoming webhook URL")
    timezone: str | None = Field(
        default=None, description="Portal time zone (IANA); default: from the portal"
    )
    # Bitrix24 cloud limits (BITRIX24_API.md §2): 2 req/s with a burst of 50,
    # Enterprise 5 req/s with 250.
    rate_per_second: float = Field(default=2.0, gt=0)
    rate_burst: int = Field(default=50, gt=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    viewer: int | None = Field(default=None, description="Viewer user ID (demo mode)")
    demo: bool = False
    sync_interval_minutes: int = Field(default=0, ge=0, description="0: no scheduled sync")
    language: str = Field(default="ru", pattern="^(ru|en)$")
    # Bitrix24 application mode (docs/CONFIG.md "Application mode"): set all
    # three of client id, secret and public URL to serve installed portals.
    app_client_id: str | None = Field(default=None, description="Application client_id")
    app_client_secret: str | None = Field(default=None, description="Application client_secret")
    app_public_url: str | None = Field(
        default=None, description="https://... where Bitrix24 reaches this server"
    )
    # Keys for tokens at rest and for viewer tokens; comma-separated, the first
    # one encrypts and signs, the others still decrypt (key rotation).
    # Default: derived from the client secret.
    app_secret_key: str | None = Field(default=None, description="Encryption/signing key(s)")
    # Authorization servers we believe (app.info, token refresh). A forged
    # request could name its own server; only these hosts are asked.
    app_auth_servers: str = "oauth.bitrix.info,oauth.bitrix24.tech"
    app_viewer_token_minutes: int = Field(default=60, gt=0, le=24 * 60)

    @property
    def app_mode(self) -> bool:
        return bool(self.app_client_id and self.app_client_secret and self.app_public_url)

    @field_validator("app_public_url")
    @classmethod
    def _public_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        url = url.strip().rstrip("/")
        if not url.startswith(("https://", "http://")) or "?" in url or "#" in url:
            raise ValueError(f"{url!r} must be an https:// address with no query")
        return url

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str | None) -> str | None:
        # A wrong zone would be stored with the portal and shift every period.
        if name is None:
            return None
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r} (an IANA name, e.g. Europe/Moscow)"
            ) from None
        return name


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides.

    Overrides with value None are dropped so CLI options left unset fall back
    to the environment. Errors name the ROP_ variable at fault.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "ROP_" + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError("bad setting " + "; ".join(problems)) from None
