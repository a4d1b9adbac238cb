"""Benchmark the forecast's stage probabilities from the stored stage entries
(rop.store.stage_entries) against the history's own statement, the entries'
build and their refresh after a 1 % update.

Not a test. Usage (a copy of a store: it is migrated and changed):
    .venv/bin/python bench/bench_stage_entries.py --db STORE [--runs 3] [--step STEP]
    .venv/bin/python bench/bench_stage_entries.py --pg-keep DIR --pg-db NAME [--step STEP]

Steps (``--step``, all by default, in this order):
- ``before``: ``stage_probabilities`` as the rop on PYTHONPATH has it, each call
  in a store opened afresh (no cached result): run it with main's rop
  (``git archive main rop``) on the store before this rop migrates it;
- ``migrate``: this rop's migration and ``ensure_facts`` (the rollups rebuilt,
  the stage entries with them), then the entries' whole write alone;
- ``compare``: alternately the history's statement (``stored=False``, the same
  text as main's) and the stored entries (``stored=True``), each cold in a store
  opened afresh, ``--runs`` rounds; the two results compared;
- ``update``: 1 % of the deals get a new history row (won now, through
  Store.upsert, which marks them), then the entries' write for them alone and
  ``refresh_facts`` are timed.
Prints Markdown rows with the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# tests.pg from the repository; rop from PYTHONPATH first (main's for the "before" step).
sys.path.append(str(Path(__file__).resolve().parent.parent))

from rop.report.forecast import stage_probabilities  # noqa: E402
from rop.store import open_store  # noqa: E402
from rop.store.db import Store  # noqa: E402


def _load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _clock(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu, out


def _today(store: Store) -> Any:
    return store.scalar("SELECT max(date_create) FROM deals").date()


@contextmanager
def _opened(target: str) -> Iterator[tuple[Store, str, Any, Any]]:
    with open_store(target) as store:
        portal = str(store.scalar("SELECT portal FROM portals LIMIT 1"))
        store.use_portal(portal)
        tz = ZoneInfo(store.scalar("SELECT timezone FROM portals WHERE portal = ?", [portal]))
        yield store, portal, _today(store), tz


def _probs(target: str, **kw: Any) -> tuple[float, float, dict]:
    with _opened(target) as (store, portal, today, tz):
        wall, cpu, out = _clock(lambda: stage_probabilities(store, portal, today, tz, **kw))
    return wall, cpu, out


def before(target: str, runs: int) -> None:
    for _ in range(runs):
        wall, cpu, out = _probs(target)
        print(f"| before (this PYTHONPATH's rop) | {wall:.2f} s | {cpu:.2f} s | {len(out)} stages | {_load()} |", flush=True)  # fmt: skip


def migrate(target: str, pg_owner: str | None) -> None:
    from rop.store import stage_entries
    from rop.store.facts import _params, ensure_facts

    start = time.perf_counter()
    if pg_owner is not None:
        import psycopg

        from rop.store.postgres import display, migrate_pg
        from tests.pg import APP

        with psycopg.connect(pg_owner, autocommit=True) as conn:
            applied = migrate_pg(conn, display(pg_owner), app_role=APP)
    with open_store(target) as store:
        migrated = time.perf_counter() - start
        start = time.perf_counter()
        built = ensure_facts(store)
        ensured = time.perf_counter() - start
        print(f"| migration (open{' + migrate_pg ' + str(applied) if pg_owner else ''}) | {migrated:.1f} s | | | {_load()} |")  # fmt: skip
        print(f"| ensure_facts (rollups rebuilt, entries with them) {built} | {ensured:.1f} s | | | {_load()} |")  # fmt: skip
        portal = str(store.scalar("SELECT portal FROM portals LIMIT 1"))
        store.use_portal(portal)
        rows = store.scalar(f"SELECT count(*) FROM {stage_entries.TABLE}")
        start = time.perf_counter()
        with store.transaction():
            stage_entries.write(store, _params(store, portal), None)
        print(f"| the entries' whole write alone ({rows} rows) | {time.perf_counter() - start:.1f} s | | | {_load()} |", flush=True)  # fmt: skip


def compare(target: str, runs: int) -> None:
    for _ in range(runs):
        w1, c1, old = _probs(target, stored=False)
        w2, c2, new = _probs(target, stored=True)
        same = "equal" if old == new else "DIFFERENT"
        print(f"| history's statement (main's) | {w1:.2f} s | {c1:.2f} s | {len(old)} stages | {_load()} |")  # fmt: skip
        print(f"| stored entries | {w2:.2f} s | {c2:.2f} s | {len(new)} stages, {same} | {_load()} |", flush=True)  # fmt: skip


def update(target: str, share: float) -> None:
    from rop.store import stage_entries
    from rop.store.facts import _IDS, _params, _stage_ids, refresh_facts

    with _opened(target) as (store, portal, today, _tz):
        step = max(1, round(1 / share))
        deals = [
            int(r[0])
            for r in store.query(
                f"SELECT id FROM deals WHERE portal = ? AND id % {step} = 0 ORDER BY id", [portal]
            )
        ]
        top = int(store.scalar("SELECT max(id) FROM deal_stage_history") or 0)
        at = store.scalar("SELECT max(created_time) FROM deal_stage_history") - timedelta(hours=1)
        rows = [
            {"portal": portal, "id": top + i + 1, "type_id": 2, "owner_id": d,
             "created_time": at, "category_id": 0, "stage_id": "WON", "stage_semantic": "S"}
            for i, d in enumerate(deals)
        ]  # fmt: skip
        start = time.perf_counter()
        for i in range(0, len(rows), 20_000):
            store.upsert("deal_stage_history", rows[i : i + 20_000])
        written = time.perf_counter() - start
        start = time.perf_counter()
        with store.transaction(), _stage_ids(store, deals):
            stage_entries.write(store, _params(store, portal), _IDS)
        alone = time.perf_counter() - start
        start = time.perf_counter()
        done = refresh_facts(store, portal)
        whole = time.perf_counter() - start
        print(f"| 1 % update: {len(deals)} deals' history rows written | {written:.1f} s | | | {_load()} |")  # fmt: skip
        print(f"| the entries' write for them alone | {alone:.2f} s | | | {_load()} |")  # fmt: skip
        print(f"| refresh_facts (all facts, incremental: rollups {done.rollups}) | {whole:.1f} s | | | {_load()} |", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="a DuckDB store (a copy: it is changed)")
    ap.add_argument("--pg-keep", type=Path, help="a kept cluster (bench_pg.py --keep)")
    ap.add_argument("--pg-db", default="bench_1000000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--share", type=float, default=0.01)
    ap.add_argument("--step", choices=["before", "migrate", "compare", "update"], action="append")
    args = ap.parse_args()
    steps = args.step or ["before", "migrate", "compare", "update"]

    def run(target: str, owner: str | None) -> None:
        import rop

        print(f"rop from {rop.__file__}")
        print(f"| step | wall | CPU (this process) | result | {_load()} |\n|---|---|---|---|---|")
        for step in steps:
            if step == "before":
                before(target, args.runs)
            elif step == "migrate":
                migrate(target, owner)
            elif step == "compare":
                compare(target, args.runs)
            else:
                update(target, args.share)

    if args.db:
        run(args.db, None)
        return
    from tests.pg import APP, OWNER, start_cluster

    with start_cluster(args.pg_keep, "-c shared_buffers=1GB -c work_mem=64MB") as cluster:
        run(cluster.url(args.pg_db, APP), cluster.url(args.pg_db, OWNER))


if __name__ == "__main__":
    main()
