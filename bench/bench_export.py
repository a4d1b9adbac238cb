"""Peak RSS and time of `rop serve` for one drill-down CSV, read by a streaming client.

Prints the size and a SHA-256 prefix, so a run before and after a change can be
compared byte for byte (docs/BENCHMARKS.md, "The drill-down CSV streams"):

    .venv/bin/python bench/bench_export.py COPY-OF-store-1m.duckdb
    PYTHONPATH=/tmp/main .venv/bin/python bench/bench_export.py COPY.duckdb  # main's rop/
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_web import start_server  # noqa: E402

PATH = "/drill.csv?period=custom&from=2025-01-01&to=2026-11-27&figure=calls_total"


def memory(pid: int) -> str:
    """The server's peak (VmHWM) and current (VmRSS) resident size, kB."""
    with open(f"/proc/{pid}/status") as status:
        lines = [line.split() for line in status if line.startswith(("VmHWM", "VmRSS"))]
    return " ".join(f"{name} {kb}" for name, kb, _ in lines)


def main() -> None:
    db = Path(sys.argv[1])
    path = sys.argv[2] if len(sys.argv) > 2 else PATH
    proc, url = start_server(db, 64)
    try:
        print("idle", memory(proc.pid), flush=True)
        with httpx.Client(base_url=url, timeout=900) as client:
            start = time.perf_counter()
            first, size, digest = None, 0, hashlib.sha256()
            with client.stream("GET", path) as got:
                for part in got.iter_bytes():
                    first = first or time.perf_counter() - start
                    size += len(part)
                    digest.update(part)
            total = time.perf_counter() - start
        print(got.status_code, f"first byte {first or 0:.1f} s, all {total:.1f} s,", size,
              "bytes, sha256", digest.hexdigest()[:16], memory(proc.pid), flush=True)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
