"""The page's report on a kept PostgreSQL cluster: wall, this process's CPU and the
server backend's CPU per report (the CPU columns hold on a loaded box, the wall does not).

Not a test. Usage (a cluster kept by bench/bench_pg.py --keep DIR):
    .venv/bin/python bench/bench_pg_page.py DIR bench_10000 40 [page|ytd|full|noclients]

``ROP_BENCH_ROOT`` puts another rop first (main's, from `git archive main`, for a
before/after run alternating processes). Runs 7 reports to warm up (prepared
statements, generic plans), then N, and prints one line: the first report, the
median and best wall, and the mean CPU per report of this process and of the
backend (read from /proc: run as root or as the server's user).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("ROP_BENCH_ROOT") or str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from rop.report.build import build_report  # noqa: E402
from rop.report.filter import SECTIONS, ReportFilter  # noqa: E402
from rop.store import open_store  # noqa: E402
from tests.pg import APP, start_cluster  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) the server process ``pid`` used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> None:
    keep, db, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    what = sys.argv[4] if len(sys.argv) > 4 else "page"
    with (
        start_cluster(keep, "-c shared_buffers=1GB -c work_mem=64MB") as cluster,
        open_store(cluster.url(db, APP)) as store,
    ):
        store.use_portal(str(store.scalar("SELECT portal FROM portals LIMIT 1")))
        last = store.scalar("SELECT max(date_create) FROM deals").date()
        flt = ReportFilter(last.replace(day=1), last)
        if what == "ytd":
            flt = ReportFilter(last.replace(month=1, day=1), last)
        if what == "noclients":
            kept = tuple(s for s in SECTIONS if s not in ("companies", "contacts"))
            flt = ReportFilter(last.replace(day=1), last, sections=kept)
        stages = what == "full"
        pid = store.conn.info.backend_pid  # type: ignore[attr-defined]
        start = time.perf_counter()
        build_report(store, flt, stages=stages)
        first = time.perf_counter() - start
        for _ in range(6):
            build_report(store, flt, stages=stages)
        walls = []
        server, client = backend_cpu(pid), time.process_time()
        for _ in range(n):
            start = time.perf_counter()
            build_report(store, flt, stages=stages)
            walls.append(time.perf_counter() - start)
        client = time.process_time() - client
        server = backend_cpu(pid) - server
        print(
            f"{what} first {first * 1000:.0f} ms | median {statistics.median(walls) * 1000:.1f} ms"
            f" | best {min(walls) * 1000:.1f} ms | client CPU {client / n * 1000:.1f} ms"
            f" | backend CPU {server / n * 1000:.1f} ms per report"
            f" | load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
