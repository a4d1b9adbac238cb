"""Application-mode test rig: the emulator (a portal with the app registered)
and `rop serve` in app mode, both over real loopback HTTP.

The test plays the browser: it POSTs the frame fields Bitrix24 posts, with
real tokens the emulator's OAuth server issued (BITRIX24_APP.md §1.3).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from rop.config import load_settings
from rop.emulator import EmulatorConfig, serve_in_thread
from rop.emulator import create_app as create_emulator
from rop.web.app import create_app
from rop.web.app import serve_in_thread as serve_rop
from tests.emulator_portal import write_portal

CLIENT_ID = "local.rop.test"
CLIENT_SECRET = "rop-test-secret"  # noqa: S105


@dataclass
class Rig:
    emulator: str
    rop: str
    app: Any  # the rop Starlette app
    emu_app: Any
    db: str  # a DuckDB file's path or a postgresql:// URL

    # -- the portal side ---------------------------------------------------------
    def emu(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = httpx.request(method, self.emulator + path, json=body, timeout=30)
        assert reply.status_code < 300, reply.text
        return reply.json()

    def tokens(self, user_id: int) -> dict[str, Any]:
        return dict(self.emu("POST", "/_emulator/oauth/issue", {"user_id": user_id}))

    def state(self) -> dict[str, Any]:
        return dict(self.emu("GET", "/_emulator/app"))

    @property
    def domain(self) -> str:
        return urlsplit(self.emulator).netloc

    def frame(self, user_id: int, **override: str) -> tuple[dict[str, str], dict[str, str]]:
        """(query, form) as Bitrix24 POSTs them to the app's URL for ``user_id``."""
        issued = self.tokens(user_id)
        state = self.state()
        query = {"DOMAIN": self.domain, "PROTOCOL": "0", "LANG": "ru", "APP_SID": "sid1"}
        form = {
            "AUTH_ID": issued["access_token"],
            "AUTH_EXPIRES": "3600",
            "REFRESH_ID": issued["refresh_token"],
            "SERVER_ENDPOINT": self.emulator + "/oauth/rest/",
            "APPLICATION_TOKEN": state["application_token"] or "",
            "member_id": state["member_id"],
            "status": "L",
            "PLACEMENT": "DEFAULT",
            "PLACEMENT_OPTIONS": "{}",
        }
        for key, value in override.items():
            (query if key in query else form)[key] = value
        return query, form

    def post_frame(self, path: str, user_id: int, **override: str) -> httpx.Response:
        query, form = self.frame(user_id, **override)
        return httpx.post(self.rop + path, params=query, data=form, timeout=60)

    def open_as(self, user_id: int) -> str:
        """Open the app as ``user_id``: the report URL (with its viewer token)."""
        reply = self.post_frame("/app", user_id)
        assert reply.status_code == 303, reply.text
        return self.rop + reply.headers["location"]

    def query(self, sql: str, params: list | None = None) -> list:
        """Rows of the served store, on a cursor of the server's own store."""
        cur = self.app.state.store.cursor()
        try:
            return cur.query(sql, params or [])
        finally:
            cur.close()

    def wait_sync(self, url: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = httpx.get(url, timeout=10).json()
            if status["state"] in ("done", "failed"):
                return dict(status)
            time.sleep(0.2)
        raise AssertionError("the sync did not finish")


def until(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    """Whether ``check()`` came true within ``timeout`` seconds (asked every ``every``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


@contextlib.contextmanager
def _emulator(folder: Path, deals: int, **info: Any) -> Iterator[tuple[str, Any]]:
    portal_dir = write_portal(folder, deals=deals, **info)
    emu_app = create_emulator(
        portal_dir,
        EmulatorConfig(rate_limit=False, oauth=True, test_api=True, simulate_processing=False),
    )
    with serve_in_thread(emu_app) as emulator:
        yield emulator, emu_app


def _register(emulator: str, rop: str) -> None:
    httpx.post(
        emulator + "/_emulator/app",
        json={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "handler": rop + "/app",
            "install_url": rop + "/app/install",
        },
        timeout=10,
    ).raise_for_status()


@contextlib.contextmanager
def app_rigs(
    tmp_path: Path, portals: int = 1, deals: int = 60, db: str | None = None, **extra: Any
) -> Iterator[list[Rig]]:
    """``portals`` emulated portals (each its own member_id) and one `rop serve` in app mode.

    ``db``: the store (default: a DuckDB file in ``tmp_path``; a postgresql://
    URL runs the server mode, where `rop worker` processes sync); ``extra``
    settings add to (or replace) the server's.
    """
    with contextlib.ExitStack() as stack:
        emulators = [
            stack.enter_context(
                _emulator(tmp_path / f"portal{i}", deals + 7 * i, member_id=f"{i + 1:032x}")
            )
            for i in range(portals)
        ]
        store = db or str(tmp_path / "rop.duckdb")
        settings = load_settings(
            db=store,
            app_client_id=CLIENT_ID,
            app_client_secret=CLIENT_SECRET,
            app_public_url="http://127.0.0.1:1",  # replaced below once the port is known
            app_auth_servers=",".join(urlsplit(e).netloc for e, _ in emulators),
            **extra,
        )
        app = create_app(settings, cache_size=0)
        server = serve_rop(app)
        stack.callback(server.stop)
        app.state.appmode.public_url = server.url
        rigs = []
        for emulator, emu_app in emulators:
            _register(emulator, server.url)
            rigs.append(Rig(emulator, server.url, app, emu_app, store))
        yield rigs


@contextlib.contextmanager
def app_rig(
    tmp_path: Path, deals: int = 60, install: bool = True, **settings: Any
) -> Iterator[Rig]:
    with app_rigs(tmp_path, 1, deals, **settings) as (rig,):
        if install:
            installed(rig)
        yield rig


def installed(rig: Rig, admin: int = 1) -> str:
    """The admin installs the app; returns the status page's sync URL after the first copy."""
    rig.emu("POST", "/_emulator/app/install", {"user_id": admin})
    page = rig.post_frame("/app/install", admin)
    assert page.status_code == 200, page.text
    rig.emu("POST", "/_emulator/app/finish")  # what installFinish does in the frame
    sync_url = rig.rop + _attr(page.text, "data-sync-url")
    assert rig.wait_sync(sync_url)["state"] == "done"
    return sync_url


def _attr(html: str, name: str) -> str:
    import html as htmllib

    start = html.index(name + '="') + len(name) + 2
    return htmllib.unescape(html[start : html.index('"', start)])


def won_deals(page_url: str, timeout: float = 120) -> int:
    """The report's total of won deals, read from the JSON twin of a report page URL."""
    reply = httpx.get(page_url.replace("/report?", "/report.json?"), timeout=timeout)
    assert reply.status_code == 200, reply.text[:300]
    stack, found = [reply.json()["report"]["total"]], []
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "deals_won" and not isinstance(value, dict | list):
                    found.append(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    assert found, "no deals_won in the report"
    return int(found[0] or 0)
