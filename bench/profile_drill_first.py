"""Where one drill-down's first page after open goes, phase by phase (DuckDB stores).

    profile_drill_first.py --db STORE FIGURE [--manager] [--runs 3] [--no-report]

A fresh process opens the store read-only and builds the month's report as the
page does (``--no-report``: not), then runs the drill-down ``runs`` times with
DuckDB's JSON profiling on (``profiling_mode`` detailed). For each run: the wall
time, the Python part (checks, plan, shaping: the wall less the statements), each
statement's time, and for the list's statement its binding, optimizer and total
time, the bytes read into DuckDB's buffer pool, and the costliest operators (scans
with their rows scanned and row groups). Profiling slows every run: compare runs
with each other, time with bench_drill_first.py. ``--manager``: the drill-down of the
manager with the most deals (as bench_drill_first's client lists).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from rop.store import open_store


def _operators(node: dict[str, Any], out: list[tuple[float, str]]) -> list[tuple[float, str]]:
    info = node.get("extra_info", {})
    what = node["name"]
    if "Table" in info:
        what += f" {info['Table'].split('.')[-1]} ({node.get('rows_scanned')} rows scanned, "
        what += (
            f"row groups {node.get('row_groups_scanned')}/{node.get('total_row_groups_to_scan')})"
        )
    out.append((node.get("timing", 0.0), f"{what} -> {node.get('intermediate_rows')} rows"))
    for child in node.get("children", []):
        _operators(child, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("figure")
    parser.add_argument("--manager", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    store = open_store(args.db, read_only=True)
    print(f"open {(time.perf_counter() - start) * 1000:.0f} ms")
    last = store.scalar("SELECT max(date_create) FROM deals").date()
    month = ReportFilter(last.replace(day=1), last)
    user = None
    if args.manager:
        user = store.scalar(
            "SELECT assigned_by_id FROM deals GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
    if not args.no_report:
        start = time.perf_counter()
        build_report(store, month, stages=False)
        print(f"report {(time.perf_counter() - start) * 1000:.0f} ms")
    out = Path(tempfile.mkdtemp()) / "profile.json"
    conn = store.conn
    conn.execute("PRAGMA enable_profiling='json'")
    conn.execute("PRAGMA profiling_mode='detailed'")
    conn.execute(f"PRAGMA profiling_output='{out}'")
    statements: list[tuple[float, str, dict[str, Any]]] = []
    fetch = type(store)._fetch

    def timed_fetch(self: Any, sql: str, params: Any) -> Any:
        begin = time.perf_counter()
        try:
            return fetch(self, sql, params)
        finally:
            took = time.perf_counter() - begin
            statements.append((took, sql, json.loads(out.read_text())))

    type(store)._fetch = timed_fetch  # type: ignore[method-assign]
    for run in range(args.runs):
        statements.clear()
        start = time.perf_counter()
        drill(store, month, args.figure, user_id=user, limit=100)
        wall = time.perf_counter() - start
        sql_time = sum(t for t, _, _ in statements)
        print(
            f"run {run}: wall {wall * 1000:.1f} ms, Python {(wall - sql_time) * 1000:.1f} ms, "
            f"statements " + ", ".join(f"{t * 1000:.1f}" for t, _, _ in statements) + " ms"
            f" (load {os.getloadavg()[0]:.1f})"
        )
        for _took, sql, prof in statements:
            if not sql.startswith("WITH"):
                continue
            query, planner = prof["query"], prof["planner"]
            print(
                f"  list statement: total {query['total_time'] * 1000:.1f} ms, CPU "
                f"{query['cpu_time'] * 1000:.1f} ms, binding {planner['binding_time'] * 1000:.1f}"
                f" ms, planner {planner['total_time'] * 1000:.1f} ms, optimizer "
                f"{prof['optimizer']['total_time'] * 1000:.1f} ms, read "
                f"{prof['io']['total_bytes_read'] >> 10} kB"
            )
            ops = sorted(_operators(prof["operator"][0], []), reverse=True)
            for took, what in ops[:8]:
                if took >= 0.0005:
                    print(f"    {took * 1000:5.1f} ms  {what}")
    store.close()


if __name__ == "__main__":
    main()
