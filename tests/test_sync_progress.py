"""Progress display: plain log lines off a terminal, rich bars on one."""

from __future__ import annotations

import io

from rop.bitrix.progress import ConsoleProgress


def test_plain_lines_show_rows_and_finish() -> None:
    out = io.StringIO()
    with ConsoleProgress(out, tty=False) as progress:
        progress("deals", 0, 5000)
        progress("deals", 2500, 5000)  # within LOG_EVERY_SECONDS of the first: skipped
        progress("deals", 5000, 5000)  # finished: always shown
        progress("calls", 10, None)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("sync deals: 0/5000 rows")
    assert lines[1].startswith("sync deals: 5000/5000 rows")
    assert lines[2].startswith("sync calls: 10 rows")
    assert len(lines) == 3


def test_terminal_shows_a_bar_per_entity() -> None:
    out = io.StringIO()
    with ConsoleProgress(out, tty=True) as progress:
        progress("deals", 2500, 5000)
        progress("leads", 10, None)
        progress("deals", 5000, 5000)
    text = out.getvalue()
    assert "deals" in text and "leads" in text and "5000/5000" in text


def test_a_resumed_run_counts_only_its_own_rows_per_second() -> None:
    # Issue 9: a resumed sync's first report carried 2.5M rows copied before,
    # over a near-zero time, and printed "2,500,000,000 rows/s".
    now = [100.0]
    out = io.StringIO()
    with ConsoleProgress(out, tty=False, clock=lambda: now[0]) as progress:
        progress("deals", 2_500_000, 5_000_000)
        now[0] += 0.001
        progress("deals", 2_500_100, 5_000_000)  # too soon to say: "-", and not logged
        now[0] += 9.999
        progress("deals", 2_505_000, 5_000_000)  # 5,000 rows in 10 s
        now[0] += 10.0
        progress("deals", 5_000_000, 5_000_000)
    lines = out.getvalue().splitlines()
    assert lines[0] == "sync deals: 2500000/5000000 rows (- rows/s)"
    assert lines[1] == "sync deals: 2505000/5000000 rows (500 rows/s)"
    assert "2,500,000,000" not in out.getvalue()
    assert lines[2] == "sync deals: 5000000/5000000 rows (125,000 rows/s)"
