"""Where a whole sync's memory goes: ``rop sync`` run in-process against
``rop emulate --portal``, with the process's RSS, the sync's phase, glibc's
arenas, Python's blocks and DuckDB's ``duckdb_memory()`` sampled every second.

    python bench/probe_sync_memory.py --portal /work/bench-data/portal-100000-24m \
        --out /tmp/probe.tsv

The figures are the probe's own process (the sync runs in it, as ``rop sync``
does in its own), so they include this script's few MB. A diagnostic, not a
timing bench: the sampling costs a little CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rop.bitrix import sync as sync_mod
from rop.bitrix.progress import ConsoleProgress
from rop.store import facts as facts_mod
from rop.store.db import open_store

ROP = str(Path(sys.executable).parent / "rop")
PHASE = ["start"]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            [
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            ]
        )
    ]


def _glibc_mb() -> tuple[float, float]:
    """(arena bytes from the system incl. mmapped, in use) in MB."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return (info.arena + info.hblkhd) / 2**20, (info.uordblks + info.hblkhd) / 2**20


def _phased(name: str, fn: Any) -> Any:
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        PHASE[0] = name
        return await fn(*args, **kwargs)

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portal", type=Path, required=True)
    parser.add_argument("--db", type=Path, help="store file (default: a new one beside --out)")
    parser.add_argument("--out", type=Path, required=True, help="TSV of the samples")
    parser.add_argument("--limit", default=os.environ.get("ROP_SYNC_MEMORY_LIMIT", "160MB"))
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--alone", action="store_true", help="as `rop sync` runs it")
    args = parser.parse_args()
    db = args.db or args.out.with_suffix(".duckdb")
    for stale in (db, Path(f"{db}.wal")):
        stale.unlink(missing_ok=True)

    started = time.perf_counter()
    emu = subprocess.Popen(
        [ROP, "emulate", "--portal", str(args.portal), "--port", "0", "--test-api"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert emu.stdout is not None
    webhook = emu.stdout.readline().strip()
    print(f"emulator up in {time.perf_counter() - started:.0f} s", flush=True)

    # Phases: the engine's steps and each whole-rebuild step (facts._step).
    sync_mod._Engine.directories = _phased("directories", sync_mod._Engine.directories)  # type: ignore[method-assign]
    sync_mod._Engine.big_entities = _phased("copy", sync_mod._Engine.big_entities)  # type: ignore[method-assign]
    sync_mod._Engine.deletions = _phased("deletions", sync_mod._Engine.deletions)  # type: ignore[method-assign]
    step = facts_mod._step

    @contextlib.contextmanager
    def named(name: str) -> Iterator[None]:
        PHASE[0] = f"rebuild {name}"
        with step(name):
            yield

    facts_mod._step = named  # type: ignore[assignment]
    refresh = facts_mod.refresh_facts

    def refreshing(*a: Any, **k: Any) -> Any:
        PHASE[0] = "refresh"
        try:
            return refresh(*a, **k)
        finally:
            PHASE[0] = "after refresh"

    sync_mod.refresh_facts = refreshing  # type: ignore[assignment]

    store = open_store(db)
    store.bound(args.limit, 0)
    spy = store.cursor()
    spied = store.conn
    stop = threading.Event()
    t0 = time.perf_counter()
    with args.out.open("w") as out:
        out.write("t\trss_mb\tphase\tglibc_mb\tglibc_used_mb\tpy_blocks\tduck_mb\tduck_top\n")

        def sample() -> None:
            nonlocal spy, spied
            while not stop.wait(args.every):
                if store.conn is not spied:
                    # The sync reopened the store (``alone``): a cursor of the old
                    # connection would keep its instance, and its memory, alive.
                    spy.close()
                    spied = store.conn
                    spy = store.cursor()
                try:
                    tags = spy.query(
                        "SELECT tag, memory_usage_bytes FROM duckdb_memory() "
                        "WHERE memory_usage_bytes > 0 ORDER BY 2 DESC"
                    )
                except Exception as exc:  # noqa: BLE001 - a probe keeps sampling
                    tags = [(f"error {exc!r}"[:40], 0)]
                duck = sum(int(b) for _, b in tags) / 2**20
                top = ",".join(f"{t}={int(b) / 2**20:.0f}" for t, b in tags[:4])
                arena, used = _glibc_mb()
                out.write(
                    f"{time.perf_counter() - t0:.0f}\t{_rss_mb():.0f}\t{PHASE[0]}\t{arena:.0f}"
                    f"\t{used:.0f}\t{sys.getallocatedblocks()}\t{duck:.0f}\t{top}\n"
                )
                out.flush()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            with ConsoleProgress() as progress:
                result = sync_mod.run_sync(store, webhook, progress=progress, alone=args.alone)
        finally:
            stop.set()
            sampler.join()
            emu.kill()
            emu.wait()
    spy.close()
    store.close()
    for line in result.summary_lines():
        print(line)
    print(f"wall {time.perf_counter() - t0:.1f} s, {result.requests} requests")


if __name__ == "__main__":
    main()
