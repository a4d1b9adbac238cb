"""Sync speed, incremental cost and memory against the emulator (not a test).

    .venv/bin/python bench/bench_sync.py --deals 20000 --steady-deals 500000 \
        --mem-deals 1000000 --json /tmp/bench_sync.json

The emulator always runs as ``rop emulate`` in its own process, the sync as
``rop sync`` under GNU time (so max RSS is the sync's own, not this script's).
``--portal DIR`` instead syncs a whole snapshot (e.g. the 1M demo portal) and
also reports the emulator's load time and peak memory; with ``--rss-log FILE``
it samples the ``rop sync`` process's RSS every second beside the entity of the
sync's last progress line (the deletions' pass and the stored facts' refresh
print none: they keep the last copy entity's name; ``rop sync`` reopens the
store between the copy and the refresh, which shows as a drop of the RSS).

1. Full sync of a generated demo portal (rop.demo.generator, ``--deals``)
   with Bitrix24's standard limits (2 req/s, burst 50, simulated processing):
   rows/s against the bound 2 req/s x 50 pages x 50 rows = 5,000 rows/s.
2. Requests of an incremental sync after 1 % of its deals changed, as a
   share of the full sync's requests.
3. A deals-only portal (``--steady-deals``) with standard limits: overall
   rows/s, and rows/s over the last 60 % of the run (past the burst: the
   steady state). Then the same deals exported by our client, fast-bitrix24
   ``get_all`` and b24pysdk ``as_list_fast``, each against a fresh emulator
   (its own bucket and operating-time budget).
4. Peak memory of a sync of a deals-only portal of ``--mem-deals`` deals
   (rate limit off: memory does not depend on it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from rop.bitrix.client import BitrixClient, parse_webhook
from rop.bitrix.export import Chain, step
from rop.bitrix.records import DEALS
from rop.demo.generator import generate

ROP = str(Path(sys.executable).parent / "rop")
TIME = "/usr/bin/time"  # GNU time: the sync's own peak RSS (see rop_sync)
BOUND_ROWS_PER_SECOND = 2 * 50 * 50  # standard plan: 2 req/s x 50 commands x 50 rows
DRAIN_SECONDS = 26.0  # a full 50-request bucket drains at 2/s in 25 s


class Emulator:
    """``rop emulate`` in a child process (its memory is not the sync's)."""

    def __init__(self, portal: Path, *extra: str) -> None:
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [ROP, "emulate", "--portal", str(portal), "--port", "0", "--test-api", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.webhook = self.proc.stdout.readline().strip()
        if not self.webhook.startswith("http"):
            raise RuntimeError("the emulator did not start")
        self.load_seconds = time.perf_counter() - started
        hook = parse_webhook(self.webhook)
        self.origin = hook.origin
        self.domain = hook.portal
        self.token = "/".join(hook.base.rstrip("/").split("/")[-2:])

    def change(self, kind: str, rid: int, fields: dict[str, Any]) -> None:
        httpx.post(
            f"{self.origin}/_emulator/{kind}/update", json={"id": rid, "fields": fields}
        ).raise_for_status()

    def peak_mb(self) -> float:
        """The emulator's own peak RSS (VmHWM: per process image, reset at exec)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(found.group(1)) / 1024 if found else float("nan")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _rss_kb(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) if found else None


def sample_rss(
    launcher: int, phase: list[str], out: Path, stop: threading.Event, every: float = 1.0
) -> None:
    """Write ``seconds, RSS MB, phase`` of ``launcher``'s child (GNU time runs
    ``rop sync`` as its child) to ``out`` every ``every`` seconds until ``stop``."""
    started = time.perf_counter()
    child: int | None = None
    with out.open("w") as file:
        file.write("seconds\trss_mb\tphase\n")
        while not stop.wait(every):
            if child is None:
                try:
                    kids = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
                except OSError:
                    kids = []
                child = int(kids[0]) if kids else None
            kb = _rss_kb(child) if child is not None else None
            if kb is not None:
                elapsed = time.perf_counter() - started
                file.write(f"{elapsed:.0f}\t{kb / 1024:.0f}\t{phase[0]}\n")
                file.flush()


def rop_sync(webhook: str, db: Path, rss_log: Path | None = None, **env: str) -> dict[str, Any]:
    """Run ``rop sync`` in a child; its wall time, max RSS, the requests it
    reports, and its progress lines with their arrival times; with
    ``rss_log``, its RSS every second beside its phase (:func:`sample_rss`)."""
    started = time.perf_counter()
    # The peak memory comes from GNU time, a small launcher: a child forked from
    # this script would count the script's own memory in its ru_maxrss (the
    # high-water mark survives exec), so `rop sync` must be its grandchild.
    peak_file = db.with_suffix(".maxrss")
    proc = subprocess.Popen(
        [
            TIME,
            "-f",
            "%M",
            "-o",
            str(peak_file),
            ROP,
            "sync",
            "--webhook",
            webhook,
            "--db",
            str(db),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    progress: list[tuple[float, str, int]] = []
    phase = ["start"]
    stop = threading.Event()
    sampler = None
    if rss_log is not None:
        sampler = threading.Thread(target=sample_rss, args=(proc.pid, phase, rss_log, stop))
        sampler.start()
    for line in proc.stderr:  # "sync deals: 12345/200000 rows (...)"
        found = re.match(r"sync (\w+): (\d+)", line)
        if found:
            progress.append((time.perf_counter() - started, found.group(1), int(found.group(2))))
            phase[0] = f"copy ({found.group(1)})"
    output = proc.stdout.read()
    status = proc.wait()
    seconds = time.perf_counter() - started
    stop.set()
    if sampler is not None:
        sampler.join()
    if status != 0:
        raise RuntimeError(f"rop sync failed:\n{output}")
    found = re.search(r"(\d+) requests", output)
    peak_kb = int(peak_file.read_text().split()[-1])
    return {
        "seconds": seconds,
        "max_rss_mb": peak_kb / 1024,
        "requests": int(found.group(1)) if found else None,
        "output": output,
        "progress": progress,
    }


def steady_rate(progress: list[tuple[float, str, int]], entity: str) -> float | None:
    """Rows/s of ``entity`` over the last 60 % of its progress lines (past the burst)."""
    points = [(t, n) for t, e, n in progress if e == entity]
    if len(points) < 3:
        return None
    (t0, n0), (t1, n1) = points[int(len(points) * 0.4)], points[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else None


def big_rows(db: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    tables = (
        "deals leads companies contacts deal_stage_history lead_status_history calls activities"
    )
    total = sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables.split())
    con.close()
    return int(total)


async def ours(webhook: str) -> int:
    rows = 0
    async with BitrixClient(parse_webhook(webhook).base) as client:
        chain = Chain(DEALS)
        while not chain.done:
            rows += len(await step(client, chain))
    return rows


def fast_bitrix(webhook: str) -> int:
    from fast_bitrix24 import Bitrix

    bx = Bitrix(webhook, ssl=False, verbose=False)
    return len(bx.get_all("crm.deal.list", {"select": list(DEALS.select)}))


def b24pysdk(emu: Emulator) -> int:
    from b24pysdk import BitrixWebhook, Client, Config

    caller = importlib.import_module("b24pysdk.api.callers.call_method")
    # b24pysdk hard-codes https (BITRIX24_API.md §11); the emulator speaks http.
    caller._MethodCaller._base_url = property(lambda s: f"http://{s._domain}/rest")
    Config().configure(default_timeout=(3.05, 120))
    client = Client(BitrixWebhook(domain=emu.domain, webhook_token=emu.token))
    request = client.crm.deal.list(select=list(DEALS.select))
    return sum(1 for _ in request.as_list_fast().result)


def timed(fn: Any, *args: Any) -> tuple[int, float]:
    started = time.perf_counter()
    rows = fn(*args)
    return rows, time.perf_counter() - started


def write_deals_only(folder: Path, deals: int) -> None:
    bench_emulator = importlib.import_module("bench.bench_emulator")
    folder.mkdir(parents=True, exist_ok=True)
    bench_emulator.write(folder, deals)


def full_portal(folder: Path, rss_log: Path | None = None) -> dict[str, Any]:
    """A whole snapshot synced with standard limits: time against the bound,
    requests, the sync's and the emulator's peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(folder)
        print(f"emulator loaded in {emu.load_seconds:.0f} s, {emu.peak_mb():.0f} MB", flush=True)
        try:
            loaded_mb = emu.peak_mb()
            full = rop_sync(emu.webhook, Path(tmp) / "full.duckdb", rss_log)
            emulator_mb = emu.peak_mb()
        finally:
            emu.stop()
        rows = big_rows(Path(tmp) / "full.duckdb")
    out = {
        "rows": rows,
        "seconds": round(full["seconds"], 1),
        "requests": full["requests"],
        "rows_per_second": round(rows / full["seconds"]),
        "ratio_to_bound": round(rows / full["seconds"] / BOUND_ROWS_PER_SECOND, 2),
        "max_rss_mb": round(full["max_rss_mb"]),
        "emulator_load_seconds": round(emu.load_seconds, 1),
        "emulator_peak_mb_loaded": round(loaded_mb),
        "emulator_peak_mb": round(emulator_mb),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print("full", out, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=20000, help="demo portal size")
    parser.add_argument("--steady-deals", type=int, default=500_000, help="deals-only portal")
    parser.add_argument("--mem-deals", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--months", type=int, default=24, help="demo portal history (months)")
    parser.add_argument(
        "--portal",
        type=Path,
        help="sync this snapshot folder end to end instead (e.g. the 1M demo portal); "
        "then only the full sync runs",
    )
    parser.add_argument("--no-libs", action="store_true", help="skip the library comparison")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--rss-log", type=Path, help="with --portal: the sync's RSS every second, with its phase"
    )
    args = parser.parse_args()
    figures: dict[str, Any] = {"deals": args.deals, "mem_deals": args.mem_deals}
    if args.portal:
        figures = {"portal": str(args.portal), "full": full_portal(args.portal, args.rss_log)}
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures, indent=2))
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        portal = root / "portal"
        generate(str(portal), seed=1, deals=args.deals, months=args.months)
        emu = Emulator(portal)
        try:
            full = rop_sync(emu.webhook, root / "a.duckdb")
            rows = big_rows(root / "a.duckdb")
            figures["full"] = {
                "rows": rows,
                "seconds": round(full["seconds"], 1),
                "requests": full["requests"],
                "rows_per_second": round(rows / full["seconds"]),
                "ratio_to_bound": round(rows / full["seconds"] / BOUND_ROWS_PER_SECOND, 2),
                "max_rss_mb": round(full["max_rss_mb"]),
            }
            print("full", figures["full"], flush=True)

            time.sleep(DRAIN_SECONDS)
            changed = max(1, args.deals // 100)
            step_ids = max(1, args.deals // changed)
            for rid in range(1, args.deals + 1, step_ids)[:changed]:
                emu.change("deal", rid, {"OPPORTUNITY": "12345.00"})
            inc = rop_sync(emu.webhook, root / "a.duckdb")
            figures["incremental"] = {
                "changed_deals": changed,
                "requests": inc["requests"],
                "ratio_to_full": round(inc["requests"] / full["requests"], 4),
                "seconds": round(inc["seconds"], 1),
            }
            print("incremental", figures["incremental"], flush=True)

        finally:
            emu.stop()

        # Deals only, standard limits: past the burst every request waits its
        # turn at 2/s, so the rate over the later part of the run is the
        # steady state the bound describes.
        deals_dir = root / "deals"
        write_deals_only(deals_dir, args.steady_deals)
        emu = Emulator(deals_dir)
        try:
            steady = rop_sync(emu.webhook, root / "s.duckdb")
        finally:
            emu.stop()
        if not args.no_libs:
            # Each client gets a fresh emulator: the operating-time budget is per
            # portal, so a later client would start with what earlier ones spent.
            libs: dict[str, Any] = {}
            runs = [
                ("rop (keyset batch chains)", lambda e: asyncio.run(ours(e.webhook))),
                ("fast-bitrix24 get_all", lambda e: fast_bitrix(e.webhook)),
                ("b24pysdk as_list_fast", b24pysdk),
            ]
            for name, run in runs:
                emu = Emulator(deals_dir)
                try:
                    got, seconds = timed(run, emu)
                    libs[name] = {
                        "rows": got,
                        "seconds": round(seconds, 1),
                        "rows_per_second": round(got / seconds),
                        "ratio_to_bound": round(got / seconds / BOUND_ROWS_PER_SECOND, 2),
                    }
                except Exception as exc:  # a library failing is a finding, not a crash
                    libs[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                finally:
                    emu.stop()
                print(name, libs[name], flush=True)
            figures["deals_export"] = libs
        rate = steady_rate(steady["progress"], "deals")
        figures["steady"] = {
            "deals": args.steady_deals,
            "seconds": round(steady["seconds"], 1),
            "requests": steady["requests"],
            "rows_per_second": round(args.steady_deals / steady["seconds"]),
            "ratio_to_bound": round(
                args.steady_deals / steady["seconds"] / BOUND_ROWS_PER_SECOND, 2
            ),
            "steady_rows_per_second": round(rate) if rate else None,
            "steady_ratio_to_bound": round(rate / BOUND_ROWS_PER_SECOND, 2) if rate else None,
        }
        print("steady", figures["steady"], flush=True)

        if args.mem_deals:
            big = root / "big"
            write_deals_only(big, args.mem_deals)
            emu = Emulator(big, "--no-rate-limit")
            try:
                mem = rop_sync(emu.webhook, root / "big.duckdb")
            finally:
                emu.stop()
            figures["memory"] = {
                "deals": args.mem_deals,
                "max_rss_mb": round(mem["max_rss_mb"]),
                "seconds": round(mem["seconds"], 1),
                "requests": mem["requests"],
            }
            print("memory", figures["memory"], flush=True)

    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
