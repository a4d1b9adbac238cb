"""What one uncached report build costs, in process, statement by statement.

Opens the app on a store (DuckDB ``threads=1``, so a statement's CPU is its
own thread's), waits for the warm-up, then asks ``/report.json`` for N
different custom periods one after the other (as bench_web_crowd's crowd does,
but in a row). For each request: the process's CPU; for each statement the
build ran: its CPU on the calling thread, where it came from (the report
section, the trend, the funnels, the route...), and, with ``--plans``, the CPU
of ``EXPLAIN`` of the same statement (parse, bind, optimise: the planning share).

    .venv/bin/python bench/bench_build_cpu.py --db <copy of the 1M store> --n 20 \
        --days 30 --first 2026-04-01 --plans
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import threading
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _origin() -> str:
    """The report step a statement runs for: the section of a report's figures,
    else the nearest rop function outside the store layer."""
    frame = inspect.currentframe()
    fallback = None
    while frame is not None:
        code = frame.f_code
        name = code.co_name
        path = code.co_filename
        if "/rop/" in path:
            if name in ("_run_figures", "_run_both") and "section" in frame.f_locals:
                return f"section {frame.f_locals['section']}"
            if fallback is None and "/rop/store/" not in path and "/rop/web/cache" not in path:
                fallback = f"{Path(path).stem}.{name}"
        frame = frame.f_back
    return fallback or "?"


# The report's figure statements run together after they are planned
# (rop.report.build._Batch): named by the relation they read.
_MARKS = (
    ("deal_base", "section deals"),
    ("lead_base", "section leads"),
    ("company", "section companies"),
    ("contact", "section contacts"),
    ("call_", "section calls"),
)


def _named(origin: str, sql: str) -> str:
    if origin.startswith("build."):
        head = sql[:600]
        for mark, name in _MARKS:
            if mark in head:
                return name
    return origin


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--first", type=date.fromisoformat, default=date(2026, 4, 1))
    parser.add_argument("--plans", action="store_true", help="also time EXPLAIN per statement")
    parser.add_argument("--show", type=int, default=0, help="print the N costliest statements")
    args = parser.parse_args()

    from web_client import page_client

    from rop.config import Settings
    from rop.store import db as store_db
    from rop.web.app import create_app

    stats: list[dict[str, Any]] = []
    recording = threading.Event()
    real_fetch = store_db.DuckStore._fetch

    def fetch(self: Any, sql: str, params: Any) -> Any:
        if not recording.is_set():
            return real_fetch(self, sql, params)
        t0 = time.thread_time()
        out = real_fetch(self, sql, params)
        cpu = time.thread_time() - t0
        plan = None
        if args.plans and sql.lstrip().upper().startswith(("SELECT", "WITH")):
            t1 = time.thread_time()
            self.conn.execute("EXPLAIN " + sql, params).fetchall()
            plan = time.thread_time() - t1
        stats.append({"origin": _named(_origin(), sql), "cpu": cpu, "plan": plan, "sql": sql})
        return out

    store_db.DuckStore._fetch = fetch  # type: ignore[method-assign]
    settings = Settings(db=args.db, db_threads=1)
    app = create_app(settings)
    per_request: list[float] = []
    per_origin: dict[str, list[float]] = defaultdict(list)
    per_origin_plan: dict[str, list[float]] = defaultdict(list)
    with page_client(app) as client:
        client.get("/report?period=last_month").raise_for_status()
        # The warm-up after the start: wait until the process idles.
        while True:
            c0 = time.process_time()
            time.sleep(1.0)
            if time.process_time() - c0 < 0.05:
                break
        recording.set()
        for i in range(args.n):
            start = args.first + timedelta(days=i)
            end = start + timedelta(days=args.days)
            stats.clear()
            c0 = time.process_time()
            resp = client.get(f"/report.json?period=custom&from={start}&to={end}")
            resp.raise_for_status()
            cpu = time.process_time() - c0
            if args.plans:
                cpu -= sum(s["plan"] or 0 for s in stats)
            per_request.append(cpu)
            sums: dict[str, float] = defaultdict(float)
            plans: dict[str, float] = defaultdict(float)
            for s in stats:
                sums[s["origin"]] += s["cpu"]
                plans[s["origin"]] += s["plan"] or 0
            for k, v in sums.items():
                per_origin[k].append(v)
                per_origin_plan[k].append(plans[k])
            per_origin["(statements)"].append(sum(sums.values()))
            per_origin_plan["(statements)"].append(sum(plans.values()))
            per_origin["(count)"].append(len(stats))
    ms = [c * 1000 for c in per_request]
    print(
        f"{args.n} reports of {args.days} days from {args.first}: CPU a request median "
        f"{statistics.median(ms):.0f} ms, mean {statistics.mean(ms):.0f} ms, "
        f"min {min(ms):.0f}, max {max(ms):.0f}"
    )
    print(f"{'origin':40} {'n':>3} {'cpu ms':>8} {'plan ms':>8}")
    for k in sorted(per_origin, key=lambda k: -statistics.median(per_origin[k])):
        med = statistics.median(per_origin[k])
        if k == "(count)":
            print(f"{k:40} statements a request: {med:.0f}")
            continue
        plan = statistics.median(per_origin_plan[k]) * 1000 if args.plans else float("nan")
        print(f"{k:40} {len(per_origin[k]):3d} {med * 1000:8.1f} {plan:8.1f}")
    if args.show:
        print("\nthe last request's costliest statements:")
        for s in sorted(stats, key=lambda s: -s["cpu"])[: args.show]:
            print(
                f"--- {s['origin']}: {s['cpu'] * 1000:.1f} ms (plan {(s['plan'] or 0) * 1000:.1f})"
            )
            print(s["sql"][:3000])


if __name__ == "__main__":
    main()
