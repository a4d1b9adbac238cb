"""`rop demo`: the whole product on a generated portal, in one command.

Generates a demo portal (once; kept in the data folder), serves it through
the Bitrix24 emulator on loopback, copies it into a demo store through the
REST API exactly as a real portal would be copied, then serves the report.
This module sits above web/ and bitrix/ because it wires them together.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rop.config import Settings

DEMO_SEED = 1
DEMO_DEALS = 20000
# Bitrix24 Enterprise limits (BITRIX24_API.md §2): keep the demo quick while
# the emulator's limiter and the client's bucket still do their work.
DEMO_RATE = 5.0
DEMO_BURST = 250


def demo_paths(settings: Settings) -> tuple[Path, Path]:
    """The demo portal folder and the demo store, beside the default store."""
    folder = settings.db.parent / "demo"
    return folder / "portal", folder / "demo.duckdb"


def _stale(portal_dir: Path) -> bool:
    """True when the demo portal exists but was generated for another day."""
    from rop.bitrix.snapshot import SnapshotError, read_portal_info

    if not (portal_dir / "portal.json").exists():
        return False
    try:
        now = read_portal_info(portal_dir).now
    except SnapshotError:
        return True
    if not now:
        return True
    moment = datetime.fromisoformat(now)
    return moment.date() != datetime.now(moment.tzinfo or UTC).date()


def run_demo(
    settings: Settings,
    *,
    deals: int = DEMO_DEALS,
    emulator_port: int = 0,
    say: Callable[[str], None] = print,
) -> None:
    from rop.bitrix.emulator import EmulatorConfig, create_app, serve_in_thread
    from rop.bitrix.snapshot import read_portal_info
    from rop.bitrix.sync import run_sync
    from rop.demo.generator import generate
    from rop.store import open_store
    from rop.web.app import create_app as create_web_app
    from rop.web.app import serve

    portal_dir, db_path = demo_paths(settings)
    if _stale(portal_dir):
        # A portal generated on another day: start over, store included.
        shutil.rmtree(portal_dir, ignore_errors=True)
        for leftover in (db_path, db_path.with_name(db_path.name + ".wal")):
            leftover.unlink(missing_ok=True)
    if not (portal_dir / "portal.json").exists():
        # The demo portal's "now" is the real present (to the hour), so "this
        # month" always has data; `rop demo-portal` keeps a fixed default for
        # byte-identical snapshots.
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        generate(portal_dir, seed=DEMO_SEED, deals=deals, now=now)
    say(f"demo portal generated at {portal_dir}")
    info = read_portal_info(portal_dir)
    emulator = create_app(
        portal_dir, EmulatorConfig(rate_limit=True, rate_per_second=DEMO_RATE, burst=DEMO_BURST)
    )
    with contextlib.ExitStack() as stack:
        base_url = stack.enter_context(
            serve_in_thread(emulator, host="127.0.0.1", port=emulator_port)
        )
        webhook = f"{base_url}/rest/{info.webhook_user_id}/{info.webhook_token}/"
        say(f"Bitrix24 emulator serving the demo portal at {webhook}")
        store = stack.enter_context(open_store(db_path))
        run_sync(
            store,
            webhook,
            rate_per_second=DEMO_RATE,
            rate_burst=DEMO_BURST,
            timezone=info.timezone,
        )
        say(f"store at {db_path}")
        web_settings = settings.model_copy(update={"db": db_path, "webhook": webhook, "demo": True})
        app = create_web_app(web_settings, store=store)
        serve(app, web_settings.host, web_settings.port)
