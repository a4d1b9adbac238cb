"""Where one uncached report's CPU goes, by part of the build (issue 16, the crowd).

Opens the app on a store (DuckDB ``threads`` from ``--threads``, 1 by default so
a statement's CPU is its calling thread's), waits for the warm-up, then asks
``/report.json`` for N different custom periods one after the other, as
bench_web_crowd's crowd does in parallel. For each request: the process's CPU,
and the CPU (thread time) spent inside each part: the report build, its
statements, the rollups from memory, the funnels, the trend, the view. The parts
nest (statements run inside the build, the funnels' and trend's too), so they
do not add up; bench_build_cpu.py splits the statements by section.

    .venv/bin/python bench/bench_build_parts.py --db <copy of the 1M store> --n 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--first", type=date.fromisoformat, default=date(2026, 4, 1))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from web_client import page_client

    import rop.report.build as report_build
    import rop.report.trend as trend
    import rop.web.builds as builds
    import rop.web.charts as charts
    from rop.config import Settings
    from rop.store import db as store_db
    from rop.web.app import create_app

    spent: dict[str, float] = defaultdict(float)
    recording = threading.Event()

    def timed(owner: Any, name: str, label: str) -> None:
        real: Callable[..., Any] = getattr(owner, name)

        def inner(*a: Any, **k: Any) -> Any:
            if not recording.is_set():
                return real(*a, **k)
            t0 = time.thread_time()
            try:
                return real(*a, **k)
            finally:
                spent[label] += time.thread_time() - t0

        setattr(owner, name, inner)

    timed(builds.Builds, "_capture", "the build's thread (all of it)")
    timed(report_build, "build_report", "build_report")
    timed(store_db.DuckStore, "_fetch", "statements (every one)")
    timed(report_build, "_run_period", "the figures' SQL written, rollups from memory")
    timed(report_build, "partial_rows", "rollups from memory")
    timed(charts, "funnels", "funnels (statement included)")
    timed(trend, "deal_trend", "trend (statement included)")
    timed(builds, "_run_view", "the view, both of its runs")
    app = create_app(Settings(db=args.db, db_threads=args.threads))
    per_request: list[float] = []
    parts: dict[str, list[float]] = defaultdict(list)
    with page_client(app) as client:
        client.get("/report?period=last_month").raise_for_status()
        while True:  # the warm-up after the start: wait until the process idles
            c0 = time.process_time()
            time.sleep(1.0)
            if time.process_time() - c0 < 0.05:
                break
        for i in range(args.n):
            start = args.first + timedelta(days=i)
            end = start + timedelta(days=args.days)
            spent.clear()
            recording.set()
            c0 = time.process_time()
            client.get(f"/report.json?period=custom&from={start}&to={end}").raise_for_status()
            per_request.append(time.process_time() - c0)
            recording.clear()
            for k, v in spent.items():
                parts[k].append(v)
    print(
        f"{args.n} reports of {args.days} days from {args.first} (threads={args.threads}): "
        f"process CPU a request median {statistics.median(per_request) * 1000:.0f} ms"
    )
    for k, v in sorted(parts.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {k:48} {statistics.median(v) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
