"""Benchmark the report engine: the full report and a drill-down on big demo portals.

Not a test. Usage:
    .venv/bin/python bench/bench_report.py --deals 100000 1000000 [--workdir /tmp/rop-bench]

For each size it generates a demo portal (rop.demo.generator, seed 1), loads it
into a DuckDB store file (rop.bitrix.snapshot.load_snapshot), then times, each
as the median of several runs on a warm store:
  - the full report: all sections, previous period included, rows by manager,
    for the generator's last month and for the whole year to date;
  - a drill-down: deals_won for one manager (first 100 rows) and for the total.
Results go to stdout as a Markdown table for docs/BENCHMARKS.md.

With ``--db STORE --label NAME`` it benches an existing store file instead
(a copy: it is changed), with the first report in a fresh process and the
first report after a 1 %-changed update as well; run it once per version
(``PYTHONPATH`` on an exported copy of the older ``rop/``) for before/after.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import resource
import statistics
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from current import require_current  # bench/, the script's own folder

from rop.bitrix.snapshot import load_snapshot
from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from rop.store import open_store


def _cpu() -> float:
    # DuckDB's worker threads count too: CPU time moves less than wall time
    # with the other jobs on this shared box.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn, runs: int) -> tuple[float, float, float, float]:
    """(first call, median, best, median CPU time) of ``runs`` calls after the first.

    The first call also builds the cached static steps (rop.metrics.cache).
    """
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), _cpu()
        fn()
        times.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return first, statistics.median(times), min(times), statistics.median(cpus)


def prepare(size: int, workdir: Path) -> Path:
    folder = workdir / f"portal-{size}-24m"  # two full years (issue 16)
    db = workdir / f"store-{size}-24m.duckdb"
    if not (folder / "portal.json").exists():
        from rop.demo.generator import generate

        start = time.perf_counter()
        generate(folder, seed=1, deals=size, months=24)
        print(f"# {size}: generated in {time.perf_counter() - start:.1f} s", flush=True)
    if not db.exists():
        start = time.perf_counter()
        with open_store(db) as store:
            load_snapshot(store, folder)  # streams: any size fits
        print(f"# {size}: loaded in {time.perf_counter() - start:.1f} s", flush=True)
    return db


# Columns holding record IDs, shifted per copy by replicate().
_ID_COLUMNS = {
    "deals": ("id", "company_id", "contact_id", "lead_id"),
    "leads": ("id", "company_id", "contact_id"),
    "companies": ("id",),
    "contacts": ("id", "company_id"),
    "deal_stage_history": ("id", "owner_id"),
    "lead_status_history": ("id", "owner_id"),
    "calls": ("id", "crm_entity_id"),
}


def replicate(base: Path, target: Path, copies: int) -> None:
    """A store with ``copies`` copies of ``base``'s records under shifted IDs.

    A quick way to a 1M-deal store from a generated 100k one: the same
    managers, pipelines and distributions, ten times the records.
    """
    import shutil

    shutil.copy(base, target)
    with open_store(target) as store:
        for table, cols in _ID_COLUMNS.items():
            shift = ", ".join(f"{c} + $k * 100000000 AS {c}" for c in cols)
            for k in range(1, copies):
                store.execute(
                    f"INSERT INTO {table} SELECT * REPLACE ({shift}) FROM {table} "
                    "WHERE id < 100000000",
                    {"k": k},
                )


def stage_cases(store, flt: ReportFilter) -> list:
    """The stage section alone (issue 12) and a drill-down of its biggest matrix cell."""
    from rop.report.context import context, prepare
    from rop.report.stages import build_stages

    def section() -> dict:
        prep = prepare(store, flt, None)
        return build_stages(prep, context(prep, flt.date_from, flt.date_to))

    cells = [c for p in section()["deals"]["pipelines"] for c in p["matrix"]["cells"]]
    big = max(cells, key=lambda c: c["count"])["figure"]
    first = section()["deals"]["pipelines"][0]
    time_key = first["time"][0]["figure"]
    reach_key = first["funnel"][1]["figure"]
    stuck_key = first["stuck"]["figure"]
    return [
        ("stage section (matrix, times, funnel, stuck), month", section),
        (f"drill {big}, 100 rows", lambda: drill(store, flt, big, limit=100)),
        (f"drill {time_key}, 100 rows", lambda: drill(store, flt, time_key, limit=100)),
        (f"drill {reach_key}, 100 rows", lambda: drill(store, flt, reach_key, limit=100)),
        (f"drill {stuck_key}, 100 rows", lambda: drill(store, flt, stuck_key, limit=100)),
    ]


def quality_cases(store, flt: ReportFilter, manager: int) -> list:
    """The data-quality panel (issue 15), built apart from the report, and drill-downs."""
    from rop.report.quality import build_quality, manager_quality

    return [
        ("data-quality panel, month", lambda: build_quality(store, flt)),
        ("data-quality, one manager (manager page)", lambda: manager_quality(store, flt, manager)),
        (
            "drill quality_deal_no_next_step, total, 100 rows",
            lambda: drill(store, flt, "quality_deal_no_next_step", limit=100),
        ),
        (
            "drill quality_contact_duplicate, total, 100 rows",
            lambda: drill(store, flt, "quality_contact_duplicate", limit=100),
        ),
    ]


def picture_cases(store, flt: ReportFilter, label: str) -> list:
    """The page's pictures beside the report: the new/won/lost trend and the funnels of
    every pipeline (the web page builds them with each uncached report). Either
    version: the trend in the report layer (rop.report.trend) or, before, the web's."""
    from rop.web import charts
    from rop.web.options import load_options

    opts = load_options(store)
    pids = [p["id"] for p in opts.pipelines]
    a, b = flt.date_from, flt.date_to
    try:
        from rop.report.trend import deal_trend

        def trend() -> object:
            return deal_trend(store, flt, None, b)
    except ImportError:  # before: the web's own query over the stage history

        def trend() -> object:
            return charts.trend(store, opts, a, b, (), None, b)

    if "flt" in inspect.signature(charts.funnel).parameters:  # the report layer's counts

        def funnels() -> object:
            return charts.funnels(store, opts, pids, flt)
    else:

        def funnels() -> object:
            return [charts.funnel(store, opts, p, a, b) for p in pids]

    return [
        (f"the page's trend chart, {label}", trend),
        (f"the page's funnels ({len(pids)} pipelines), {label}", funnels),
    ]


_FRESH = """
import resource, sys, time
from datetime import date
from rop.store import open_store
from rop.report.build import build_report
from rop.report.filter import ReportFilter
start = time.perf_counter()
what = sys.argv[4] if len(sys.argv) > 4 else ""
store = open_store(sys.argv[1], read_only=what in ("stages", "report"))
opened = time.perf_counter() - start
start = time.perf_counter()
flt = ReportFilter(date.fromisoformat(sys.argv[2]), date.fromisoformat(sys.argv[3]))
if what == "stages":
    from rop.report.stages import stage_section
    stage_section(store, flt)
else:
    build_report(store, flt, **({"stages": False} if what == "page" else {}))
usage = resource.getrusage(resource.RUSAGE_SELF)
print("\\n", opened, time.perf_counter() - start, usage.ru_utime + usage.ru_stime)
"""


def fresh_process(db: Path, flt: ReportFilter, what: str = "") -> tuple[float, float, float]:
    """(open, first report, the process's CPU) in a new Python process: nothing cached.

    ``what``: "" the full report (stage section included), opened for writing;
    "page" the report as the web page builds it (no stage section), opened for
    writing; "stages" the stage section alone, "report" the full report, both
    read-only (what `rop serve` and the CLI find after a sync).
    """
    import subprocess
    import sys

    extra = [what] if what else []
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _FRESH,
            str(db),
            *(d.isoformat() for d in (flt.date_from, flt.date_to)),
            *extra,
        ],  # fmt: skip
        check=True,
        capture_output=True,
        text=True,
        cwd=db.parent,  # not this checkout's rop (`-c` puts the working folder first)
    ).stdout.strip()
    # The last line: DuckDB may print a progress bar before it.
    opened, first, cpu = out.splitlines()[-1].split()[-3:]
    return float(opened), float(first), float(cpu)


def change_one_percent(store, last: date, round_: int) -> dict[str, float]:
    """What a 1 %-changed incremental sync writes: 1 % of the deals move a stage
    (won, with its history row), 1 % of the leads change source, through the
    one write path (Store.upsert), then the sync's end (refresh_facts, when
    this version has it). Returns the seconds of each step."""
    from datetime import datetime, timedelta

    times: dict[str, float] = {}
    portal = store.scalar("SELECT portal FROM portals")
    when = datetime.combine(last, datetime.min.time()) + timedelta(hours=10)
    start = time.perf_counter()
    deals = store.query_dicts(
        f"SELECT * FROM deals WHERE id % 100 = {round_ % 100} ORDER BY id"  # noqa: S608
    )
    top = int(store.scalar("SELECT max(id) FROM deal_stage_history"))
    for d in deals:
        d["stage_semantic"], d["date_modify"] = "S", when
    history = [
        {"portal": portal, "id": top + 1 + i, "type_id": 3, "owner_id": d["id"],
         "created_time": when, "category_id": d["category_id"], "stage_semantic": "S",
         "stage_id": d["stage_id"]}
        for i, d in enumerate(deals)
    ]  # fmt: skip
    leads = store.query_dicts(
        f"SELECT * FROM leads WHERE id % 100 = {round_ % 100} ORDER BY id"  # noqa: S608
    )
    for lead in leads:
        lead["source_id"] = "CALL" if lead["source_id"] != "CALL" else "EMAIL"
    with store.transaction():
        for table, rows in (("deals", deals), ("deal_stage_history", history), ("leads", leads)):
            for i in range(0, len(rows), 2500):  # the sync's batches
                store.upsert(table, rows[i : i + 2500])
        store.execute("UPDATE portals SET updated_at = ?", [datetime.now()])
    times["write"] = time.perf_counter() - start
    try:
        from rop.store.facts import refresh_facts
    except ImportError:  # the version before stored facts
        return times
    start = time.perf_counter()
    refresh_facts(store, portal)
    times["refresh"] = time.perf_counter() - start
    return times


def _this_month(store) -> ReportFilter:
    """The whole month of the portal's "today": what `rop serve`'s start builds."""
    from rop.report.portal import select_portal

    today = select_portal(store).today()
    end = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return ReportFilter(today.replace(day=1), date.fromordinal(end.toordinal() - 1))


def bench_store(
    db: Path, runs: int, label: str, first_cases: bool = True, page: bool = False
) -> list[str]:
    """The report's cases on an existing store file (it is changed: 1 % of its deals).

    ``page``: the report as the web page builds it (no stage section, which
    loads when opened), the issue's cases; else ``build_report``'s default."""
    lines = []
    kw = {"stages": False} if page else {}

    def line(name: str, first: float, median: float, best: float, cpu: float) -> None:
        load = os.getloadavg()[0]
        lines.append(
            f"| {label} | {name} | {first * 1000:.0f} ms | {median * 1000:.0f} ms "
            f"| {best * 1000:.0f} ms | {cpu * 1000:.0f} ms | {load:.1f} |"
        )
        print(lines[-1], flush=True)

    start = time.perf_counter()
    store = open_store(db)
    opened = time.perf_counter() - start
    print(f"# {label}: opened in {opened * 1000:.0f} ms", flush=True)
    require_current(store, str(db))
    try:
        last = store.scalar("SELECT max(date_create) FROM deals").date()
        month = ReportFilter(last.replace(day=1), last)
        year = ReportFilter(date(last.year, 1, 1), last)
        manager = store.scalar(
            "SELECT assigned_by_id FROM deals GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
        if first_cases:
            this_month = _this_month(store) if page else None
            store.close()
            op, first, cpu = fresh_process(db, month, "page" if page else "")
            line(f"first report in a fresh process (open {op * 1000:.0f} ms)", first, first,
                 first, cpu)  # fmt: skip
            if this_month is not None:
                # The start's default page: the whole month of the portal's today,
                # a plan period, so with its forecast (the month above ends at the
                # last deal created, which is no plan period: no forecast).
                op, first, cpu = fresh_process(db, this_month, "page")
                line(f"first default page ({this_month.date_from:%Y-%m}, with its forecast) "
                     f"in a fresh process (open {op * 1000:.0f} ms)", first, first, first,
                     cpu)  # fmt: skip
            store = open_store(db)
        cases = [
            ("full report, month + previous", lambda: build_report(store, month, **kw)),
            ("full report, year to date + previous", lambda: build_report(store, year, **kw)),
            ("drill deals_won, one manager, 100 rows",
             lambda: drill(store, month, "deals_won", user_id=manager, limit=100)),
            ("drill deals_won, total, 100 rows",
             lambda: drill(store, month, "deals_won", limit=100)),
            ("drill companies_not_called, one manager, 100 rows",
             lambda: drill(store, month, "companies_not_called", user_id=manager, limit=100)),
            ("drill calls_total, total, 100 rows",
             lambda: drill(store, month, "calls_total", limit=100)),
        ]  # fmt: skip
        if page:
            cases += picture_cases(store, month, "month") + picture_cases(
                store, year, "year to date"
            )
        for name, fn in cases:
            line(name, *timed(fn, runs))
        if first_cases:
            steps = change_one_percent(store, last, 1)
            start, cpu = time.perf_counter(), _cpu()
            build_report(store, month, **kw)
            first, cpu = time.perf_counter() - start, _cpu() - cpu
            spent = " + ".join(f"{k} {v * 1000:.0f} ms" for k, v in steps.items())
            line(f"first report after a 1 %-changed update ({spent})", first, first, first, cpu)
    finally:
        store.close()
    return lines


def bench(
    size: int, workdir: Path, runs: int, copies: int = 1, only: tuple[str, ...] = ()
) -> list[str]:
    db = prepare(size, workdir)
    if copies > 1:
        target = workdir / f"store-{size}x{copies}.duckdb"
        if not target.exists():
            start = time.perf_counter()
            replicate(db, target, copies)
            print(f"# {size}x{copies}: replicated in {time.perf_counter() - start:.1f} s")
        db, size = target, size * copies
    lines = []
    # Before the store is held open below (DuckDB locks the file): nothing cached.
    with open_store(db, read_only=True) as store:
        last = store.scalar("SELECT max(date_create) FROM deals").date()
    for what, name in (
        ("stages", "stage section, month, first call in a fresh process"),
        ("report", "full report (stage section included), month + previous, "
         "first call in a fresh process"),
    ):  # fmt: skip
        if only and not any(o in name for o in only):
            continue
        opened, first, cpu = fresh_process(db, ReportFilter(last.replace(day=1), last), what)
        lines.append(
            f"| {size:,} | {name} (open {opened * 1000:.0f} ms) | {first * 1000:.0f} ms | "
            f"— | — | {cpu * 1000:.0f} ms (process) | {os.getloadavg()[0]:.1f} |"
        )
        print(lines[-1], flush=True)
    with open_store(db) as store:
        counts = {
            t: store.scalar(f"SELECT count(*) FROM {t}")
            for t in ("deals", "leads", "companies", "contacts", "deal_stage_history", "calls")
        }
        print(f"# {size}: {counts}", flush=True)
        last = store.scalar("SELECT max(date_create) FROM deals").date()
        month = ReportFilter(last.replace(day=1), last)
        year = ReportFilter(date(last.year, 1, 1), last)
        manager = store.scalar(
            "SELECT assigned_by_id FROM deals GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
        cases = [
            ("full report, month + previous", lambda: build_report(store, month)),
            ("full report, year to date + previous", lambda: build_report(store, year)),
            (
                "full report, year to date, no previous",
                lambda: build_report(store, replace(year, compare=False)),
            ),
            (
                "drill deals_won, one manager, 100 rows",
                lambda: drill(store, month, "deals_won", user_id=manager, limit=100),
            ),
            (
                "drill deals_won, total, 100 rows",
                lambda: drill(store, month, "deals_won", limit=100),
            ),
            (
                "drill companies_not_called, one manager, 100 rows",
                lambda: drill(store, month, "companies_not_called", user_id=manager, limit=100),
            ),
        ]
        if "stages" in inspect.signature(build_report).parameters:
            # What the web page's build costs: the stage section loads when opened.
            cases.insert(
                1,
                (
                    "full report, month + previous, no stage section (the page)",
                    lambda: build_report(store, month, stages=False),
                ),
            )
        cases += stage_cases(store, month)
        cases += quality_cases(store, month, manager)
        for name, fn in cases:
            if only and not any(o in name for o in only):
                continue
            first, median, best, cpu = timed(fn, runs)
            load = os.getloadavg()[0]
            lines.append(
                f"| {size:,} | {name} | {first * 1000:.0f} ms | {median * 1000:.0f} ms "
                f"| {best * 1000:.0f} ms | {cpu * 1000:.0f} ms | {load:.1f} |"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, nargs="+", default=[100_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rop-bench"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--copies", type=int, default=1, help="Also bench N shifted copies of each portal"
    )
    parser.add_argument(
        "--only", nargs="*", default=[], help="Only the cases whose name contains one of these"
    )
    parser.add_argument(
        "--db", type=Path, help="Bench this existing store file instead (it is changed)"
    )
    parser.add_argument("--label", default="", help="The first column with --db")
    parser.add_argument(
        "--page",
        action="store_true",
        help="With --db: the report as the web page builds it (no stage section)",
    )
    args = parser.parse_args()
    if args.db:
        print(
            "| store | case | first call | median | best | CPU (median) | load |\n"
            "|---|---|---|---|---|---|---|"
        )
        bench_store(args.db, args.runs, args.label or args.db.name, page=args.page)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"# {date.today()} {platform.node()} python {platform.python_version()}")
    print(
        "| deals | case | first call | median | best | CPU (median) | load |\n"
        "|---|---|---|---|---|---|---|"
    )
    for size in args.deals:
        bench(size, args.workdir, args.runs, args.copies, tuple(args.only))


if __name__ == "__main__":
    main()
