"""`rop sync` from the command line: success, each kind of failure, and a locked store.

Every failure must end with one clear message, a non-zero exit and the store
exactly as it was.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from time import monotonic as time_monotonic
from time import sleep as time_sleep
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rop.bitrix import client as client_module
from rop.bitrix.client import RetryPolicy
from rop.bitrix.sync import run_sync
from rop.cli import cli
from rop.emulator import EmulatorConfig, FaultConfig, create_app, serve_in_thread
from rop.emulator import methods as emulator_methods
from rop.emulator.errors import ApiError
from rop.store.db import open_store
from tests.sync_portal import TOKEN, make_portal


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=120)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI uses the default policy; keep its backoff short in tests.
    quick = functools.partial(RetryPolicy, attempts=4, base_delay=0.01, max_delay=0.02)
    monkeypatch.setattr(client_module, "RetryPolicy", quick)


def serve(portal_dir: Path, **config: Any) -> Any:
    app = create_app(portal_dir, EmulatorConfig(rate_limit=False, **config))
    return serve_in_thread(app, host="127.0.0.1", port=0)


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows, to compare a store before and after."""
    with open_store(db) as store:
        tables = [r[0] for r in store.query("SELECT table_name FROM information_schema.tables")]
        return {t: sorted(map(repr, store.query(f"SELECT * FROM {t}"))) for t in sorted(tables)}


def rop(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def synced_db(tmp_path: Path, portal_dir: Path) -> Iterator[tuple[Path, str]]:
    """A store that already holds one good sync, and the emulator it came from."""
    db = tmp_path / "rop.duckdb"
    with serve(portal_dir) as base:
        result = rop("sync", "--webhook", f"{base}/rest/1/{TOKEN}/", "--db", str(db))
        assert result.exit_code == 0, result.output
        yield db, base


def test_sync_prints_a_summary_and_repeats_safely(synced_db: tuple[Path, str]) -> None:
    db, base = synced_db
    result = rop("sync", "--db", str(db), env={"ROP_WEBHOOK": f"{base}/rest/1/{TOKEN}/"})
    assert result.exit_code == 0, result.output
    assert "incremental sync of 127.0.0.1" in result.output
    assert "deals" in result.output and "+0 added" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _denied(call: Any) -> Any:
    raise ApiError("ACCESS_DENIED", "Access to telephony statistics is denied", 403)


@pytest.mark.parametrize("case", ["nothing-listening", "bad-token", "denied", "garbage"])
def test_failures_end_with_one_message_and_leave_the_store(
    case: str, synced_db: tuple[Path, str], portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, base = synced_db
    before = dump(db)
    if case == "nothing-listening":
        url, expect = f"http://127.0.0.1:{_free_port()}/rest/1/{TOKEN}/", "cannot connect"
        result = rop("sync", "--webhook", url, "--db", str(db))
    elif case == "bad-token":
        url, expect = f"{base}/rest/1/wrong/", "INVALID_CREDENTIALS"
        result = rop("sync", "--webhook", url, "--db", str(db))
    elif case == "denied":
        monkeypatch.setitem(emulator_methods.METHODS, "voximplant.statistic.get", _denied)
        url, expect = f"{base}/rest/1/{TOKEN}/", "voximplant.statistic.get: ACCESS_DENIED"
        result = rop("sync", "--webhook", url, "--db", str(db))
    else:
        faults = FaultConfig(malformed_rate=1.0)
        with serve(portal_dir, faults=faults) as garbage:
            url, expect = f"{garbage}/rest/1/{TOKEN}/", "not Bitrix24 JSON"
            result = rop("sync", "--webhook", url, "--db", str(db))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert expect in lines[0]
    assert "Traceback" not in result.output
    assert dump(db) == before


def test_bad_input_is_exit_code_2(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    result = rop("sync", "--db", db, env={"ROP_WEBHOOK": ""})
    assert result.exit_code == 2 and "no webhook" in result.output
    result = rop("sync", "--webhook", "https://portal.bitrix24.ru/crm/", "--db", db)
    assert result.exit_code == 2 and "rest/USER_ID/CODE" in result.output


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def held_db(tmp_path: Path) -> Iterator[Path]:
    """A store file opened for writing by another process."""
    db = tmp_path / "held.duckdb"
    open_store(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield db
    finally:
        holder.kill()
        holder.wait()


def test_locked_store_without_server_says_so(held_db: Path) -> None:
    result = rop("sync", "--webhook", "http://127.0.0.1:1/rest/1/t/", "--db", str(held_db))
    assert result.exit_code == 2
    assert "locked by another process" in result.output and "Traceback" not in result.output


def test_locked_store_forwards_to_the_server(held_db: Path) -> None:
    asked: list[Any] = []

    async def api_sync(request: Request) -> JSONResponse:
        asked.append(await request.json())
        return JSONResponse({"outcome": "ok", "requests": 3})

    app = Starlette(routes=[Route("/api/sync", api_sync, methods=["POST"])])
    with serve_in_thread(app, host="127.0.0.1", port=0) as base:
        Path(f"{held_db}.server.json").write_text(json.dumps({"url": base}))
        result = rop(
            "sync", "--webhook", "http://127.0.0.1:1/rest/1/t/", "--db", str(held_db), "--full"
        )
    assert result.exit_code == 0, result.output
    # The portal meant lets a server that syncs another one refuse (issue 9).
    assert asked == [{"full": True, "portal": "127.0.0.1:1"}]
    assert '"outcome": "ok"' in result.output


class CountingApp:
    """ASGI wrapper counting REST requests, so a test can act after the n-th."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.rest_requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/rest/"):
            self.rest_requests += 1
        await self.app(scope, receive, send)


def test_sync_process_killed_midway_then_rerun_is_exact(portal_dir: Path, tmp_path: Path) -> None:
    from tests.test_sync import Emulated, assert_store_equals_portal

    # The child paces itself (8 req/s, no burst), so there is time to kill it
    # midway; the emulator's own limit stays off to keep the rerun fast.
    app = create_app(portal_dir, EmulatorConfig(rate_limit=False))
    counting = CountingApp(app)
    db = tmp_path / "killed.duckdb"
    with serve_in_thread(counting, host="127.0.0.1", port=0) as base:
        emu = Emulated(app, base)
        env = {**os.environ, "ROP_RATE_PER_SECOND": "8", "ROP_RATE_BURST": "1"}
        child = subprocess.Popen(
            [sys.executable, "-c", "from rop.cli import main; main()", "sync"]
            + ["--webhook", emu.webhook, "--db", str(db)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time_monotonic() + 60
            while counting.rest_requests < 5 and child.poll() is None:
                assert time_monotonic() < deadline, "the sync never got going"
                time_sleep(0.01)
            child.kill()  # SIGKILL: no cleanup code runs
        finally:
            child.wait()
        assert child.returncode != 0, "the sync finished before it could be killed"
        emu.portal.update("deal", 1, {"TITLE": "changed while down"})
        with open_store(db) as store:
            run_sync(store, emu.webhook)
            assert_store_equals_portal(store, emu, portal_dir)
            # The killed run had started (the preflight is request 1): the
            # next run marks it interrupted.
            runs = store.query("SELECT outcome FROM sync_runs ORDER BY id")
            assert runs == [("interrupted",), ("ok",)]


def test_sync_while_rop_serve_holds_the_store(portal_dir: Path, tmp_path: Path) -> None:
    """The real pair: `rop serve` owns the file, `rop sync` hands it the sync."""
    from tests.test_sync import Emulated, assert_store_equals_portal

    app = create_app(portal_dir, EmulatorConfig(rate_limit=False))
    db = tmp_path / "served.duckdb"
    with serve_in_thread(app, host="127.0.0.1", port=0) as base:
        emu = Emulated(app, base)
        server = subprocess.Popen(
            [sys.executable, "-c", "from rop.cli import main; main()", "serve"]
            + ["--db", str(db), "--webhook", emu.webhook, "--port", "0"],
            env={**os.environ, "ROP_SYNC_INTERVAL_MINUTES": "0"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert server.stdout is not None
            assert "ROP Report" in server.stdout.readline()
            result = rop("sync", "--db", str(db), "--webhook", emu.webhook)
            assert result.exit_code == 0, result.output
            assert "the server ran the sync" in result.output
            assert '"state": "done"' in result.output
        finally:
            server.terminate()
            server.wait(timeout=30)
        with open_store(db) as store:
            assert_store_equals_portal(store, emu, portal_dir)
