"""A crowd of expensive reports against cheap requests (issue 9, "slow and abusive clients").

Starts the server in its own process (as `rop serve`), loads the default page
once (now cached), then sends N concurrent requests for N *different*
uncached reports (custom periods) and, while they run, asks every 0.5 s for
the cached page, a drill-down of it and a static file. Prints the crowd's
wall time and the cheap requests' latencies.

    .venv/bin/python bench/bench_web_crowd.py --deals 20000 --crowd 50
    .venv/bin/python bench/bench_web_crowd.py --db /tmp/big.duckdb --crowd 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_web import build_store, pct, start_server  # noqa: E402

CHEAP = {
    "cached page": "/report?period=last_month",
    "drill-down": "/drill?period=last_month&figure=deals_new",
    "static file": "/static/app.js",
}


async def crowd_request(
    client: httpx.AsyncClient, i: int, out: list[float], days: int, first: date
) -> None:
    start = first + timedelta(days=i)
    t0 = time.perf_counter()
    resp = await client.get(
        f"/report.json?period=custom&from={start}&to={start + timedelta(days=days)}"
    )
    resp.raise_for_status()
    out.append(time.perf_counter() - t0)


async def cheap_probe(client: httpx.AsyncClient, stop: asyncio.Event, out: dict) -> None:
    while not stop.is_set():
        for kind, path in CHEAP.items():
            t0 = time.perf_counter()
            resp = await client.get(path)
            resp.raise_for_status()
            out.setdefault(kind, []).append(time.perf_counter() - t0)
        await asyncio.sleep(0.5)


def memory(pid: int) -> dict[str, int]:
    """The server's resident memory now and its peak (MB), from /proc."""
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) // 1024
    return out


def cpu_seconds(pid: int) -> float:
    """The server's CPU time so far (user + system, all its threads), from /proc:
    beside the wall times, what the crowd cost whatever else the box was doing."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settled(pid: int, idle: float = 0.05) -> float:
    """Wait until the server uses less than ``idle`` s of CPU in a second (its
    warm-up after the start is over); returns the seconds waited."""
    t0 = time.perf_counter()
    while True:
        before = cpu_seconds(pid)
        await asyncio.sleep(1.0)
        if cpu_seconds(pid) - before < idle:
            return time.perf_counter() - t0


async def run(url: str, crowd: int, days: int, first: date, pid: int, settle: bool = False) -> None:
    limits = httpx.Limits(max_connections=crowd + 10)
    async with httpx.AsyncClient(base_url=url, timeout=900, limits=limits) as client:
        for path in CHEAP.values():  # cached from now on
            (await client.get(path)).raise_for_status()
        if settle:
            print(f"server settled after {await settled(pid):.1f} s more", flush=True)
        idle = {}
        for kind, path in CHEAP.items():
            t0 = time.perf_counter()
            (await client.get(path)).raise_for_status()
            idle[kind] = time.perf_counter() - t0
        builds: list[float] = []
        cheap: dict[str, list[float]] = {}
        stop = asyncio.Event()
        probe = asyncio.create_task(cheap_probe(client, stop, cheap))
        t0 = time.perf_counter()
        before = memory(pid)
        cpu0 = cpu_seconds(pid)
        await asyncio.gather(*(crowd_request(client, i, builds, days, first) for i in range(crowd)))
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - cpu0
        stop.set()
        await probe
    after = memory(pid)
    print(f"{crowd} different uncached reports of {days} days at once: wall {wall:.1f} s, "
          f"each p50 {statistics.median(builds):.1f} s, p95 {pct(builds, 95):.1f} s, "
          f"max {max(builds):.1f} s; load {os.getloadavg()[0]:.1f}; "
          f"server CPU {cpu:.1f} s ({cpu / crowd:.2f} s a report)")  # fmt: skip
    print(f"server memory: warm (before the crowd) {before['VmRSS']} MB, after "
          f"{after['VmRSS']} MB, peak {after['VmHWM']} MB")  # fmt: skip
    print(f"{'request':12} {'idle ms':>8} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind, times in cheap.items():
        ms = [t * 1000 for t in times]
        print(f"{kind:12} {idle[kind] * 1000:8.0f} {len(ms):4d} {statistics.median(ms):8.0f} "
              f"{pct(ms, 95):8.0f} {max(ms):8.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=20000)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--crowd", type=int, default=50)
    parser.add_argument("--days", type=int, default=180, help="each crowd report's period")
    parser.add_argument(
        "--first",
        type=date.fromisoformat,
        default=date(2025, 1, 1),
        help="the first crowd report's start; each next one starts a day later",
    )
    parser.add_argument(
        "--settle",
        action="store_true",
        help="start the crowd once the server is idle (its warm-up done), not right "
        "after the first page",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or build_store(args.deals, Path(tmp))
        proc, url = start_server(db, 64)
        try:
            asyncio.run(run(url, args.crowd, args.days, args.first, proc.pid, args.settle))
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
