"""Page load under concurrent viewers: p50/p95 of the web report's pages.

Generates a demo portal (or reuses a store), starts `rop serve` as its own
process on a free loopback port, then N concurrent viewers (httpx async) each
load a mix of pages: the report for several periods and pipelines, its JSON
twin, and drill-down panels. Prints one line per page kind and a total.

    .venv/bin/python bench/bench_web.py --deals 3000 --viewers 20 --rounds 5
    .venv/bin/python bench/bench_web.py --db /tmp/big.duckdb --viewers 20   # reuse a store
    .venv/bin/python bench/bench_web.py --cache 0    # every page computed afresh
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def build_store(deals: int, folder: Path) -> Path:
    from rop.bitrix.snapshot import load_snapshot
    from rop.demo.generator import generate
    from rop.store import open_store

    t0 = time.perf_counter()
    generate(folder / "portal", seed=1, deals=deals, months=24)  # two full years
    t1 = time.perf_counter()
    db = folder / "bench.duckdb"
    with open_store(db) as store:
        load_snapshot(store, folder / "portal")
    t2 = time.perf_counter()
    print(f"generated {deals} deals in {t1 - t0:.1f} s, loaded in {t2 - t1:.1f} s", flush=True)
    return db


SERVER = """
import sys
from rop.config import load_settings
from rop.web import create_app, serve
settings = load_settings(db=sys.argv[1])
serve(create_app(settings, cache_size=int(sys.argv[2])), "127.0.0.1", 0)
"""


def start_server(db: Path, cache: int) -> tuple[subprocess.Popen, str]:
    """The server in its own process, as `rop serve` runs it (cache size settable)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(db), str(cache)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "ROP_DEMO": "0"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http" not in line:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    url = line.split(": ", 1)[1].strip().removesuffix("/report")
    return proc, url


def page_mix(pipelines: list[int]) -> list[tuple[str, str]]:
    periods = ["this_month", "last_month", "last_30_days", "this_quarter"]
    mix = [("report", f"/report?period={p}") for p in periods]
    mix += [("report", f"/report?period=last_month&pipeline={p}") for p in pipelines[:2]]
    mix += [("json", f"/report.json?period={p}") for p in periods[:2]]
    mix += [
        ("drill", f"/drill?period=last_month&figure={f}")
        for f in ("deals_new", "deals_won", "calls_total", "leads_new")
    ]
    return mix


async def viewer(
    client: httpx.AsyncClient, mix: list[tuple[str, str]], rounds: int, seed: int, out: list
) -> None:
    rng = random.Random(seed)
    for _ in range(rounds):
        kind, path = rng.choice(mix)
        t0 = time.perf_counter()
        resp = await client.get(path)
        elapsed = time.perf_counter() - t0
        if resp.status_code != 200:
            raise SystemExit(f"{path}: HTTP {resp.status_code}: {resp.text[:200]}")
        out.append((kind, elapsed))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run_load(url: str, viewers: int, rounds: int, mix: list[tuple[str, str]]) -> None:
    limits = httpx.Limits(max_connections=viewers)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        # One warm-up load per kind: the first query of a fresh process pays for plans.
        for _, path in mix:
            await client.get(path)
        samples: list[tuple[str, float]] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(viewer(client, mix, rounds, i, samples) for i in range(viewers)))
        wall = time.perf_counter() - t0
    print(f"{viewers} concurrent viewers x {rounds} pages, wall {wall:.1f} s, "
          f"{len(samples) / wall:.1f} pages/s")  # fmt: skip
    print(f"{'page':8} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind in sorted({k for k, _ in samples}) + ["all"]:
        times = [t * 1000 for k, t in samples if kind in (k, "all")]
        print(
            f"{kind:8} {len(times):4d} {statistics.median(times):8.0f} "
            f"{pct(times, 95):8.0f} {max(times):8.0f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deals", type=int, default=3000, help="demo portal size (ignored with --db)")
    ap.add_argument("--db", type=Path, help="reuse this store instead of generating one")
    ap.add_argument("--viewers", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5, help="pages per viewer")
    ap.add_argument("--cache", type=int, default=64, help="server's report cache size (0: off)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or build_store(args.deals, Path(tmp))
        from rop.store import open_store

        with open_store(db, read_only=True) as store:
            deals = store.scalar("SELECT count(*) FROM deals")
            pipelines = [r[0] for r in store.query("SELECT id FROM pipelines ORDER BY id")]
        print(f"store {db}: {deals} deals", flush=True)
        proc, url = start_server(db, args.cache)
        print(f"server {url}, report cache {args.cache or 'off'}", flush=True)
        try:
            asyncio.run(run_load(url, args.viewers, args.rounds, page_mix(pipelines)))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
