"""A small portal's first sync into a fresh PostgreSQL database (not a test).

Usage:
    .venv/bin/python bench/bench_pg_first_sync.py --deals 300 10000 [--slow-ms 200]

What a new server-mode tenant meets: a database migrated by the owner (its
tables ANALYZEd while empty), then the portal's first `rop sync` as the
application role (row-level security on), then its first report. For each
size a demo portal is generated (seed 1, 24 months), served by the emulator
(real HTTP, no rate limit: the store's part is timed, not Bitrix24's limit),
synced into a fresh database of a private cluster, and timed:

- the sync (``run_sync``), and in it the stored facts' refresh
  (``rop.store.facts.refresh_facts``);
- the first report (month + previous) and the median of the next ``--runs``;
- from the server's log (``log_min_duration_statement``): the statements slower
  than ``--slow-ms`` and each automatic ANALYZE autovacuum made meanwhile;
- ``pg_class.reltuples`` of the deal facts after the sync (-1 or 0: the planner
  had no statistics).

Run with ``ROP_BENCH_ROOT`` set to main's tree (``git archive main``) for the
"before" half. Results go to stdout as Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("ROP_BENCH_ROOT") or str(Path(__file__).resolve().parent.parent))

from rop.bitrix.sync import run_sync  # noqa: E402
from rop.demo.generator import generate  # noqa: E402
from rop.emulator import EmulatorConfig, create_app, serve_in_thread  # noqa: E402
from rop.report.build import build_report  # noqa: E402
from rop.report.filter import ReportFilter  # noqa: E402
from rop.store import facts, open_store  # noqa: E402


def first_sync(size: int, workdir: Path, cluster, log: Path, runs: int, slow_ms: int) -> list[str]:  # noqa: ANN001
    from tests.conftest import migrated_database
    from tests.pg import OWNER

    folder = workdir / f"portal-{size}-24m"
    if not (folder / "portal.json").exists():
        generate(folder, seed=1, deals=size, months=24)
    url = migrated_database(cluster)
    db = url.rsplit("/", 1)[1]
    mark = log.stat().st_size
    refresh: list[float] = []
    real = facts.refresh_facts

    def timed_refresh(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            refresh.append(time.perf_counter() - start)

    import rop.bitrix.sync as sync_module

    sync_module.refresh_facts = timed_refresh  # type: ignore[assignment]
    app = create_app(folder, EmulatorConfig(rate_limit=False))
    with serve_in_thread(app, host="127.0.0.1", port=0) as base, open_store(url) as store:
        p = app.state.portal
        start = time.perf_counter()
        run_sync(store, f"{base}/rest/{p.webhook_user_id}/{p.webhook_token}/", rate_per_second=1000)
        synced = time.perf_counter() - start
        tuples = cluster.psql(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = 'deal_facts'", db=db, role=OWNER
        )[0][0]
        last = store.scalar("SELECT max(date_create) FROM deals").date()
        month = ReportFilter(last.replace(day=1), last)
        times = []
        for _ in range(runs + 1):
            start = time.perf_counter()
            build_report(store, month)
            times.append(time.perf_counter() - start)
    sync_module.refresh_facts = real  # type: ignore[assignment]
    text = log.read_text(errors="replace")[mark:]
    slow = re.findall(r"duration: ([\d.]+) ms\s+(?:statement|execute [^:]*): (.{0,90})", text)
    analysed = re.findall(r'automatic analyze of table "[^.]+\.[^.]+\.(\w+)"', text)
    for ms, sql in sorted(slow, key=lambda s: -float(s[0]))[:8]:
        print(f"#   {float(ms):8.0f} ms  {' '.join(sql.split())}", flush=True)
    print(f"#   autovacuum analysed meanwhile: {sorted(set(analysed)) or 'nothing'}", flush=True)
    over = sum(float(ms) for ms, _ in slow)
    return [
        f"| {size:,} | {synced:.1f} s | {sum(refresh):.1f} s | {tuples} | {len(slow)} "
        f"({over / 1000:.1f} s) | {len(set(analysed))} | {times[0] * 1000:.0f} ms | "
        f"{statistics.median(times[1:]) * 1000:.0f} ms |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, nargs="+", default=[300, 10_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rop-bench-first"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slow-ms", type=int, default=200, help="log statements slower than this")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    from tests.pg import start_cluster

    options = (
        f"-c log_min_duration_statement={args.slow_ms} -c log_autovacuum_min_duration=0 "
        "-c shared_buffers=256MB"
    )
    lines = [
        "| deals | first sync | of it the facts' refresh | deal_facts reltuples after "
        "| statements > slow-ms (sum) | tables autovacuum analysed | first report | "
        "report, median |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with start_cluster(None, options) as cluster:
        log = cluster.socket_dir.parent / "server.log"
        for size in args.deals:
            lines += first_sync(size, args.workdir, cluster, log, args.runs, args.slow_ms)
            print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
