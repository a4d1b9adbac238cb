"""PostgreSQL beside DuckDB in one run: the full report and a drill-down, and the upsert path.

Not a test. Usage:
    .venv/bin/python bench/bench_pg.py --deals 10000 100000 [--pg URL] [--workdir DIR]
        [--keep DIR] [--shared /work/bench-data]

``--keep DIR`` keeps the cluster and one loaded database per size there, so a
second run skips the load (a million deals take minutes to load);
``--shared`` takes the demo snapshots and loaded DuckDB stores from that
folder (``portal-N-24m``, ``store-N-24m.duckdb``, opened read-only).

Without ``--pg`` a private PostgreSQL cluster is started for the run (tests/pg.py:
initdb in a temporary folder, as ``nobody`` under root, stopped at the end).
For each size a demo portal is generated (seed 1), loaded into a DuckDB file
and into a fresh PostgreSQL database (migrated by the owner, loaded and read
as the application role, so row-level security is on as in production), and
each case is timed on both engines: the first call (cold: it computes the
cached static steps) and the median of the next ``--runs``.

``--upsert N`` also times the PostgreSQL write path for N deal rows: COPY
into a temporary table + INSERT ... ON CONFLICT (what Store.upsert does)
against psycopg's executemany of the same INSERT ... ON CONFLICT.
Results go to stdout as Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# This checkout's rop, unless ROP_BENCH_ROOT names another (a "before" run
# with main's rop/ and tests/ from `git archive main`).
sys.path.insert(0, os.environ.get("ROP_BENCH_ROOT") or str(Path(__file__).resolve().parent.parent))

from timing import timed  # noqa: E402  (bench/, the script's own folder)

from rop.bitrix.snapshot import load_snapshot  # noqa: E402
from rop.report.build import build_report, drill  # noqa: E402
from rop.report.filter import ReportFilter  # noqa: E402
from rop.store import open_store  # noqa: E402
from rop.store.db import Store  # noqa: E402
from rop.store.facts import ensure_facts  # noqa: E402


@contextlib.contextmanager
def postgres(
    url: str | None, keep: Path | None, suffix: str = ""
) -> Iterator[Callable[[int], tuple[str, bool]]]:
    """A function giving, per size, a migrated database's application URL and
    whether it is loaded already (a kept cluster keeps its loaded databases,
    ``bench_<size><suffix>``; a loaded one is migrated by the owner first, as
    `rop migrate` would: this rop's migrations, indexes and ANALYZE)."""
    from tests.conftest import migrated_database
    from tests.pg import APP, OWNER, start_cluster

    if url is not None:
        yield lambda _size: (url, False)
        return
    # Memory for the big sizes (the machine is shared: modest).
    with start_cluster(keep, "-c shared_buffers=1GB -c work_mem=64MB") as cluster:

        def database(size: int) -> tuple[str, bool]:
            if keep is None:
                return migrated_database(cluster), False
            name = f"bench_{size}{suffix}"
            if cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
                loaded = cluster.psql("SELECT count(*) FROM deals", db=name, role=OWNER)
                if loaded and loaded[0][0] >= size:
                    migrate_owner(cluster.url(name, OWNER), APP)
                    return cluster.url(name, APP), True
                cluster.psql(f"DROP DATABASE {name}")
            fresh = migrated_database(cluster)
            cluster.psql(f"ALTER DATABASE {fresh.rsplit('/', 1)[1]} RENAME TO {name}")
            return cluster.url(name, APP), False

        yield database


def migrate_owner(url: str, app_role: str) -> None:
    """`rop migrate --app-role` on a kept database (the schema may be older than this rop)."""
    import psycopg

    from rop.store.postgres import display, migrate_pg

    with psycopg.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        applied = migrate_pg(conn, display(url), app_role=app_role)
        print(
            f"# migrated {display(url)}: {applied or 'none needed'} "
            f"({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    # As `rop migrate` does: stored facts of another FACTS_VERSION (or rollups of
    # another ROLLUP_VERSION) are rebuilt now, not by an open (rop.store.facts).
    from rop.store.postgres import open_pg_store

    start = time.perf_counter()
    with open_pg_store(url) as store:
        built = ensure_facts(store)
    if built:
        print(
            f"# stored facts rebuilt for {built} ({time.perf_counter() - start:.1f} s)", flush=True
        )


def cases(store: Store) -> list[tuple[str, Callable[[], Any]]]:
    last = store.scalar("SELECT max(date_create) FROM deals").date()
    month = ReportFilter(last.replace(day=1), last)
    manager = store.scalar(
        "SELECT assigned_by_id FROM deals GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    )
    return [
        (
            "page's report (stage section apart), month + previous",
            lambda: build_report(store, month, stages=False),
        ),
        ("full report, month + previous", lambda: build_report(store, month)),
        (
            "drill deals_won, one manager, 100 rows",
            lambda: drill(store, month, "deals_won", user_id=manager, limit=100),
        ),
    ]


def analyze(url: str) -> None:
    """Planner statistics now, as the owner (the application role may not): right
    after a bulk load autovacuum has not run yet, and a first report planned
    without statistics took 81 s at 10k deals instead of 7 s."""
    import psycopg

    from tests.pg import APP, OWNER

    with psycopg.connect(url.replace(f"{APP}@", f"{OWNER}@", 1), autocommit=True) as conn:
        conn.execute("ANALYZE")


def snapshot(size: int, workdir: Path, shared: Path | None) -> Path:
    """The demo portal of ``size`` deals (seed 1): the shared one if there, else generated."""
    from rop.demo.generator import generate

    if shared is not None and (shared / f"portal-{size}-24m" / "portal.json").exists():
        return shared / f"portal-{size}-24m"
    folder = workdir / f"portal-{size}-24m"  # two full years (issue 16)
    if not (folder / "portal.json").exists():
        generate(folder, seed=1, deals=size, months=24)
    return folder


def bench(
    size: int,
    workdir: Path,
    new_pg: Callable[[int], tuple[str, bool]],
    runs: int,
    shared: Path | None = None,
    engines: tuple[str, ...] = ("PostgreSQL", "DuckDB"),
) -> list[str]:
    folder = snapshot(size, workdir, shared)
    lines = []
    given = None
    if shared is not None:
        # The store already migrated to main's schema (-cur) if there is one.
        names = (f"store-{size}-24m-m15.duckdb", f"store-{size}-24m-cur.duckdb")
        for name in (*names, f"store-{size}-24m.duckdb"):
            if (shared / name).exists():
                given = shared / name
                break

    def duck() -> tuple[str, bool]:
        # A copy of the shared loaded store when there is one (it may need this
        # rop's migrations: never written in place); else a fresh load.
        copy = workdir / f"pgbench-{size}-{os.getpid()}.duckdb"
        if given is not None and given.exists():
            shutil.copyfile(given, copy)
            return str(copy), True
        return str(copy), False

    # PostgreSQL first: its load is the long part, and the shared DuckDB store
    # may still be in the making meanwhile.
    targets: dict[str, Callable[[], tuple[str, bool]]] = {
        "PostgreSQL": lambda: new_pg(size),
        "DuckDB": duck,
    }
    for engine, where in targets.items():
        if engine not in engines:
            continue
        target, loaded = where()
        start = time.perf_counter()
        with open_store(target) as store:
            # Opening for writing builds what this rop's facts lack (rollups...).
            print(f"# {size:,} {engine}: opened in {time.perf_counter() - start:.1f} s", flush=True)
            if loaded and ensure_facts(store):
                # A copied store of an older rop: its facts rebuilt as `rop migrate`
                # would (no open does), or this would time the in-memory path.
                print(f"# {size:,} {engine}: facts rebuilt ({time.perf_counter() - start:.1f} s)")
            if not loaded:
                start = time.perf_counter()
                load_snapshot(store, folder)
                print(
                    f"# {size:,} {engine}: loaded in {time.perf_counter() - start:.1f} s",
                    flush=True,
                )
            else:
                store.use_portal(str(store.scalar("SELECT portal FROM portals LIMIT 1")))
            if engine == "PostgreSQL":
                analyze(target)
            for name, fn in cases(store):
                first, median = timed(fn, runs)
                lines.append(
                    f"| {size:,} | {engine} | {name} | {first * 1000:.0f} ms | {median * 1000:.0f} ms |"
                )
                print(lines[-1], flush=True)
        if engine == "DuckDB":
            Path(target).unlink(missing_ok=True)
    return lines


def load_pg(
    size: int, workdir: Path, new_pg: Callable[[int], tuple[str, bool]], shared: Path | None
) -> None:
    """Load the PostgreSQL database of ``size`` deals if it is not loaded yet (the
    streaming loader: memory one chunk whatever the size), then ANALYZE it."""
    import resource

    target, loaded = new_pg(size)
    if loaded:
        print(f"# {size:,} PostgreSQL: loaded already", flush=True)
        return
    folder = snapshot(size, workdir, shared)
    start = time.perf_counter()
    with open_store(target) as store:
        load_snapshot(store, folder)
    took = time.perf_counter() - start
    analyze(target)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"# {size:,} PostgreSQL: loaded in {took:.1f} s, peak RSS of this process {peak:.0f} MB",
        flush=True,
    )


def bench_upsert(url: str, rows: int) -> list[str]:
    """Store.upsert (COPY + one INSERT ... ON CONFLICT) against executemany."""
    from datetime import datetime

    from rop.store.dialect import to_pyformat

    batch = [
        {
            "portal": "bench.bitrix24.ru",
            "id": i,
            "title": f"Deal {i}",
            "stage_id": "NEW",
            "opportunity": float(i),
            "assigned_by_id": i % 50,
            "date_create": datetime(2026, 1, 1),
            "date_modify": datetime(2026, 1, 2),
        }
        for i in range(1, rows + 1)
    ]
    out = []
    with open_store(url) as store:
        store.use_portal("bench.bitrix24.ru")
        spec = store.table("deals")
        cols = list(spec.columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in spec.key)
        sql = to_pyformat(
            f"INSERT INTO deals ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "  # noqa: S608
            f"ON CONFLICT (portal, id) DO UPDATE SET {updates}"
        )
        values = [[r.get(c) for c in cols] for r in batch]
        for label, fn in (
            ("COPY + INSERT ... ON CONFLICT (Store.upsert)", lambda: store.upsert("deals", batch)),
            (
                "executemany INSERT ... ON CONFLICT",
                lambda: store.conn.cursor().executemany(sql, values),
            ),
        ):
            for state in ("new rows", "existing rows"):
                if state == "new rows":
                    store.execute("DELETE FROM deals")
                start = time.perf_counter()
                with store.transaction():
                    fn()
                took = time.perf_counter() - start
                out.append(f"| {rows:,} | {label} | {state} | {took * 1000:.0f} ms |")
                print(out[-1], flush=True)
        store.execute("DELETE FROM deals")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, nargs="+", default=[10_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rop-bench"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg", help="postgresql:// URL of a migrated, empty database")
    parser.add_argument("--upsert", type=int, default=0, help="Also time N-row upserts")
    parser.add_argument(
        "--keep", type=Path, help="Keep the cluster (and its loaded databases) in this folder"
    )
    parser.add_argument(
        "--shared",
        type=Path,
        help="Folder of shared snapshots/stores (portal-N-24m, store-N-24m.duckdb)",
    )
    parser.add_argument(
        "--suffix",
        default="",
        help="With --keep: time the databases bench_<size><suffix> (copies kept at "
        "another schema version, for a before/after run with another rop on PYTHONPATH)",
    )
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="With --keep: load the PostgreSQL databases that are missing, time nothing",
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=["PostgreSQL", "DuckDB"],
        default=["PostgreSQL", "DuckDB"],
        help="Time these engines only (a PostgreSQL before/after run needs no DuckDB load)",
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    lines = []
    with postgres(args.pg, args.keep, args.suffix) as new_pg:
        if args.upsert:
            lines += bench_upsert(new_pg(0)[0], args.upsert)
        for size in args.deals:
            if args.load_only:
                load_pg(size, args.workdir, new_pg, args.shared)
                continue
            lines += bench(size, args.workdir, new_pg, args.runs, args.shared, tuple(args.engines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
