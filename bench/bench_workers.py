"""Sync workers on PostgreSQL: 20 emulated portals synced by 3 `rop worker` processes.

Not a test (tests/test_pg_workers.py is the small version). Usage:
    .venv/bin/python bench/bench_workers.py [--portals 20] [--workers 3] [--deals 300]
        [--large DIR_OR_SIZE] [--kill] [--rate 2] [--burst 10]

Each portal is its own emulator server (rate limit on: ``--rate`` requests per
second, ``--burst``); the workers' client runs a little under them. Bitrix24's
limit is per portal, so one portal's sync can never go faster than ``rate``
requests a second once its burst is spent: 20 portals at once are bounded by
20 x rate. The run prints the REST requests all portals answered per second
of wall time, as a ratio of that bound, and checks that no portal refused a
request and every store equals its portal.

``--large`` adds a larger portal (a snapshot folder, e.g.
/work/bench-data/portal-100000-24m, or a deal count to generate) in place of
one small one; ``--kill`` SIGKILLs the worker syncing it mid-job (the issue's
multi-portal scene at full size).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from rop.jobs.defer import deferrer, queue_sync
    from rop.jobs.sources import Sources
    from rop.store.db import open_store
    from tests import test_pg_workers as w
    from tests.pg import start_cluster
    from tests.sync_portal import make_portal
    from tests.test_sync import emulate

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--portals", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--deals", type=int, default=300, help="Deals of each small portal")
    parser.add_argument("--large", help="Snapshot folder or deal count of one larger portal")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the large portal's worker")
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument(
        "--client-share",
        type=float,
        default=0.9,
        help="The workers' client runs at this share of the portal's rate (clocks differ)",
    )
    parser.add_argument("--no-check", action="store_true", help="Skip the field-by-field check")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="rop-bench-workers-"))
    small = make_portal(root / "small", deals=args.deals, seed=1)
    large: Path | None = None
    if args.large:
        large = Path(args.large) if not args.large.isdigit() else None
        if large is None:
            large = make_portal(root / "large", deals=int(args.large), seed=2)
    w.PORTAL_RATE.update(rate_per_second=args.rate, burst=args.burst)
    w.CLIENT_RATE.update(
        ROP_RATE_PER_SECOND=str(args.rate * args.client_share),
        ROP_RATE_BURST=str(max(1, int(args.burst * args.client_share))),
    )

    with start_cluster() as cluster, contextlib.ExitStack() as stack:
        url = w.queue_database(cluster)
        dirs = [large] if large else []
        dirs += [small] * (args.portals - len(dirs))
        emus = [stack.enter_context(emulate(d, **w.PORTAL_RATE)) for d in dirs]
        with open_store(url) as store:
            sources = Sources(store, w.keys())
            keys = [sources.add_webhook(e.webhook) for e in emus]
        app = deferrer(url)
        started = time.perf_counter()
        try:
            for key in keys:
                queue_sync(app, key)
        finally:
            app.close()
        with w.workers(url, root, args.workers) as os_procs:
            if args.kill and large is not None:
                big = emus[0].key

                def running() -> bool:
                    return any(
                        r.get("portal") == big and r["state"] == "started"
                        for _, log in os_procs
                        for r in w.job_lines(log)
                    )

                w.wait_until(running, 300, "the large portal's sync")
                time.sleep(10)
                for proc, log in os_procs:
                    if any(r.get("portal") == big for r in w.job_lines(log)):
                        proc.send_signal(signal.SIGKILL)
                        print(f"# killed worker {proc.pid} mid-job", flush=True)
                        break
            w.wait_until(
                lambda: all(s == "succeeded" for _, s, _ in w.jobs(url)), 3600, "every portal"
            )
        took = time.perf_counter() - started
        requests = count_requests(url)
        refused = sum(e.app.state.engine.bucket.refused for e in emus)
        bound = args.portals * args.rate
        print(
            f"| {args.portals} portals ({'1 large + ' if large else ''}{args.deals} deals each) "
            f"| {args.workers} workers | {took:.1f} s | {requests} requests | "
            f"{requests / took:.1f} req/s | bound {bound:.0f} req/s | "
            f"{requests / took / bound:.2f} of the bound | refused {refused} |",
            flush=True,
        )
        if not args.no_check:
            for emu, d in zip(emus, dirs, strict=True):
                w.assert_exact(url, emu, d)
            print("# every store equals its portal", flush=True)


def count_requests(url: str) -> int:
    """REST requests of every sync run (sync_runs.requests), all portals."""
    import psycopg

    from tests.pg import APP, OWNER

    with psycopg.connect(url.replace(f"{APP}@", f"{OWNER}@", 1)) as conn:
        row = conn.execute("SELECT coalesce(sum(requests), 0) FROM sync_runs").fetchone()
    return int(row[0]) if row else 0


if __name__ == "__main__":
    main()
