"""App mode end to end through the real routes (not a test): change in the portal -> report.

    .venv/bin/python bench/bench_app_routes.py --deals 20000 --rounds 5 \
        --json /tmp/bench_app_routes.json

Two processes, as in production: ``rop emulate --oauth --test-api`` (Bitrix24's
standard limits: 2 req/s, burst 50, simulated processing) and ``rop serve`` in
application mode (``ROP_APP_*``, ``ROP_REST_LOG``). The script plays Bitrix24's
frame: it installs the app through ``/app/install`` (the first full copy runs
in the server), opens ``/app`` as the administrator and reads the report
through ``/report.json?...&vt=...``, the page's JSON twin, with the viewer token.

For each event path (``online``: the emulator POSTs events to ``/app/events``;
``offline``: ``ROP_APP_OFFLINE_EVENTS=true``, the server polls the queue every
``--poll`` seconds) and a fresh emulator and server each:

1. **Change to report**: ``--rounds`` times a deal moves to a won stage through
   the emulator's test API; the wall time until ``/api/data-version`` (what the
   open page polls every 2 s before it reloads itself) changed, and until
   ``/report.json`` shows one won deal more (a report build over the new data).
2. **REST requests per 100 changed deals**: 100 deals moved to won at once
   (eight test-API calls at a time, as a mass edit);
   the lines of the server's REST request log (one per HTTP request to the
   portal) from the first change until the report shows all 100.

The portal is bench_appsync.py's synthetic one (``--managers`` users in
departments of 10, deals round-robin).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_appsync import Emulator, write_portal  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.app_portal import won_deals as won  # noqa: E402

ROP = str(Path(sys.executable).parent / "rop")
CLIENT_ID = "local.bench.routes"
CLIENT_SECRET = "bench-secret"  # noqa: S105
YEAR = "&from=2026-01-01&to=2026-12-31"
WON = {"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S", "CLOSEDATE": "2026-11-20T00:00:00+03:00"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``rop serve`` in application mode, its own process."""

    def __init__(self, tmp: Path, emulator: str, offline: bool, poll: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rest_log = tmp / "rest.log"
        env = {
            **os.environ,
            "ROP_DB": str(tmp / "rop.duckdb"),
            "ROP_APP_CLIENT_ID": CLIENT_ID,
            "ROP_APP_CLIENT_SECRET": CLIENT_SECRET,
            "ROP_APP_PUBLIC_URL": self.url,
            "ROP_APP_AUTH_SERVERS": urlsplit(emulator).netloc,
            "ROP_APP_OFFLINE_EVENTS": "true" if offline else "false",
            "ROP_APP_OFFLINE_POLL_SECONDS": str(poll),
            "ROP_REST_LOG": str(self.rest_log),
        }
        env.pop("ROP_WEBHOOK", None)
        self.proc = subprocess.Popen(
            [ROP, "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        lines = []
        while not lines or "ROP Report" not in lines[-1]:  # app mode prints its URLs first
            lines.append(self.proc.stdout.readline())
            if not lines[-1]:
                self.stop()
                raise RuntimeError(f"rop serve did not start: {lines!r}")

    def rest_lines(self) -> list[dict[str, Any]]:
        if not self.rest_log.exists():
            return []
        with self.rest_log.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def frame(emu: str, user: int) -> tuple[dict[str, str], dict[str, str]]:
    tokens = httpx.post(f"{emu}/_emulator/oauth/issue", json={"user_id": user}).json()
    state = httpx.get(f"{emu}/_emulator/app").json()
    query = {"DOMAIN": urlsplit(emu).netloc, "PROTOCOL": "0", "LANG": "ru", "APP_SID": "b"}
    form = {
        "AUTH_ID": tokens["access_token"],
        "AUTH_EXPIRES": "3600",
        "REFRESH_ID": tokens["refresh_token"],
        "SERVER_ENDPOINT": emu + "/oauth/rest/",
        "APPLICATION_TOKEN": state["application_token"] or "",
        "member_id": state["member_id"],
        "PLACEMENT": "DEFAULT",
        "PLACEMENT_OPTIONS": "{}",
    }
    return query, form


def install(emu: str, server: Server) -> float:
    httpx.post(
        f"{emu}/_emulator/app",
        json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "handler": server.url + "/app", "install_url": server.url + "/app/install"},
    ).raise_for_status()  # fmt: skip
    httpx.post(f"{emu}/_emulator/app/install", json={"user_id": 1}).raise_for_status()
    query, form = frame(emu, 1)
    started = time.perf_counter()
    page = httpx.post(server.url + "/app/install", params=query, data=form, timeout=120)
    page.raise_for_status()
    httpx.post(f"{emu}/_emulator/app/finish", json={}).raise_for_status()
    at = page.text.index('data-sync-url="') + len('data-sync-url="')
    sync_url = server.url + html.unescape(page.text[at : page.text.index('"', at)])
    while True:
        status = httpx.get(sync_url, timeout=30).json()
        if status["state"] in ("done", "failed"):
            if status["state"] != "done":
                raise RuntimeError(f"the first copy failed: {status}")
            return time.perf_counter() - started
        time.sleep(0.5)


def open_report(emu: str, server: Server) -> str:
    query, form = frame(emu, 1)
    reply = httpx.post(server.url + "/app", params=query, data=form, timeout=300)
    assert reply.status_code == 303, reply.text[:300]
    return server.url + reply.headers["location"] + YEAR


def version(report: str) -> str:
    url = report.split("/report?")[0] + "/api/data-version?" + report.split("?", 1)[1]
    return str(httpx.get(url, timeout=30).json()["version"])


def move(emu: str, deal: int) -> None:
    httpx.post(
        f"{emu}/_emulator/deal/update",
        json={"id": deal, "fields": WON, "history": True},
        timeout=120,
    ).raise_for_status()


def bench_path(folder: Path, tmp: Path, offline: bool, rounds: int, poll: float) -> dict[str, Any]:
    emu = Emulator(folder)
    out: dict[str, Any] = {"path": "offline" if offline else "online"}
    if offline:
        out["poll_seconds"] = poll
    try:
        server = Server(tmp, emu.origin, offline, poll)
        try:
            out["install_and_first_copy_s"] = round(install(emu.origin, server), 1)
            report = open_report(emu.origin, server)
            to_json, to_version, portal_s, requests_n = [], [], [], []
            # Deals 4, 8, 12...: stage NEW (bench_appsync.write_portal), not won yet.
            deals = iter(range(4, 10**9, 4))
            for _ in range(rounds):
                time.sleep(3)  # the bucket refills; the previous change settles
                before, seen = won(report), version(report)
                logged = len(server.rest_lines())
                deal = next(deals)
                started = time.perf_counter()
                move(emu.origin, deal)
                # First the page's own signal (cheap: polled every 0.1 s here, every
                # 2 s by the page), then the report itself (a build over the new data).
                while version(report) == seen:
                    if time.perf_counter() - started > 120:
                        raise RuntimeError(f"deal {deal} did not reach the store in 120 s")
                    time.sleep(0.1)
                to_version.append(round(time.perf_counter() - started, 2))
                while won(report) != before + 1:
                    if time.perf_counter() - started > 180:
                        raise RuntimeError(f"deal {deal} did not reach the report in 180 s")
                    time.sleep(0.1)
                to_json.append(round(time.perf_counter() - started, 2))
                # Of it, the portal answering our REST requests (the server's own clock).
                spent = server.rest_lines()[logged:]
                portal_s.append(round(sum(float(x.get("ms") or 0) for x in spent) / 1000, 2))
                requests_n.append(len(spent))
                print(out["path"], "change -> report", to_json[-1], "s", flush=True)
            out["change_to_report_json_s"] = to_json
            out["change_to_data_version_s"] = to_version
            out["change_portal_answer_s"] = portal_s
            out["change_requests"] = requests_n
            # 2. REST requests per 100 changed deals.
            time.sleep(5)
            before, requests = won(report), len(server.rest_lines())
            started = time.perf_counter()
            # A mass edit: the changes come as fast as the portal takes them.
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(lambda deal: move(emu.origin, deal), [next(deals) for _ in range(100)])
                )
            out["hundred_deals_changing_s"] = round(time.perf_counter() - started, 1)
            while won(report) != before + 100:
                if time.perf_counter() - started > 600:
                    raise RuntimeError("100 changed deals did not reach the report in 600 s")
                time.sleep(0.5)
            out["hundred_deals_s"] = round(time.perf_counter() - started, 1)
            time.sleep(2)  # a last clear of the offline queue
            spent = server.rest_lines()[requests:]
            out["hundred_deals_requests"] = len(spent)
            methods: dict[str, int] = {}
            for line in spent:
                name = str(line.get("method") or line.get("msg"))
                methods[name] = methods.get(name, 0) + 1
            out["hundred_deals_by_method"] = methods
            print(out, flush=True)
        finally:
            server.stop()
    finally:
        emu.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--managers", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--poll", type=float, default=10.0, help="offline poll seconds")
    parser.add_argument("--only", choices=("online", "offline"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "deals": args.deals,
        "load_before": os.getloadavg(),
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "portal"
        write_portal(folder, args.deals, args.managers)
        for offline in (False, True):
            if args.only and args.only != ("offline" if offline else "online"):
                continue
            run = Path(tmp) / ("offline" if offline else "online")
            run.mkdir()
            out["runs"].append(bench_path(folder, run, offline, args.rounds, args.poll))
    out["load_after"] = os.getloadavg()
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
