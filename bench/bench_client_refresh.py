"""Benchmark what a change of clients costs the refresh after a sync: the stored
copies of the clients' managers (rop.store.client_days, rop.store.manager_clients)
and the client firsts (rop.store.client_firsts).

Not a test. Usage (a copy of a store: it is changed):
    .venv/bin/python bench/bench_client_refresh.py --db STORE [--share 0.01]
    .venv/bin/python bench/bench_client_refresh.py --pg-keep DIR --pg-db NAME --portal SNAPSHOT

Hands ``--share`` of the contacts and of the companies to another manager through
the sync's write path (Store.upsert, which marks them in ``fact_changes``), then
times ``refresh_facts`` (the sync's end); then the whole rebuild of each kind's
client counts alone (what a marked client of that kind costs), in one transaction.
Prints Markdown rows for docs/BENCHMARKS.md with the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench_clients import postgres  # bench/, the script's own folder

from rop.store import Store, client_firsts, manager_clients, open_store
from rop.store.client_facts import KINDS
from rop.store.facts import _IDS, _params, _stage_ids, refresh_facts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run(store: Store, share: float) -> None:
    portal = str(store.scalar("SELECT portal FROM portals LIMIT 1"))
    store.use_portal(portal)
    managers = [int(r[0]) for r in store.query("SELECT id FROM users ORDER BY id")]
    after = {m: managers[(i + 1) % len(managers)] for i, m in enumerate(managers)}
    step = max(1, round(1 / share))
    start = time.perf_counter()
    moved = 0
    ids: dict[str, list[int]] = {}
    with store.transaction():
        for kind, table in (("contact", "contacts"), ("company", "companies")):
            rows = store.query_dicts(
                f"SELECT * FROM {table} WHERE id % {step} = 0 AND assigned_by_id IS NOT NULL "  # noqa: S608
                "ORDER BY id"
            )
            for r in rows:
                r["assigned_by_id"] = after.get(r["assigned_by_id"], managers[0])
            for i in range(0, len(rows), 2500):  # the sync's batches
                store.upsert(table, rows[i : i + 2500])
            moved += len(rows)
            ids[kind] = [int(r["id"]) for r in rows]
    write = time.perf_counter() - start
    start = time.perf_counter()
    done = refresh_facts(store, portal)
    refresh = time.perf_counter() - start
    load = os.getloadavg()[0]
    print(
        f"| {store.dialect.name} | {moved:,} clients handed over: write | {write * 1000:,.0f} ms | {load:.1f} |"
    )
    print(
        f"| {store.dialect.name} | refresh_facts after it ({done.records}) "
        f"| {refresh * 1000:,.0f} ms | {load:.1f} |"
    )
    params = _params(store, portal)
    for kind in KINDS:
        start = time.perf_counter()
        with store.transaction():
            manager_clients.write(store, params, kind)
        took = time.perf_counter() - start
        print(
            f"| {store.dialect.name} | the {kind} counts rebuilt whole | {took * 1000:,.0f} ms "
            f"| {os.getloadavg()[0]:.1f} |"
        )
    # The client firsts: the handed-over clients' rows rewritten (what the refresh
    # adds to the client days' rewrite), then each kind's rebuilt whole.
    for kind in KINDS:
        for label, chosen in (("handed-over", ids[kind]), ("all", None)):
            start = time.perf_counter()
            with store.transaction():
                if chosen is None:
                    client_firsts.write(store, params, kind, None)
                else:
                    with _stage_ids(store, chosen):
                        client_firsts.write(store, params, kind, _IDS)
            took = time.perf_counter() - start
            print(
                f"| {store.dialect.name} | the {kind} firsts of {label} clients rewritten "
                f"| {took * 1000:,.0f} ms | {os.getloadavg()[0]:.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path)
    parser.add_argument("--pg-keep", type=Path)
    parser.add_argument("--pg-db", default="clients")
    parser.add_argument("--portal", type=Path)
    parser.add_argument("--share", type=float, default=0.01)
    args = parser.parse_args()
    print("| engine | step | wall | load |\n|---|---|---|---|")
    if args.pg_keep:
        with postgres(args.pg_keep, args.portal, args.pg_db) as url, open_store(url) as store:
            run(store, args.share)
        return
    with open_store(str(args.db)) as store:
        run(store, args.share)


if __name__ == "__main__":
    main()
