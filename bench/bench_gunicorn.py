"""The web tier on PostgreSQL: pages per second of 2 gunicorn workers against 1.

Not a test. Usage:
    .venv/bin/python bench/bench_gunicorn.py [--deals 10000] [--viewers 20] [--seconds 30]
        [--keep DIR] [--shared /work/bench-data]

A demo portal (bench_pg.py's database, kept with ``--keep``) served by
`gunicorn -k uvicorn_worker.UvicornWorker 'rop.web.asgi:from_env()'` on a
unix socket, first with one worker process, then with two. ``--viewers``
concurrent viewers each load pages in a loop for ``--seconds`` (after
``--warmup`` seconds unmeasured): ``--mix months``, the report of one of 12
months in turn (each process builds each month once, then serves it from its
report cache); ``--mix usual``, the default page, last month and a
drill-down. Prints pages per second and latency median and 95th percentile.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]
# What viewers of one portal mostly open: the default page, last month, a drill-down.
USUAL = ["/report", "/report?period=last_month", "/drill?period=last_month&figure=deals_new"]
MIX = "months"


def page(n: int) -> str:
    if MIX == "usual":
        return USUAL[n % len(USUAL)]
    month = MONTHS[n % len(MONTHS)]
    return f"/report?period=custom&from={month}-01&to={month}-28"


async def viewer(client: httpx.AsyncClient, n: int, until: float, out: list[float]) -> None:
    i = n
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        got = await client.get(page(i))
        assert got.status_code == 200, got.status_code
        out.append(time.perf_counter() - t0)
        i += 1


async def crowd(sock: Path, viewers: int, seconds: float) -> list[float]:
    # No keep-alive: the server closes a connection idle for 5 s (ROP_KEEP_ALIVE_TIMEOUT)
    # and a pooled one reused just then fails; a unix-socket connect is cheap.
    transport = httpx.AsyncHTTPTransport(
        uds=str(sock), limits=httpx.Limits(max_keepalive_connections=0)
    )
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", timeout=300
    ) as client:
        out: list[float] = []
        until = time.perf_counter() + seconds
        await asyncio.gather(*(viewer(client, n, until, out) for n in range(viewers)))
        return out


def serve(url: str, portal: str, workers: int, sock: Path) -> subprocess.Popen:
    env = dict(os.environ, ROP_DB=url, ROP_PORTAL=portal, ROP_HOST="127.0.0.1")
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k"]
    cmd += ["uvicorn_worker.UvicornWorker", "--bind", f"unix:{sock}", "--timeout", "300"]
    proc = subprocess.Popen([*cmd, "rop.web.asgi:from_env()"], env=env)
    client = httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://127.0.0.1")
    deadline = time.monotonic() + 120
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
        time.sleep(0.3)
    return proc


def main() -> None:
    from bench_pg import analyze, postgres, snapshot

    from rop.bitrix.snapshot import load_snapshot
    from rop.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--shared", type=Path)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rop-bench"))
    parser.add_argument(
        "--mix",
        choices=["months", "usual"],
        default="months",
        help="months: 12 month pages in turn; usual: the default page, last month, a drill-down",
    )
    parser.add_argument("--warmup", type=float, default=0, help="Seconds of unmeasured crowd first")
    args = parser.parse_args()
    global MIX
    MIX = args.mix
    args.workdir.mkdir(parents=True, exist_ok=True)
    with postgres(None, args.keep) as new_pg:
        url, loaded = new_pg(args.deals)
        with open_store(url) as store:
            if not loaded:
                load_snapshot(store, snapshot(args.deals, args.workdir, args.shared))
            portal = str(store.scalar("SELECT portal FROM portals LIMIT 1"))
        analyze(url)
        for workers in (1, 2):
            sock = args.workdir / f"gunicorn-{os.getpid()}-{workers}.sock"
            proc = serve(url, portal, workers, sock)
            try:
                if args.warmup:
                    asyncio.run(crowd(sock, args.viewers, args.warmup))
                times = asyncio.run(crowd(sock, args.viewers, args.seconds))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            times.sort()
            p95 = times[int(len(times) * 0.95)]
            print(
                f"| {args.deals:,} | {args.mix} | {workers} | {args.viewers} "
                f"| {len(times) / args.seconds:.1f} "
                f"| {statistics.median(times) * 1000:.0f} ms | {p95 * 1000:.0f} ms |",
                flush=True,
            )


if __name__ == "__main__":
    main()
