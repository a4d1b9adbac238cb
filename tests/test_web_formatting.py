"""Numbers the way the page shows them (Russian by default)."""

from __future__ import annotations

from rop.web.formatting import delta, fmt_cell, fmt_value

NB = "\u00a0"


def test_russian_formats():
    assert fmt_value("amount", 1234567.4) == f"1{NB}234{NB}567{NB}₽"
    assert fmt_value("count", 1234) == f"1{NB}234"
    assert fmt_value("share", 0.42) == f"42{NB}%"
    assert fmt_value("days", 3.46) == f"3,5{NB}дн."
    assert fmt_value("seconds", 3725) == "1:02:05"
    assert fmt_value("seconds", 90061) == "25:01:01"  # hours do not wrap at a day
    for kind in ("amount", "count", "share", "days", "seconds"):
        assert fmt_value(kind, None) == "—"


def test_english_formats():
    assert fmt_value("amount", 1234567, "USD", "en") == "1,234,567 $"
    assert fmt_value("days", 3.46, lang="en") == "3.5 d"
    assert fmt_value("share", 0.425, lang="en") == "42%"


def test_delta_direction_and_colour():
    up = delta("deals_won", "count", 5, 3)
    assert up is not None and up.direction == "up" and up.good is True and up.text == "+2"
    assert up.previous == "3"
    worse = delta("deals_lost", "count", 5, 3)
    assert worse is not None and worse.good is False
    share = delta("deals_win_rate", "share", 0.5, 0.6)
    assert share is not None and share.text == f"\u221210{NB}п.п." and share.good is False
    assert delta("deals_won", "count", None, 3) is None
    flat = delta("deals_won", "count", 3, 3)
    assert flat is not None and flat.direction == "same"


def test_drill_cells():
    assert fmt_cell("datetime", "2026-10-05T10:00:00+03:00") == "05.10.2026 10:00"
    assert fmt_cell("date", "2026-10-25", lang="en") == "2026-10-25"
    assert fmt_cell("count", 12345, "id") == "12345"
    assert fmt_cell("bool", True) == "✓" and fmt_cell("bool", False) == ""
    assert fmt_cell("text", None) == "—"
    assert fmt_cell("text", "<b>") == "<b>"  # escaping is the template's job
