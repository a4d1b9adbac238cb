"""Time and peak memory of the demo portal generator, run in a child process.

    .venv/bin/python bench/bench_demo.py --deals 1000000

The generator runs in a subprocess so that ``ru_maxrss`` of RUSAGE_CHILDREN is
its own peak RSS, not this script's. The folder is deleted afterwards unless
``--keep`` is given. Record the figures in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = "import sys; from rop.demo.generator import generate; generate(sys.argv[1], seed=int(sys.argv[2]), deals=int(sys.argv[3]), months=int(sys.argv[4]))"


def _count(path: Path) -> int:
    """Records in a snapshot file without loading a big one."""
    if path.stat().st_size < 2**20:
        data = json.loads(path.read_text(encoding="utf-8"))
        return len(data) if isinstance(data, list) else 1
    # Streamed files hold one record per line between "[" and "]" (rop/demo/jsonfile.py).
    with path.open("rb") as f:
        return max(sum(1 for _ in f) - 2, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="folder to write (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="rop-demo-bench-"))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", _CHILD, str(out), str(args.seed), str(args.deals), str(args.months)],
        check=True,
    )
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = usage.ru_maxrss  # KiB on Linux
    files = {p.name: p for p in sorted(out.iterdir())}
    report = {
        "deals": args.deals,
        "months": args.months,
        "wall_seconds": round(wall, 1),
        # CPU time says more than wall time on a shared, noisy machine.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "total_mb": round(sum(p.stat().st_size for p in files.values()) / 2**20, 1),
        "records": {name: _count(p) for name, p in files.items() if name != "portal.json"},
    }
    print(json.dumps(report, indent=1, ensure_ascii=False))
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
