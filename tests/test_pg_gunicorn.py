"""The web tier under gunicorn with two uvicorn workers over one PostgreSQL store.

The processes share nothing but the store: each answers the same report, and
both are ready (their own pool, their own cache) for a reverse proxy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import store_target
from tests.fixtures.portals import load

pytest.importorskip("gunicorn")
pytest.importorskip("uvicorn_worker")


def test_two_gunicorn_workers_serve_the_same_report(tmp_path: Path, request) -> None:
    url = store_target("postgres", tmp_path, request)
    load("tricky", url).close()
    sock = tmp_path / "g.sock"
    env = dict(os.environ, ROP_DB=url, ROP_PORTAL="tricky.bitrix24.ru", ROP_LOG_FORMAT="json")
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "uvicorn_worker.UvicornWorker"]
    proc = subprocess.Popen(
        [*gunicorn, "--bind", f"unix:{sock}", "--graceful-timeout", "5", "rop.web.asgi:from_env()"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # A cold report on PostgreSQL takes seconds on a loaded box: more than httpx's 5 s.
        client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://127.0.0.1", timeout=120
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "gunicorn did not become ready"
            time.sleep(0.3)
        bodies = set()
        for _ in range(12):
            got = client.get("/report.json?from=2026-11-01&to=2026-11-30")
            assert got.status_code == 200
            report = got.json()
            bodies.add(str(report["report"]["total"]["figures"]))
        assert len(bodies) == 1
        client.close()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    # Two worker processes booted; every request left one JSON log line.
    assert out.count("Booting worker with pid") == 2, out
    assert out.count('"event": "request"') >= 13, out
