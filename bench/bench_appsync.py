"""App mode's costs against the emulator (not a test): viewer scope, by-ID sync, events.

    .venv/bin/python bench/bench_appsync.py --deals 1000000 --managers 300 \
        --json /tmp/bench_appsync.json

1. **Scope on first open**: a synthetic portal (``--managers`` users in
   departments of 10 with a head each, ``--deals`` deals round-robin over
   them, a tenth as many leads, companies, contacts and calls) is loaded
   into a store and served by ``rop emulate --oauth`` (Bitrix24's standard
   limits: 2 req/s, burst 50, simulated processing) in its own process. For
   an administrator, a department head and a manager: the wall time and
   REST requests of working out the grant with the viewer's own token
   (rop.bitrix.viewer_rights), the time of the cached lookup after it, and
   a year report for that viewer over the granted scope.
2. **REST requests per 100 changed deals**: 100 deals changed through the
   test API, then the by-ID sync (rop.bitrix.sync_ids) of those IDs.
3. **Change to report**: a small portal in-process with the app installed,
   online events delivered to a handler built from the library (the same
   pieces the app's route wires: receive_event -> EventQueue -> by-ID sync),
   or the offline queue drained; the time from the test API's change to a
   report whose figure shows it. The web routes are not part of this (they
   are engineer appmode's); the page adds one cached report build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from rop.bitrix.changes import Changes
from rop.bitrix.snapshot import load_snapshot
from rop.bitrix.sync_ids import run_sync_changes
from rop.bitrix.viewer_rights import GrantCache, GrantStats, refresh_grant
from rop.demo.jsonfile import ArrayWriter
from rop.report.build import build_report
from rop.report.filter import ReportFilter
from rop.store.db import open_store

ROP = str(Path(sys.executable).parent / "rop")
DOMAIN = "bench.bitrix24.ru"
TOKEN = "benchtoken"


# -- 1. a synthetic portal ----------------------------------------------------


def write_portal(folder: Path, deals: int, managers: int) -> dict[str, Any]:
    """Users 1 (admin, head of the root) and 2..managers+1 in departments of 10."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "portal.json").write_text(
        json.dumps(
            {
                "domain": DOMAIN,
                "timezone": "Europe/Moscow",
                "base_currency": "RUB",
                "admins": [1],
                "webhook": {"user_id": 1, "token": TOKEN},
                "now": "2026-11-27T12:00:00+03:00",
            }
        )
    )
    owners = list(range(2, managers + 2))
    departments = [{"ID": "1", "NAME": "HQ", "SORT": 100, "UF_HEAD": "1"}]
    users = [{"ID": "1", "ACTIVE": True, "NAME": "Admin", "UF_DEPARTMENT": [1]}]
    for n, start in enumerate(range(0, len(owners), 10)):
        dept = n + 2
        members = owners[start : start + 10]
        departments.append(
            {"ID": str(dept), "NAME": f"Team {n}", "SORT": 100, "PARENT": "1",
             "UF_HEAD": str(members[0])}
        )  # fmt: skip
        users += [
            {"ID": str(u), "ACTIVE": True, "NAME": f"M{u}", "UF_DEPARTMENT": [dept]}
            for u in members
        ]
    (folder / "user.get.json").write_text(json.dumps(users))
    (folder / "department.get.json").write_text(json.dumps(departments))
    (folder / "crm.category.list.json").write_text(
        json.dumps([{"id": 0, "name": "General", "sort": 100, "isDefault": "Y"}])
    )
    (folder / "crm.currency.list.json").write_text(
        json.dumps([{"CURRENCY": "RUB", "AMOUNT_CNT": 1, "AMOUNT": "1", "BASE": "Y"}])
    )

    def owner(i: int) -> int:
        return owners[i % len(owners)]

    def day(i: int) -> str:
        return f"2026-{i % 11 + 1:02d}-{i % 28 + 1:02d}T10:00:00+03:00"

    stages = ("NEW", "PREPARATION", "WON", "LOSE")
    with closing(ArrayWriter(folder / "crm.deal.list.json")) as out:
        for i in range(1, deals + 1):
            stage = stages[i % 4]
            out.add_raw(
                f'{{"ID":"{i}","TITLE":"Deal {i}","CATEGORY_ID":"0","STAGE_ID":"{stage}",'
                f'"STAGE_SEMANTIC_ID":"{ {"WON": "S", "LOSE": "F"}.get(stage, "P") }",'
                f'"OPPORTUNITY":"{i % 997 * 100}.00","CURRENCY_ID":"RUB",'
                f'"ASSIGNED_BY_ID":"{owner(i)}","COMPANY_ID":"{i % (deals // 10 + 1) + 1}",'
                f'"OPENED":"{"Y" if i % 3 else "N"}","DATE_CREATE":"{day(i)}",'
                f'"DATE_MODIFY":"{day(i)}","CLOSEDATE":"2026-12-01T00:00:00+03:00"}}'
            )
    with closing(ArrayWriter(folder / "crm.stagehistory.list.2.json")) as out:
        for i in range(1, deals + 1):
            out.add_raw(
                f'{{"ID":{i},"TYPE_ID":1,"OWNER_ID":{i},"CREATED_TIME":"{day(i)}",'
                f'"CATEGORY_ID":0,"STAGE_SEMANTIC_ID":"P","STAGE_ID":"NEW"}}'
            )
    small = max(1, deals // 10)
    for name, make in (
        ("crm.lead.list.json", lambda i: {"ID": str(i), "TITLE": f"Lead {i}",
                                           "STATUS_ID": "NEW", "ASSIGNED_BY_ID": str(owner(i)),
                                           "DATE_CREATE": day(i)}),
        ("crm.company.list.json", lambda i: {"ID": str(i), "TITLE": f"Co {i}",
                                              "ASSIGNED_BY_ID": str(owner(i)),
                                              "DATE_CREATE": day(i)}),
        ("crm.contact.list.json", lambda i: {"ID": str(i), "NAME": f"C {i}",
                                              "ASSIGNED_BY_ID": str(owner(i)),
                                              "DATE_CREATE": day(i)}),
        ("voximplant.statistic.get.json", lambda i: {"ID": str(i), "CALL_ID": f"c{i}",
                                                      "PORTAL_USER_ID": str(owner(i)),
                                                      "CALL_TYPE": "1", "CALL_DURATION": "60",
                                                      "CALL_START_DATE": day(i),
                                                      "CALL_FAILED_CODE": "200"}),
    ):  # fmt: skip
        with closing(ArrayWriter(folder / name)) as out:
            for i in range(1, small + 1):
                out.add(make(i))
    head = departments[1]["UF_HEAD"]
    return {"admin": 1, "head": int(str(head)), "manager": owners[1]}


class Emulator:
    """``rop emulate`` in a child process, standard limits, OAuth and the test API."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen(
            [ROP, "emulate", "--portal", str(folder), "--port", "0", "--oauth", "--test-api"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.webhook = self.proc.stdout.readline().strip()
        if not self.webhook.startswith("http"):
            raise RuntimeError("the emulator did not start")
        self.origin = self.webhook.split("/rest/", 1)[0]

    def provider(self, user: int) -> Any:
        tokens = httpx.post(f"{self.origin}/_emulator/oauth/issue", json={"user_id": user}).json()

        async def provide(refresh: bool) -> str:
            return str(tokens["access_token"])

        return provide

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def year(viewer: int) -> ReportFilter:
    return ReportFilter(
        date(2026, 1, 1), date(2026, 11, 27), viewer=viewer, today=date(2026, 11, 27)
    )


def bench_scope(deals: int, managers: int, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"deals": deals, "managers": managers}
    t = time.perf_counter()
    viewers = write_portal(tmp / "portal", deals, managers)
    out["generate_s"] = round(time.perf_counter() - t, 1)
    store = open_store(tmp / "rop.duckdb")
    t = time.perf_counter()
    load_snapshot(store, tmp / "portal")
    out["load_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    emu = Emulator(tmp / "portal")
    out["emulator_start_s"] = round(time.perf_counter() - t, 1)
    try:
        for role, viewer in viewers.items():
            # The bucket refills between viewers, as between two people's first opens.
            time.sleep(2)
            stats = GrantStats()
            started = time.perf_counter()
            refresh_grant(store, emu.origin + "/rest/", DOMAIN, viewer, emu.provider(viewer),
                          stats=stats)  # fmt: skip
            first = time.perf_counter() - started
            cache = GrantCache(store, lambda p, v: None, ttl=600)
            started = time.perf_counter()
            state = cache.ensure(DOMAIN, viewer)
            cached = time.perf_counter() - started
            started = time.perf_counter()
            report = build_report(store, year(viewer), portal=DOMAIN)
            built = time.perf_counter() - started
            out[role] = {
                "viewer": viewer,
                "first_open_s": round(first, 3),
                "our_side_s": round(stats.local_seconds, 3),
                "requests": stats.requests,
                "count_commands": stats.counts,
                "partial_users": stats.partial_users,
                "cached_lookup_ms": round(cached * 1000, 2),
                "cached_state": state,
                "report_s": round(built, 3),
                "rows": len(report["rows"]),
                "deals_new": report["total"]["figures"].get("deals_new"),
            }
            print(role, out[role], flush=True)
        # 2. REST requests per 100 changed deals.
        changes = Changes()
        for rid in range(1000, 1100):
            httpx.post(
                f"{emu.origin}/_emulator/deal/update",
                json={"id": rid, "fields": {"TITLE": f"changed {rid}", "STAGE_ID": "WON"}},
            ).raise_for_status()
            changes.change("deals", rid)
        time.sleep(2)
        started = time.perf_counter()
        result = run_sync_changes(store, emu.webhook, changes, portal=DOMAIN)
        out["by_id_100_deals"] = {
            "requests": result.requests,
            "seconds": round(time.perf_counter() - started, 3),
            "counts": result.counts.get("deals"),
        }
        print("by-id", out["by_id_100_deals"], flush=True)
    finally:
        emu.stop()
        store.close()
    return out


def bench_local(deals: int, managers: int, tmp: Path) -> dict[str, Any]:
    """Our own share of a first open at scale, without a portal to ask.

    What compute_grant does besides waiting for Bitrix24 (the store's counts
    per responsible user, the head-of-department guess, saving the grant),
    and a year report over a saved grant: a department head (their team in
    full) and a manager who also sees every third deal of one other team one
    by one (the "open records" shape).
    """
    from rop.bitrix.viewer_rights import _expected_users, _first_departments, _store_counts
    from rop.store.grants import GRANT_ENTITIES, EntityGrant, Grant, save_grant

    out: dict[str, Any] = {"deals": deals, "managers": managers}
    t = time.perf_counter()
    viewers = write_portal(tmp / "portal", deals, managers)
    out["generate_s"] = round(time.perf_counter() - t, 1)
    store = open_store(tmp / "local.duckdb")
    t = time.perf_counter()
    load_snapshot(store, tmp / "portal")
    out["load_s"] = round(time.perf_counter() - t, 1)
    head, manager = viewers["head"], viewers["manager"]
    for role, viewer in (("head", head), ("manager", manager)):
        t = time.perf_counter()
        _store_counts(store, DOMAIN)
        team = _expected_users(store, DOMAIN, viewer)
        _first_departments(store, DOMAIN)
        local = time.perf_counter() - t
        full = team if role == "head" else {viewer}
        records: frozenset[int] = frozenset()
        if role == "manager":
            other = {
                int(u)
                for (u,) in store.query(
                    "SELECT id FROM users WHERE portal = ? AND department_id = 3", [DOMAIN]
                )
            }
            records = frozenset(
                int(i)
                for (i,) in store.query(
                    "SELECT id FROM deals WHERE portal = ? AND opened AND "
                    "assigned_by_id IN (SELECT unnest(?))",
                    [DOMAIN, sorted(other)],
                )
            )
        grant = Grant(
            {
                e: EntityGrant(False, frozenset(full), records if e == "deal" else frozenset())
                for e in GRANT_ENTITIES
            }
        )
        t = time.perf_counter()
        save_grant(store, DOMAIN, viewer, grant)
        saved = time.perf_counter() - t
        timings = []
        for _ in range(3):
            t = time.perf_counter()
            report = build_report(store, year(viewer), portal=DOMAIN)
            timings.append(time.perf_counter() - t)
        out[role] = {
            "viewer": viewer,
            "store_side_s": round(local, 3),
            "granted_records": len(records),
            "save_grant_s": round(saved, 3),
            "report_s_cold_warm": [round(x, 3) for x in timings],
            "rows": len(report["rows"]),
            "deals_new": report["total"]["figures"].get("deals_new"),
        }  # fmt: skip
        print(role, out[role], flush=True)
    store.close()
    return out


# -- 3. change to report ------------------------------------------------------


def bench_events(tmp: Path, rounds: int) -> dict[str, Any]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from rop.bitrix.event_queue import EventQueue
    from rop.bitrix.events import BOUND_EVENTS, EventRejected, ReplayGuard, receive_event
    from rop.bitrix.offline import run_drain_offline
    from rop.bitrix.sync import run_sync
    from rop.emulator import EmulatorConfig, create_app, serve_in_thread
    from rop.emulator.config import AppSettings

    write_portal(tmp / "small", 20_000, 30)
    settings = AppSettings(client_id="local.bench.app", client_secret="s", handler="http://x/")
    app = create_app(tmp / "small", EmulatorConfig(test_api=True, app=settings))
    store = open_store(tmp / "events.duckdb")
    result: dict[str, Any] = {"deals": 20_000}
    with serve_in_thread(app) as base:
        httpx.post(f"{base}/_emulator/app/install", json={"user_id": 1})
        admin = app.state.engine.host.issue(1)
        httpx.post(f"{base}/_emulator/app/finish", json={})
        key = base.split("://", 1)[1]

        async def provide(refresh: bool) -> str:
            return str(admin["access_token"])

        rest = base + "/rest/"
        run_sync(store, rest, token_provider=provide)
        guard = ReplayGuard()
        lock = threading.Lock()
        queue = EventQueue(
            lambda portal, changes: run_sync_changes(
                store.cursor(), rest, changes, portal=portal, token_provider=provide
            ),
            settle_seconds=0.2,
            lock=lock,
        )

        def installed(member: str) -> tuple[str, str] | None:
            mine = admin["member_id"]
            return (mine, app.state.engine.host.app.application_token) if member == mine else None

        async def route(request: Request) -> Response:
            try:
                event = receive_event(await request.body(), installed, guard)
            except EventRejected as exc:
                return PlainTextResponse(str(exc), status_code=exc.status)
            if event.supported:
                queue.put(key, event.changes())
            return PlainTextResponse("ok")

        def won() -> int:
            flt = ReportFilter(date(2026, 1, 1), date(2026, 12, 31), today=date(2026, 11, 27))
            figures = build_report(store.cursor(), flt, portal=key)["total"]["figures"]
            return int(figures["deals_won"])

        def call(method: str, **params: Any) -> Any:
            return httpx.post(
                f"{base}/rest/{method}", json={**params, "auth": admin["access_token"]}
            ).json()

        handler = Starlette(routes=[Route("/events", route, methods=["POST"])])
        queue.start()
        online: list[float] = []
        try:
            with serve_in_thread(handler) as hbase:
                for name in BOUND_EVENTS:
                    call("event.bind", event=name, handler=f"{hbase}/events")
                for n in range(rounds):
                    before = won()
                    rid = 1 + 4 * n  # stage NEW: moving it to WON adds one won deal
                    started = time.perf_counter()
                    httpx.post(
                        f"{base}/_emulator/deal/update",
                        json={"id": rid, "fields": {"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S",
                                                    "CLOSEDATE": "2026-11-20T00:00:00+03:00"}},
                    )  # fmt: skip
                    while won() == before:
                        time.sleep(0.02)
                    online.append(time.perf_counter() - started)
        finally:
            queue.stop()
        for name in BOUND_EVENTS:
            call("event.bind", event=name, event_type="offline")
        offline: list[float] = []
        for n in range(rounds):
            before = won()
            rid = 1 + 4 * (n + rounds)
            started = time.perf_counter()
            httpx.post(
                f"{base}/_emulator/deal/update",
                json={"id": rid, "fields": {"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S",
                                            "CLOSEDATE": "2026-11-20T00:00:00+03:00"}},
            )  # fmt: skip
            # A poller that asks the queue once a second (the offline mode's design).
            while True:
                run_drain_offline(store, rest, portal=key, token_provider=provide)
                if won() != before:
                    break
                time.sleep(1.0)
            offline.append(time.perf_counter() - started)
    store.close()
    result["online_s"] = [round(x, 3) for x in online]
    result["offline_s"] = [round(x, 3) for x in offline]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--managers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-scope", action="store_true")
    parser.add_argument("--skip-events", action="store_true")
    parser.add_argument("--local-only", action="store_true", help="our share at scale, no portal")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.local_only:
            out["local"] = bench_local(args.deals, args.managers, Path(tmp))
            args.skip_scope = args.skip_events = True
        if not args.skip_scope:
            out["scope"] = bench_scope(args.deals, args.managers, Path(tmp))
        if not args.skip_events:
            out["events"] = bench_events(Path(tmp), args.rounds)
            print("events", out["events"], flush=True)
    out["load_after"] = os.getloadavg()
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
