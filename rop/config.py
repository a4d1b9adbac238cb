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


# The data-quality checks by name (rop.metrics.quality.CHECKS: settings import
# nothing of ours, so the names are repeated; tests/test_quality.py keeps them equal).
QUALITY_CHECKS = (
    "deal_no_amount", "deal_no_client", "deal_overdue_close", "deal_stale",
    "deal_no_next_step", "lead_slow", "client_no_reach", "client_duplicate",
    "dismissed_owner", "call_unbound",
)  # fmt: skip


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the ROP_ variable."""


class Settings(BaseSettings):
    # An empty variable (`ROP_DB=`) means "not set", not "the current folder".
    model_config = SettingsConfigDict(env_prefix="ROP_", extra="ignore", env_ignore_empty=True)

    # A DuckDB file path, or a postgresql:// URL (server mode, docs/SERVER.md).
    db: Path | str = Field(
        default_factory=default_db_path, description="Store file (DuckDB) or postgresql:// URL"
    )
    webhook: str | None = Field(default=None, description="Bitrix24 incoming webhook URL")
    portal: str | None = Field(
        default=None, description="The portal the web report serves, in a store of several"
    )
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
    # The web server's defences (docs/WEB.md, Security). Host names the server
    # answers to, comma-separated: a DNS-rebinding page reaches us under its own
    # name and is refused. None: the bound host plus the loopback names.
    allowed_hosts: str | None = Field(default=None, description="Host names served")
    max_body_bytes: int = Field(default=64 * 1024, gt=0, description="Largest request body")
    request_timeout: float = Field(
        default=15.0, gt=0, description="Seconds a client has to send a whole request"
    )
    keep_alive_timeout: float = Field(
        default=5.0, gt=0, description="Seconds an idle connection stays open between requests"
    )
    report_builds: int = Field(default=2, gt=0, description="Report builds run at once")
    # The data-quality panel (docs/CONFIG.md "Data quality"): its checks and thresholds.
    quality_checks: str = Field(default="all", description="Data-quality checks shown")
    quality_stale_days: int = Field(default=14, ge=1, le=3650)
    quality_lead_hours: int = Field(default=4, ge=1, le=1000)

    @field_validator("quality_checks")
    @classmethod
    def _checks(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        if names in (["all"], []):
            return ",".join(QUALITY_CHECKS) if names else ""
        unknown = [n for n in names if n not in QUALITY_CHECKS]
        if unknown:
            choices = ", ".join(QUALITY_CHECKS)
            raise ValueError(f"unknown check {unknown[0]!r} (choose from all, {choices})")
        return ",".join(names)

    def quality_check_names(self) -> tuple[str, ...]:
        """The checks switched on; the top layers build the report's QualitySettings."""
        return tuple(n for n in self.quality_checks.split(",") if n)

    # The DuckDB store's own bounds in a server (docs/CONFIG.md): its buffer
    # pool (queries spill to disk past it) and its worker threads (0: one per core).
    # 320MB keeps a 1M-deal server under 600 MB with 20 viewers building at once
    # (384MB did until the client sections' stored managers: 624-635 MB since;
    # docs/BENCHMARKS.md, crowd round 10), the crowd's p95 unchanged.
    db_memory_limit: str = Field(
        default="320MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
    )
    db_threads: int = Field(default=0, ge=0, description="DuckDB threads (0: one per core)")
    # The DuckDB store's memory limit in `rop sync` (without one DuckDB takes
    # most of the machine's memory: 1.9 GB for a 1M-deal portal's facts
    # rebuild). A bound makes the stored facts' rebuild
    # and the sync's queries spill to disk instead of growing the process;
    # at 160MB a whole 1M-deal portal's sync peaked at 406 MB (docs/BENCHMARKS.md).
    sync_memory_limit: str = Field(
        default="160MB", pattern=r"^(\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB))?$"
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: str | None) -> str | None:
        # The patterns Starlette's TrustedHostMiddleware takes: a name, "*",
        # or "*.example.com"; checked here so a typo names the variable.
        if value is None:
            return None
        names = [n.strip() for n in value.split(",") if n.strip()]
        if not names:
            raise ValueError("no host names (a comma-separated list, e.g. rop.example.com)")
        for name in names:
            wild = name.startswith("*")
            if "*" in name[1:] or (wild and name != "*" and not name.startswith("*.")):
                raise ValueError(f"bad host name {name!r} (a wildcard is '*' or '*.example.com')")
            if any(c in name for c in "/ ") or (":" in name and name.count(":") < 2):
                raise ValueError(f"bad host name {name!r} (a name without scheme or port)")
        return ",".join(names)

    def host_names(self) -> list[str]:
        """The host names the web server answers to (``ROP_ALLOWED_HOSTS``)."""
        if self.allowed_hosts is not None:
            names = self.allowed_hosts.split(",")
            return list(dict.fromkeys(_bracketed(n.lower()) for n in names))
        names = [self.host, "localhost", "127.0.0.1", "::1"]
        if self.app_public_url:
            # Application mode: Bitrix24 and the portal's frame reach us by this name.
            from urllib.parse import urlsplit

            names.append(urlsplit(self.app_public_url).hostname or "")
        if self.host in ("0.0.0.0", "::", ""):
            # Listening everywhere: this machine's own name too (no DNS lookup);
            # other names and addresses must be listed in ROP_ALLOWED_HOSTS.
            import socket

            names.append(socket.gethostname())
        return list(dict.fromkeys(_bracketed(n.lower()) for n in names if n))

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
    # Bitrix24's servers cannot reach this one (the public URL is the frame's,
    # seen from inside the office): CRM events wait in the portal's offline
    # queue and the server polls it (rop/web/appmode/offline_poll.py).
    app_offline_events: bool = False
    app_offline_poll_seconds: float = Field(default=10.0, ge=1.0, le=3600.0)

    def app_problem(self) -> str | None:
        """A half-configured application mode, named: all three settings or none."""
        given = {
            "ROP_APP_CLIENT_ID": self.app_client_id,
            "ROP_APP_CLIENT_SECRET": self.app_client_secret,
            "ROP_APP_PUBLIC_URL": self.app_public_url,
        }
        missing = [name for name, value in given.items() if not value]
        if missing and len(missing) < len(given):
            return "application mode needs " + ", ".join(missing) + " as well"
        return None

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

    log_format: str = Field(default="text", pattern="^(text|json)$")
    rest_log: Path | None = Field(default=None, description="File of the REST request log")
    # Bitrix24 requires servers calling its REST API to keep request logs >= 3 days.
    rest_log_days: int = Field(default=7, ge=3, description="Days of REST log kept")

    # Scheduled digests (docs/DIGESTS.md). The server sends what is due every
    # minute unless ROP_DIGESTS=false (e.g. a periodic worker does it instead).
    digests: bool = Field(default=True, description="Send scheduled digests from the server")
    digests_skip_empty: bool = Field(default=True, description="Skip a digest with nothing in it")
    digests_rank: bool = Field(default=False, description="Show a manager their place")
    digests_chat: str = Field(default="notify", pattern="^(notify|bot)$")
    # Where a digest's link points outside Bitrix24: the web report's public
    # address. Default: ROP_APP_PUBLIC_URL, else this server's own address.
    report_url: str | None = Field(default=None, description="Public URL of the web report")
    # The app's code in /marketplace/view/<code>/ (Market code; default client_id).
    app_code: str | None = Field(default=None, description="Market code of the app")
    smtp_host: str | None = Field(default=None, description="SMTP server for digests")
    smtp_port: int = Field(default=587, gt=0, le=65535)
    smtp_security: str = Field(default="starttls", pattern="^(starttls|ssl|none)$")
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = Field(default="rop-report@localhost", description="Sender address")
    smtp_from_name: str = "ROP Report"

    @field_validator("db", mode="before")
    @classmethod
    def _path_or_url(cls, value: object) -> object:
        # A URL must stay a string: Path() would fold its "//".
        if isinstance(value, str) and not value.startswith(("postgresql://", "postgres://")):
            return Path(value)
        return value

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


def _bracketed(name: str) -> str:
    # Browsers send an IPv6 address in brackets (Host: [::1]:8000).
    return f"[{name.strip('[]')}]" if ":" in name else name


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
