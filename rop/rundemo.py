"""`rop demo`: the whole product on a generated portal, in one command.

Generates a demo portal (once; kept in the data folder), serves it through
the Bitrix24 emulator on loopback, copies it into a demo store through the
REST API exactly as a real portal would be copied, then serves the report.
This module sits above web/ and bitrix/ because it wires them together.

The store keys a portal by its address, so the emulator comes back on the
port it had last time: a second run then syncs only what changed, and the
demo store holds one portal, not one per run.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rop.config import Settings

DEMO_SEED = 1
DEMO_DEALS = 20000
# Bitrix24 Enterprise limits (BITRIX24_API.md §2): keep the demo quick while
# the emulator's limiter and the client's bucket still do their work.
DEMO_RATE = 5.0
DEMO_BURST = 250


class DemoError(RuntimeError):
    """The demo cannot run (a busy port, ...); the message says what to do."""


def demo_paths(settings: Settings) -> tuple[Path, Path]:
    """The demo portal folder and the demo store, beside the default store."""
    folder = settings.db.parent / "demo"
    return folder / "portal", folder / "demo.duckdb"


def _marker(portal_dir: Path) -> Path:
    """What the demo portal was generated with; written last, so it also says "complete"."""
    return portal_dir.parent / "demo.json"


def _read_marker(portal_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(_marker(portal_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_marker(portal_dir: Path, **values: Any) -> None:
    _marker(portal_dir).write_text(json.dumps(values), encoding="utf-8")


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


def _reusable(portal_dir: Path, deals: int) -> bool:
    """The portal on disk is complete, of today, and generated with these options."""
    marker = _read_marker(portal_dir)
    return (
        marker.get("seed") == DEMO_SEED
        and marker.get("deals") == deals
        and (portal_dir / "portal.json").exists()
        and not _stale(portal_dir)
    )


def _forget_store(db_path: Path) -> None:
    for leftover in (db_path, db_path.with_name(db_path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _can_listen(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def run_demo(
    settings: Settings,
    *,
    deals: int = DEMO_DEALS,
    emulator_port: int = 0,
    say: Callable[[str], None] = print,
) -> None:
    from rop.bitrix.snapshot import read_portal_info
    from rop.bitrix.sync import run_sync
    from rop.demo.generator import generate
    from rop.emulator import EmulatorConfig, create_app, serve_in_thread
    from rop.store import open_store
    from rop.web.app import create_app as create_web_app
    from rop.web.app import serve

    # Before minutes of generating and syncing: the report's port must be free.
    if settings.port and not _can_listen(settings.host, settings.port):
        raise DemoError(
            f"cannot listen on {settings.host}:{settings.port}: the port is in use "
            "(pass --port N, or --port 0 for any free port)"
        )
    portal_dir, db_path = demo_paths(settings)
    if not _reusable(portal_dir, deals):
        # Another day, another size, or a run cut short: start over, store included.
        shutil.rmtree(portal_dir, ignore_errors=True)
        _marker(portal_dir).unlink(missing_ok=True)
        _forget_store(db_path)
        # The demo portal's "now" is the real present (to the hour), so "this
        # month" always has data; `rop demo-portal` keeps a fixed default for
        # byte-identical snapshots.
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        try:
            generate(portal_dir, seed=DEMO_SEED, deals=deals, now=now)
        except ValueError as exc:
            raise DemoError(str(exc)) from None
        _write_marker(portal_dir, seed=DEMO_SEED, deals=deals)
    say(f"demo portal generated at {portal_dir}")
    marker = _read_marker(portal_dir)
    port = emulator_port or int(marker.get("port") or 0)
    if port and not emulator_port and not _can_listen("127.0.0.1", port):
        port = 0
    info = read_portal_info(portal_dir)
    emulator = create_app(
        portal_dir, EmulatorConfig(rate_limit=True, rate_per_second=DEMO_RATE, burst=DEMO_BURST)
    )
    with contextlib.ExitStack() as stack:
        base_url = stack.enter_context(serve_in_thread(emulator, host="127.0.0.1", port=port))
        bound = urlsplit(base_url).port
        if bound != marker.get("port"):
            # A new address is a new portal to the store: copy it afresh
            # rather than keep the old copy beside it.
            _forget_store(db_path)
            _write_marker(portal_dir, **{**marker, "port": bound})
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
        try:
            serve(app, web_settings.host, web_settings.port)
        except OSError as exc:
            raise DemoError(
                f"cannot listen on {web_settings.host}:{web_settings.port}: {exc.strerror}"
            ) from None
