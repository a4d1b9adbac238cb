"""A sync against a portal that answers badly: one clear message naming the method.

A small proxy stands between the sync and the emulator (both real HTTP on
loopback) and spoils replies: cut mid-JSON, an HTML page with 200, a 302 to
another host, an empty ``result`` where a list is expected. Spoiled from the
first request, the store must stay exactly as it was; spoiled midway, the run
is logged as failed and the next clean run ends exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rop.bitrix.client import RetryPolicy
from rop.bitrix.sync import SyncError, run_sync
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.store.db import Store, open_store
from tests.sync_portal import TOKEN, make_portal
from tests.test_sync import Emulated, assert_store_equals_portal

QUICK = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)

# (request number from 1, upstream reply) -> the reply the sync sees
Spoiler = Callable[[int, httpx.Response], Response]


def cut(n: int, upstream: httpx.Response) -> Response:
    return Response(
        upstream.content[: len(upstream.content) // 2], 200, media_type="application/json"
    )


def html(n: int, upstream: httpx.Response) -> Response:
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    return Response(page, 200, media_type="text/html")


def moved(n: int, upstream: httpx.Response) -> Response:
    return Response(b"", 302, headers={"location": "https://moved.bitrix24.ru/rest/1/x/batch"})


def empty_lists(n: int, upstream: httpx.Response) -> Response:
    body = upstream.json()
    inner = body["result"]["result"]
    for key in inner:
        if key not in ("me", "admin", "currency"):
            inner[key] = ""  # a list command answering an empty string
    return Response(json.dumps(body), 200, media_type="application/json")


class Proxy:
    """Forwards to the emulator; from request ``spoil_from`` on, spoils the reply."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.spoiler: Spoiler | None = None
        self.spoil_from = 1
        self.seen = 0
        self.app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])

    async def handle(self, request: Request) -> Response:
        self.seen += 1
        async with httpx.AsyncClient() as client:
            reply = await client.request(
                request.method,
                f"{self.upstream}{request.url.path}",
                params=request.url.query,
                content=await request.body(),
                headers={"content-type": request.headers.get("content-type", "")},
            )
        if self.spoiler is not None and self.seen >= self.spoil_from:
            return self.spoiler(self.seen, reply)
        return Response(reply.content, reply.status_code, media_type="application/json")


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=200)


@pytest.fixture
def setup(portal_dir: Path, tmp_path: Path) -> Iterator[tuple[Proxy, Emulated, Store, str]]:
    app = create_app(portal_dir, EmulatorConfig(rate_limit=False))
    with serve_in_thread(app) as base:
        proxy = Proxy(base)
        with serve_in_thread(proxy.app) as front, open_store(tmp_path / "rop.duckdb") as store:
            emu = Emulated(app, front)
            yield proxy, emu, store, f"{front}/rest/1/{TOKEN}/"


def dump(store: Store) -> dict[str, list[str]]:
    tables = [r[0] for r in store.query("SELECT table_name FROM information_schema.tables")]
    return {t: sorted(map(repr, store.query(f"SELECT * FROM {t}"))) for t in sorted(tables)}  # noqa: S608


def sync(store: Store, webhook: str) -> Any:
    return run_sync(store, webhook, rate_per_second=100.0, rate_burst=100, retry=QUICK)


CASES = [
    (cut, ["batch (user.current", "not Bitrix24 JSON", "gave up after 3 tries"]),
    (html, ["batch (user.current", "not Bitrix24 JSON", "502 Bad Gateway"]),
    (
        moved,
        ["batch (user.current", "MOVED", "https://moved.bitrix24.ru/rest/1/x/batch", "HTTP 302"],
    ),
    (empty_lists, ["user.get", "expected a list of records, got ''"]),
]


@pytest.mark.parametrize(("spoiler", "expect"), CASES, ids=[c[0].__name__ for c in CASES])
def test_spoiled_from_the_start_leaves_the_store_as_it_was(
    setup: tuple[Proxy, Emulated, Store, str], spoiler: Spoiler, expect: list[str]
) -> None:
    proxy, emu, store, webhook = setup
    sync(store, webhook)
    emu.portal.update("deal", 5, {"TITLE": "changed after the first sync"})
    before = dump(store)
    proxy.spoiler = spoiler
    proxy.spoil_from = proxy.seen + 1
    with pytest.raises(SyncError) as caught:
        sync(store, webhook)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    for part in expect:
        assert part in message, message
    assert dump(store) == before


@pytest.mark.parametrize("spoiler", [cut, html, moved], ids=["cut", "html", "moved"])
def test_spoiled_midway_is_logged_and_the_next_run_ends_exact(
    setup: tuple[Proxy, Emulated, Store, str], portal_dir: Path, spoiler: Spoiler
) -> None:
    proxy, emu, store, webhook = setup
    proxy.spoiler = spoiler
    proxy.spoil_from = 3  # after the preflight and the users' second page
    with pytest.raises(SyncError) as caught:
        sync(store, webhook)
    assert "batch (" in str(caught.value)
    runs = store.query_dicts("SELECT outcome, message FROM sync_runs")
    assert [r["outcome"] for r in runs] == ["failed"]
    assert runs[0]["message"] == str(caught.value)
    proxy.spoiler = None
    sync(store, webhook)
    assert_store_equals_portal(store, emu, portal_dir)


def test_a_webhook_without_telephony_stops_before_writing(portal_dir: Path, tmp_path: Path) -> None:
    # The README asks for crm, user, department and telephony; one missing is
    # caught by the preflight, named, explained, and nothing is written.
    info = json.loads((portal_dir / "portal.json").read_text(encoding="utf-8"))
    folder = tmp_path / "portal"
    folder.mkdir()
    for path in portal_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    hooks = [{"user_id": 1, "token": "no-calls", "scopes": ["crm", "user", "department"]}]
    (folder / "portal.json").write_text(json.dumps({**info, "webhooks": hooks}), encoding="utf-8")
    app = create_app(folder, EmulatorConfig(rate_limit=False))
    with serve_in_thread(app) as base, open_store(tmp_path / "rop.duckdb") as store:
        before = dump(store)
        with pytest.raises(SyncError) as caught:
            sync(store, f"{base}/rest/1/no-calls/")
        assert dump(store) == before
    message = str(caught.value)
    assert message.startswith("voximplant.statistic.get: insufficient_scope:"), message
    assert "Telephony (telephony)" in message and "\n" not in message
