"""Benchmark the companies' and contacts' sections alone: counted per manager from the
period's events (rop.metrics.client_counts) against the records path, alternated in
one process on one store.

Not a test. Usage (a copy of a store: it may be migrated):
    .venv/bin/python bench/bench_clients.py --db STORE [--runs 5]
    .venv/bin/python bench/bench_clients.py --pg-keep DIR --portal SNAPSHOT_FOLDER
        [--pg-db NAME] [--page]
``--pg-keep``: a private PostgreSQL cluster kept in DIR (tests/pg.py), its database
``clients`` (or ``--pg-db``: e.g. bench_pg.py's ``bench_1000000``) loaded from the
demo snapshot once (later runs reuse it). ``--page``: time the page's whole report
(every section, the stage section apart), not the client sections alone.

Prints a Markdown table: per period (the store's last month, the year to date,
each with the previous period) and path (the records; counts per manager with
the flags from the period's deals and calls; counts with the flags from the
stored client days; the same with the clients counted from the stored copies of
their managers; and with the flagged clients counted from the stored client
firsts), the median wall and CPU time of ``build_report`` with the
client sections only (no stage section). A long period of the default filter
reads the stored client facts whichever of the middle two.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

from current import require_current  # bench/, the script's own folder

import rop.metrics.client_counts as client_counts
import rop.report.context as context
from rop.report.build import build_report
from rop.report.filter import SECTIONS, ReportFilter
from rop.store import Store, open_store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@contextlib.contextmanager
def postgres(keep: Path, portal: Path, name: str = "clients") -> Iterator[str]:
    """The application URL of a database loaded from ``portal`` in a kept cluster."""
    from rop.bitrix.snapshot import load_snapshot
    from tests.conftest import migrated_database
    from tests.pg import APP, OWNER, start_cluster

    # bench_pg.py's settings: its kept databases are read as it reads them.
    with start_cluster(keep, "-c shared_buffers=1GB -c work_mem=64MB") as cluster:
        if not cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
            fresh = migrated_database(cluster)
            cluster.psql(f"ALTER DATABASE {fresh.rsplit('/', 1)[1]} RENAME TO {name}")
            with open_store(cluster.url(name, APP)) as store:
                load_snapshot(store, portal)
            cluster.psql("ANALYZE", db=name, role=OWNER)
        yield cluster.url(name, APP)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path)
    parser.add_argument("--pg-keep", type=Path)
    parser.add_argument("--portal", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg-db", default="clients")
    parser.add_argument("--page", action="store_true")
    parser.add_argument(
        "--last-two", action="store_true", help="only the stored managers, without and with firsts"
    )
    args = parser.parse_args()
    if args.pg_keep:
        with postgres(args.pg_keep, args.portal, args.pg_db) as url, open_store(url) as store:
            store.use_portal(str(store.scalar("SELECT portal FROM portals LIMIT 1")))
            run(store, args.runs, args.page, args.last_two)
        return
    with open_store(str(args.db)) as store:
        require_current(store, str(args.db))
        run(store, args.runs, args.page, args.last_two)


def _use(path: tuple[bool, bool, bool, bool]) -> None:
    (
        client_counts.ENABLED,
        context.USE_CLIENT_DAYS,
        context.USE_CLIENT_MANAGERS,
        context.USE_CLIENT_FIRSTS,
    ) = path


def run(store: Store, runs: int, page: bool = False, last_two: bool = False) -> None:
    last = store.scalar("SELECT max(date_create) FROM deals").date()
    # The page: every section (the stage section apart, as bench_pg.py's page case).
    sections = SECTIONS if page else ("companies", "contacts")
    periods = {
        "month + previous": ReportFilter(last.replace(day=1), last, sections=sections),
        "year to date + previous": ReportFilter(date(last.year, 1, 1), last, sections=sections),
    }
    # (client_counts.ENABLED, context.USE_CLIENT_DAYS, context.USE_CLIENT_MANAGERS,
    # context.USE_CLIENT_FIRSTS).
    paths = {
        **({} if page or last_two else {"records": (False, False, False, False)}),
        **(
            {}
            if last_two
            else {
                "counts, flags from the period's deals and calls": (True, False, False, False),
                "counts, flags from the stored client days": (True, True, False, False),
            }
        ),
        "counts from the stored client managers": (True, True, True, False),
        "counts from the stored client managers and client firsts": (True, True, True, True),
    }
    print("| period | path | median wall | median CPU | load |\n|---|---|---|---|---|")
    for label, flt in periods.items():
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        for path in paths.values():  # a first build of each warms the caches
            _use(path)
            build_report(store, replace(flt), stages=False)
        for _ in range(runs):
            for name, path in paths.items():
                _use(path)
                wall, cpu = time.perf_counter(), _cpu()
                build_report(store, replace(flt), stages=False)
                times[name].append((time.perf_counter() - wall, _cpu() - cpu))
        load = os.getloadavg()[0]
        for name in paths:
            wall = statistics.median(t for t, _ in times[name]) * 1000
            cpu = statistics.median(c for _, c in times[name]) * 1000
            print(f"| {label} | {name} | {wall:,.0f} ms | {cpu:,.0f} ms | {load:.1f} |")


if __name__ == "__main__":
    main()
