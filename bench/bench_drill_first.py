"""The first drill-down of each list after a store is opened, then the median.

    bench_drill_first.py --db STORE [--runs 5] [--export] [--warm]

Opens the store (read-only for a DuckDB file; a postgresql:// URL opens a new
pool), builds the report as the web page does (its static steps cached), then
times each list's first page (100 rows) and the median of ``runs`` more.
``--export``: also the whole list of deals won this year and of the companies not
called this month (what a CSV/XLSX of a drill-down reads), first call and median.
``--warm``: instead of the lists, a server's warm-up after the report
(rop.report.context.warm_cache), each relation's wall and CPU time.
Prints Markdown rows: wall first / median, CPU first / median (the process's,
DuckDB's threads included), the load.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date

from current import require_current  # bench/, the script's own folder
from timing import timed_cpu  # bench/, the script's own folder

from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from rop.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--label", default="")
    parser.add_argument("--export", action="store_true")
    parser.add_argument("--warm", action="store_true")
    args = parser.parse_args()
    pg = args.db.startswith("postgresql://")
    store = open_store(args.db) if pg else open_store(args.db, read_only=True)
    require_current(store, args.db)
    last = store.scalar("SELECT max(date_create) FROM deals").date()
    month = ReportFilter(last.replace(day=1), last)
    year = ReportFilter(date(last.year, 1, 1), last)
    manager = store.scalar(
        "SELECT assigned_by_id FROM deals GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )
    start = time.perf_counter()
    build_report(store, month, stages=False)
    print(f"# {args.label}: report first {time.perf_counter() - start:.1f} s", flush=True)
    cases = [
        ("drill deals_won, total, 100 rows", lambda: drill(store, month, "deals_won", limit=100)),
        (
            "drill companies_not_called, one manager, 100 rows",
            lambda: drill(store, month, "companies_not_called", user_id=manager, limit=100),
        ),
        (
            "drill calls_total, total, 100 rows",
            lambda: drill(store, month, "calls_total", limit=100),
        ),
        ("drill leads_new, total, 100 rows", lambda: drill(store, month, "leads_new", limit=100)),
        (
            "drill contacts_not_called, one manager, 100 rows",
            lambda: drill(store, month, "contacts_not_called", user_id=manager, limit=100),
        ),
    ]
    if args.export:
        cases.append(
            ("drill deals_won, year to date, every row (export)",
             lambda: drill(store, year, "deals_won")),
        )  # fmt: skip
        cases.append(
            ("drill companies_not_called, every row (export)",
             lambda: drill(store, month, "companies_not_called")),
        )  # fmt: skip
    if args.warm:
        warm(store, args.label)
        cases = []
    for name, fn in cases:
        first, median, first_cpu, median_cpu = timed_cpu(
            fn, args.runs if "export" not in name else 2
        )
        print(
            f"| {args.label} | {name} | {first * 1000:.0f} / {median * 1000:.0f} ms "
            f"| {first_cpu * 1000:.0f} / {median_cpu * 1000:.0f} ms "
            f"| {os.getloadavg()[0]:.1f} |",
            flush=True,
        )
    store.close()


def warm(store, label: str) -> None:
    """The server's warm-up, relation by relation: wall and CPU time."""
    from rop.report.context import warm_cache, warm_sources

    wall = cpu = 0.0
    for name in warm_sources():
        start, used = time.perf_counter(), time.process_time()
        warm_cache(store, sources=[name])
        took, spent = time.perf_counter() - start, time.process_time() - used
        wall, cpu = wall + took, cpu + spent
        if spent > 0.05:
            print(f"| {label} | warm_cache: {name} | {took * 1000:.0f} ms "
                  f"| {spent * 1000:.0f} ms | {os.getloadavg()[0]:.1f} |")  # fmt: skip
    print(f"| {label} | warm_cache: every relation | {wall * 1000:.0f} ms "
          f"| {cpu * 1000:.0f} ms | {os.getloadavg()[0]:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
