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
