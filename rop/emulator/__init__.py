"""A Bitrix24 portal emulator: serves a snapshot folder through Bitrix24's REST API.

    app = create_app("portal/", EmulatorConfig(rate_limit=False))
    with serve_in_thread(app) as base_url:
        webhook = f"{base_url}/rest/1/<token>/"

See docs/EMULATOR.md.
"""

from rop.emulator.app import create_app
from rop.emulator.config import EmulatorConfig, FaultConfig
from rop.emulator.data import Portal, PortalError, load_portal
from rop.emulator.server import serve_in_thread

__all__ = [
    "EmulatorConfig",
    "FaultConfig",
    "Portal",
    "PortalError",
    "create_app",
    "load_portal",
    "serve_in_thread",
]
