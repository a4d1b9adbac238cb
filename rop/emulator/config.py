"""Emulator settings: which Bitrix24 rules are on and how strict they are."""

from __future__ import annotations

from dataclasses import dataclass

# Bitrix24 cloud limits (BITRIX24_API.md §2): leaky bucket draining 2 req/s
# with a burst of 50 (Enterprise: 5 and 250); 480 s of execution time per
# method in a 10-minute window.
DEFAULT_RATE_PER_SECOND = 2.0
DEFAULT_BURST = 50
DEFAULT_OPERATING_LIMIT_SECONDS = 480.0
# OAuth access tokens live one hour (BITRIX24_API.md §8).
DEFAULT_TOKEN_TTL_SECONDS = 3600.0


@dataclass(frozen=True)
class FaultConfig:
    """Seeded fault injection; each rate is the chance per REST request."""

    drop_rate: float = 0.0  # connection closed mid-reply
    error_rate: float = 0.0  # HTTP 500 INTERNAL_SERVER_ERROR
    slow_rate: float = 0.0  # reply delayed by slow_seconds
    slow_seconds: float = 2.0
    malformed_rate: float = 0.0  # HTTP 200 with a truncated JSON body
    seed: int = 0


# What a Bitrix24 local application is given by default (BITRIX24_APP.md §1.1; the
# issue names these scopes for ROP Report).
DEFAULT_APP_SCOPES = ("crm", "user", "department", "telephony", "placement", "im")


@dataclass(frozen=True)
class AppSettings:
    """The one application registered in the emulated portal (a local app's form).

    ``handler`` is the application URL (Bitrix24's "Handler path"), ``install_url``
    the "Path for initial installation" (empty: the install finishes at once),
    ``install_handler`` the "Installation event handler URL" (gets ONAPPINSTALL).
    """

    client_id: str = "local.emulator.app"
    client_secret: str = "emulator-secret"
    handler: str = ""
    install_url: str = ""
    install_handler: str = ""
    scopes: tuple[str, ...] = DEFAULT_APP_SCOPES
    version: int = 1
    title: str = "ROP Report"


@dataclass(frozen=True)
class EmulatorConfig:
    rate_limit: bool = True
    rate_per_second: float = DEFAULT_RATE_PER_SECOND
    burst: int = DEFAULT_BURST
    operating_limit_seconds: float = DEFAULT_OPERATING_LIMIT_SECONDS
    simulate_processing: bool = True
    faults: FaultConfig | None = None
    oauth: bool = False
    # A registered application (app mode: portal page, install flow, events);
    # None: none until the test API registers one (POST /_emulator/app).
    app: AppSettings | None = None
    # The portal's address as apps see it ("http://127.0.0.1:8765"); empty: the
    # address of the first request.
    public_url: str = ""
    # Extensions beyond the shared API.
    test_api: bool = False  # POST /_emulator/... changes records (tests only)
    token_ttl_seconds: float = DEFAULT_TOKEN_TTL_SECONDS
    # Multiplies the simulated processing time (0 keeps the accounting but never sleeps).
    processing_scale: float = 1.0
