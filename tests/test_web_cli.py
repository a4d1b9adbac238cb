"""`rop serve`: prints its URL, announces itself next to the store, cleans up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.test_web_support import PERIOD, tiny_store

ROP = str(Path(sys.executable).with_name("rop"))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_prints_url_and_announces_itself(tmp_path, stop):
    # SIGTERM is how systemd, Docker and Kubernetes stop a server.
    store = tiny_store(tmp_path)
    db = store.path
    store.close()
    proc = subprocess.Popen(
        [ROP, "serve", "--db", db, "--port", "0", "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ROP Report: http://127.0.0.1:") and line.rstrip().endswith(
            "/report"
        )
        base = line.split(": ", 1)[1].strip().removesuffix("/report")
        info = json.loads(Path(f"{db}.server.json").read_text())
        token = info.pop("token")  # lets the CLI read through the server (rop.web.local)
        assert info == {"url": base, "pid": proc.pid} and len(token) >= 32
        resp = httpx.get(base + "/report.json", params=PERIOD, timeout=30)
        assert (
            resp.status_code == 200 and resp.json()["report"]["total"]["figures"]["deals_new"] == 7
        )
    finally:
        proc.send_signal(stop)
        proc.wait(timeout=30)
    assert not Path(f"{db}.server.json").exists()


def test_serve_bad_options_exit_2_without_traceback(tmp_path):
    bad = subprocess.run(
        [ROP, "serve", "--db", str(tmp_path / "s.duckdb"), "--webhook", "not a url", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and bad.stderr.strip()
