"""`rop demo` end to end: generate, emulate, sync over HTTP, serve; the page answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _wait_for_line(proc: subprocess.Popen, prefix: str, deadline: float) -> str:
    assert proc.stdout is not None
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"no line starting with {prefix!r}; output: {''.join(seen)}")


def test_demo_command_serves_a_synced_report(tmp_path: Path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "ROP_DB": ""}
    env.pop("ROP_DB")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rop.cli", "demo", "--deals", "400", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 180
        _wait_for_line(proc, "demo portal generated at", deadline)
        webhook = _wait_for_line(proc, "Bitrix24 emulator serving", deadline).split()[-1]
        url = _wait_for_line(proc, "ROP Report:", deadline).split()[-1]
        report = httpx.get(url.replace("/report", "/report.json"), timeout=30).json()
        figures = report["report"]["total"]["figures"]
        assert report["report"]["data_as_of"] is not None
        # The store was filled through the emulator: it holds every deal of the portal.
        store_file = tmp_path / "rop-report" / "demo" / "demo.duckdb"
        assert store_file.exists()
        deals = httpx.post(webhook + "crm.deal.list", json={"start": 0}, timeout=30).json()
        assert deals["total"] == 400
        assert figures["deals_in_progress"] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _run_demo_without_serving(monkeypatch, tmp_path: Path, deals: int) -> list[str]:
    """run_demo up to the report's server, which a test does not need to keep running."""
    from rop import rundemo
    from rop.config import load_settings
    from rop.web import app as web_app

    served: list[str] = []
    monkeypatch.setattr(web_app, "serve", lambda app, host, port: served.append(f"{host}:{port}"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("ROP_DB", raising=False)
    lines: list[str] = []
    rundemo.run_demo(load_settings(port=0), deals=deals, say=lines.append)
    assert served == ["127.0.0.1:0"]
    return lines


def test_a_second_demo_run_keeps_one_portal_and_syncs_only_changes(monkeypatch, tmp_path: Path):
    from rop.store import open_store

    first = _run_demo_without_serving(monkeypatch, tmp_path, deals=120)
    second = _run_demo_without_serving(monkeypatch, tmp_path, deals=120)
    # Same emulator address both times, so the store sees the same portal again.
    assert first[1] == second[1]
    db = tmp_path / "rop-report" / "demo" / "demo.duckdb"
    with open_store(db) as store:
        assert store.scalar("SELECT count(*) FROM portals") == 1
        assert store.scalar("SELECT count(*) FROM deals") == 120
        kinds = [r[0] for r in store.query("SELECT kind FROM sync_runs ORDER BY id")]
    assert len(kinds) == 2 and kinds[0] != kinds[1], kinds

    # Another size is another portal: generated and copied afresh.
    _run_demo_without_serving(monkeypatch, tmp_path, deals=80)
    with open_store(db) as store:
        assert store.scalar("SELECT count(*) FROM portals") == 1
        assert store.scalar("SELECT count(*) FROM deals") == 80
        assert store.scalar("SELECT count(*) FROM sync_runs") == 1


def test_a_busy_report_port_stops_the_demo_before_any_work(tmp_path: Path):
    import socket

    from click.testing import CliRunner

    from rop.cli import cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"XDG_DATA_HOME": str(tmp_path), "ROP_DB": ""}
        result = CliRunner(env=env).invoke(cli, ["demo", "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.output
    assert not (tmp_path / "rop-report").exists()


def test_a_bad_deal_count_is_a_usage_error(tmp_path: Path):
    from click.testing import CliRunner

    from rop.cli import cli

    env = {"XDG_DATA_HOME": str(tmp_path), "ROP_DB": ""}
    result = CliRunner(env=env).invoke(cli, ["demo", "--deals", "0", "--port", "0"])
    assert result.exit_code == 2 and "deals must be between" in result.output
