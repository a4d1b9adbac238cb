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
