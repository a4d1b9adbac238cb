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

from rop.config import Settings, default_db_path

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
    # The demo always runs on DuckDB, beside the default file even in server mode.
    base = settings.db if isinstance(settings.db, Path) else default_db_path()
    folder = base.parent / "demo"
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


def _prepare_portal(
    portal_dir: Path, db_path: Path, deals: int, say: Callable[[str], None]
) -> None:
    """Generate the demo portal unless today's one of this size is on disk."""
    from rop.demo.generator import generate

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


def run_demo(
    settings: Settings,
    *,
    deals: int = DEMO_DEALS,
    emulator_port: int = 0,
    say: Callable[[str], None] = print,
) -> None:
    from rop.bitrix.snapshot import read_portal_info
    from rop.bitrix.sync import run_sync
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
    _prepare_portal(portal_dir, db_path, deals, say)
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


# The demo application's credentials: the emulated portal registers it as a
# local application with these (they protect nothing outside this machine).
DEMO_CLIENT_ID = "local.ropdemo.app"
DEMO_CLIENT_SECRET = "rop-demo-secret"  # noqa: S105


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def run_demo_app(
    settings: Settings,
    *,
    deals: int = DEMO_DEALS,
    say: Callable[[str], None] = print,
    ready: Callable[[dict[str, Any]], None] | None = None,
    stop: Any = None,
) -> None:
    """`rop demo --app`: the emulated portal with ROP Report as its application.

    The report server runs in application mode with an empty store of its
    own; the portal page (printed) lets you act as any user, install the app
    as an administrator (its first copy runs then), and open it in the
    portal's frame. ``ready({"portal", "report", "emulator", "app"})`` is
    called once both serve (tests); the call returns when interrupted (Ctrl+C) or when
    ``stop`` (a threading.Event) is set.
    """
    import threading

    from rop.emulator import EmulatorConfig, create_app, serve_in_thread
    from rop.emulator.config import AppSettings
    from rop.web.app import create_app as create_web_app
    from rop.web.app import serve_in_thread as serve_web

    port = settings.port
    if port and not _can_listen(settings.host, port):
        raise DemoError(
            f"cannot listen on {settings.host}:{port}: the port is in use "
            "(pass --port N, or --port 0 for any free port)"
        )
    portal_dir, demo_db = demo_paths(settings)
    app_db = portal_dir.parent / "app.duckdb"
    _prepare_portal(portal_dir, demo_db, deals, say)
    # The emulator's tokens live in its memory: a new run is a new install.
    _forget_store(app_db)
    port = port or _free_port(settings.host)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    # ROP_APP_PUBLIC_URL may name this server otherwise (e.g. localhost, so
    # the portal on 127.0.0.1 frames another site, as a real portal does).
    report_url = settings.app_public_url or f"http://{shown}:{port}"
    app = AppSettings(
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        handler=report_url + "/app",
        install_url=report_url + "/app/install",
    )
    emulator = create_app(
        portal_dir,
        EmulatorConfig(rate_limit=True, rate_per_second=DEMO_RATE, burst=DEMO_BURST, app=app),
    )
    with serve_in_thread(emulator, host="127.0.0.1", port=0) as portal_url:
        web_settings = settings.model_copy(
            update={
                "db": app_db,
                "port": port,
                "webhook": None,
                "demo": False,
                "app_client_id": DEMO_CLIENT_ID,
                "app_client_secret": DEMO_CLIENT_SECRET,
                "app_public_url": report_url,
                "app_auth_servers": urlsplit(portal_url).netloc,
                "rate_per_second": DEMO_RATE,
                "rate_burst": DEMO_BURST,
            }
        )
        web_app = create_web_app(web_settings)
        server = serve_web(web_app, settings.host, port)
        try:
            say(f"ROP Report as a Bitrix24 application: {report_url}/app")
            say(
                f"Bitrix24 portal (emulated): {portal_url}/ -- open it, install the "
                "application as the administrator, then switch users"
            )
            if ready is not None:
                ready(
                    {
                        "portal": portal_url,
                        "report": report_url,
                        "emulator": emulator,
                        "app": web_app,
                    }
                )
            stop = stop or threading.Event()
            try:
                while server.thread.is_alive() and not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
        finally:
            server.stop()
