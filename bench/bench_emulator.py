"""Emulator speed at scale: snapshot load, keyset batches, counted pages.

    .venv/bin/python bench/bench_emulator.py --deals 1000000

Writes a synthetic snapshot (deals only, Bitrix24-shaped records) into a temp
folder, loads it with create_app, then times 50-command keyset batches (the
sync's export path) in-process and over real HTTP.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import httpx

from rop.emulator import EmulatorConfig, create_app, serve_in_thread


def deal(i: int) -> dict[str, object]:
    stage = ("NEW", "PREPARATION", "WON", "LOSE", "C1:NEW")[i % 5]
    return {
        "ID": str(i),
        "TITLE": f"Deal #{i}",
        "TYPE_ID": "SALE",
        "CATEGORY_ID": "1" if stage.startswith("C1") else "0",
        "STAGE_ID": stage,
        "STAGE_SEMANTIC_ID": {"WON": "S", "LOSE": "F"}.get(stage, "P"),
        "OPPORTUNITY": f"{i % 997 * 100}.00",
        "CURRENCY_ID": "RUB",
        "ASSIGNED_BY_ID": str(i % 40 + 1),
        "CREATED_BY_ID": "1",
        "MOVED_BY_ID": "1",
        "COMPANY_ID": str(i % 5000 + 1),
        "CONTACT_ID": None,
        "LEAD_ID": None,
        "SOURCE_ID": "WEB",
        "CLOSED": "N",
        "OPENED": "Y",
        "DATE_CREATE": "2026-01-15T10:00:00+03:00",
        "DATE_MODIFY": "2026-10-15T10:00:00+03:00",
        "MOVED_TIME": "2026-10-15T10:00:00+03:00",
        "BEGINDATE": "2026-01-15T00:00:00+03:00",
        "CLOSEDATE": "2026-12-01T00:00:00+03:00",
    }


def write(folder: Path, deals: int) -> None:
    (folder / "portal.json").write_text(
        json.dumps(
            {
                "domain": "bench.bitrix24.ru",
                "timezone": "Europe/Moscow",
                "admins": [1],
                "webhook": {"user_id": 1, "token": "bench"},
            }
        )
    )
    # 40 managers in one department: a non-admin webhook user sees only their
    # own deals (the default rule), so their lists are scoped.
    users = [{"ID": str(u), "ACTIVE": True, "UF_DEPARTMENT": [1]} for u in range(1, 41)]
    (folder / "user.get.json").write_text(json.dumps(users))
    (folder / "department.get.json").write_text(json.dumps([{"ID": "1", "NAME": "Sales"}]))
    with (folder / "crm.deal.list.json").open("w") as out:
        out.write("[")
        for i in range(1, deals + 1):
            if i > 1:
                out.write(",")
            out.write(json.dumps(deal(i)))
        out.write("]")


def keyset_batch(after: int, select: list[str]) -> dict[str, object]:
    fields = "".join(f"&select[{n}]={f}" for n, f in enumerate(select))
    cmd = {"c0": f"crm.deal.list?order[ID]=ASC&start=-1&filter[%3EID]={after}{fields}"}
    for k in range(1, 50):
        cmd[f"c{k}"] = (
            f"crm.deal.list?order[ID]=ASC&start=-1{fields}&filter[%3EID]=$result[c{k - 1}][49][ID]"
        )
    return {"halt": 0, "cmd": cmd}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        write(folder, args.deals)
        size = (folder / "crm.deal.list.json").stat().st_size
        print(f"wrote {args.deals} deals, {size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        app = create_app(folder, EmulatorConfig(rate_limit=False))
        load = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"create_app (snapshot load): {load:.1f} s, peak RSS {rss:.2f} GB")
        select = list(deal(1))  # every field, as the sync asks
        with serve_in_thread(app) as base, httpx.Client(timeout=60) as client:
            hook = f"{base}/rest/1/bench/"
            for label, after in (
                ("start", 0),
                ("middle", args.deals // 2),
                ("end", args.deals - 2600),
            ):
                times, processing = [], []
                for b in range(args.batches):
                    body = keyset_batch(after + b * 2500, select)
                    t = time.perf_counter()
                    reply = client.post(hook + "batch", json=body)
                    times.append(time.perf_counter() - t)
                    data = reply.json()
                    rows = sum(len(v) for v in data["result"]["result"].values())
                    assert rows == max(0, min(2500, args.deals - after - b * 2500)), rows
                    processing.append(data["time"]["processing"])
                times.sort()
                print(
                    f"keyset batch 50x50 rows at {label}: median {times[len(times) // 2] * 1000:.0f} ms, "
                    f"max {times[-1] * 1000:.0f} ms (simulated processing {processing[0] * 1000:.0f} ms)"
                )
            for start in (0, args.deals // 2):
                t = time.perf_counter()
                data = client.get(hook + f"crm.deal.list?select[]=ID&start={start}").json()
                print(
                    f"counted page start={start}: {(time.perf_counter() - t) * 1000:.0f} ms, "
                    f"total {data['total']}, processing {data['time']['processing'] * 1000:.0f} ms"
                )
            # What a viewer's scope computation asks (rop.bitrix.viewer_rights):
            # counts by responsible user, as an admin and as a plain manager.
            ids = "&".join(f"filter[@ID][]={i}" for i in range(7, args.deals, args.deals // 50))
            for label, url in (
                (
                    "ASSIGNED_BY_ID=7, admin",
                    f"{hook}crm.deal.list?select[]=ID&filter[ASSIGNED_BY_ID]=7",
                ),
                (
                    "@ASSIGNED_BY_ID=[3,7,9], admin",
                    f"{hook}crm.deal.list?select[]=ID&filter[@ASSIGNED_BY_ID][]=3"
                    "&filter[@ASSIGNED_BY_ID][]=7&filter[@ASSIGNED_BY_ID][]=9",
                ),
                (
                    "all deals as manager 7 (scoped)",
                    f"{base}/rest/7/bench/crm.deal.list?select[]=ID",
                ),
                ("@ID list of 50, admin", f"{hook}crm.deal.list?select[]=ID&{ids}"),
            ):
                t = time.perf_counter()
                data = client.get(url).json()
                print(
                    f"counted page {label}: {(time.perf_counter() - t) * 1000:.0f} ms, "
                    f"total {data['total']}, processing {data['time']['processing'] * 1000:.0f} ms"
                )


if __name__ == "__main__":
    main()
