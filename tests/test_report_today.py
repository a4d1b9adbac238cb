"""The report's today is the portal's clock, never the machine's (issue 17, item 2).

The hand-made portal tests/fixtures/portals/blanks says ``now`` is
2026-10-20 12:00 Moscow time. Deal D6 was planned for 15 October (overdue
that day), D7 for 25 October (not yet). The machine's clock is moved with
time-machine: the report of the snapshot must not change.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import time_machine
from click.testing import CliRunner

from rop.cli import cli
from rop.report.build import build_report, drill
from rop.report.options import make_filter
from tests.fixtures.portals import load

# Machine dates around the portal's 20 October: before D7's plan, after it, months later.
MACHINE_DATES = (
    datetime(2026, 10, 21, 8, 0, tzinfo=UTC),
    datetime(2026, 10, 26, 23, 30, tzinfo=UTC),
    datetime(2027, 3, 1, 12, 0, tzinfo=UTC),
)


def cli_report(db: str, *args: str) -> dict:
    result = CliRunner().invoke(cli, ["report", "--db", db, "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("machine", MACHINE_DATES)
def test_a_snapshots_report_counts_from_the_portals_clock(tmp_path, machine):
    with time_machine.travel(machine, tick=False):
        db = str(tmp_path / "store.duckdb")
        load("blanks", db).close()
        report = cli_report(db)  # the default period: this month, on the portal's clock
    assert report["today"] == "2026-10-20"
    assert report["period"]["from"] == "2026-10-01" and report["period"]["to"] == "2026-10-31"
    assert report["total"]["figures"]["deals_overdue"] == 1  # D6, not D7
    assert report["data_as_of"] == "2026-10-20T09:00:00+00:00"  # the snapshot's, not the load's


def test_the_same_snapshot_gives_the_same_json_whatever_day_it_is_run(tmp_path):
    outputs = []
    for i, machine in enumerate(MACHINE_DATES):
        with time_machine.travel(machine, tick=False):
            db = str(tmp_path / f"store{i}.duckdb")
            load("blanks", db).close()
            for period in ((), ("--period", "last_7_days"), ("--period", "today")):
                outputs.append(
                    [cli_report(db, *period, "--by", by) for by in ("manager", "source")]
                )
    runs = [outputs[i : i + 3] for i in range(0, len(outputs), 3)]
    assert runs[0] == runs[1] == runs[2]


def test_today_pins_presets_and_overdue(tmp_path):
    db = str(tmp_path / "store.duckdb")
    load("blanks", db).close()
    report = cli_report(db, "--today", "2026-10-26")
    assert report["today"] == "2026-10-26"
    assert report["total"]["figures"]["deals_overdue"] == 2  # D6 and D7
    week = cli_report(db, "--today", "2026-11-03", "--period", "this_week")
    assert (week["period"]["from"], week["period"]["to"]) == ("2026-11-02", "2026-11-08")
    out = CliRunner().invoke(
        cli, ["drill", "--db", db, "--figure", "deals_overdue", "--today", "2026-10-26"]
    )
    assert out.exit_code == 0, out.output
    assert sorted(r["id"] for r in json.loads(out.output)["records"]) == [6, 7]
    bad = CliRunner().invoke(cli, ["report", "--db", db, "--today", "26.10.2026"])
    assert bad.exit_code == 2
    assert "--today" in bad.output and "Traceback" not in bad.output


def test_the_library_takes_today_from_one_place():
    store = load("blanks")
    with time_machine.travel(datetime(2031, 1, 1, tzinfo=UTC), tick=False):
        flt = make_filter(store, period="this_month")
        assert (flt.date_from, flt.date_to) == (date(2026, 10, 1), date(2026, 10, 31))
        assert build_report(store, flt)["total"]["figures"]["deals_overdue"] == 1
        listed = drill(store, flt, "deals_overdue")
        assert [r["id"] for r in listed["records"]] == [6] and listed["today"] == "2026-10-20"
    store.close()


def test_a_sync_remembers_the_portals_clock(tmp_path):
    """Through the emulator: the store keeps the time its replies carry."""
    from rop.bitrix.sync import run_sync
    from rop.emulator import EmulatorConfig, create_app, serve_in_thread
    from rop.store import open_store
    from rop.web.options import load_options
    from tests.fixtures.portals import PORTALS

    app = create_app(PORTALS / "blanks", EmulatorConfig(rate_limit=False))
    with (
        serve_in_thread(app, host="127.0.0.1", port=0) as base,
        open_store(tmp_path / "s.duckdb") as store,
    ):
        run_sync(store, f"{base}/rest/1/blanks/")
        clock = store.scalar("SELECT clock FROM portals")
        # The emulator's clock starts at portal.json's "now" and moves with real time.
        assert datetime(2026, 10, 20, 9, 0) <= clock < datetime(2026, 10, 20, 9, 10)
        flt = make_filter(store)
        assert flt.date_from == date(2026, 10, 1)
        report = build_report(store, flt, portal=None)
        assert report["today"] == "2026-10-20"
        assert report["total"]["figures"]["deals_overdue"] == 1
        # Empty values came over HTTP too, and read as none.
        by_source = build_report(store, make_filter(store, by="source"))
        assert {r["key"] for r in by_source["rows"]} == {"EMAIL", "CALL", "WEB", None}
        # The web's presets count from the same clock.
        assert load_options(store).today() == date(2026, 10, 20)


def test_a_today_out_of_range_is_one_line(tmp_path):
    db = str(tmp_path / "store.duckdb")
    load("blanks", db).close()
    bad = CliRunner().invoke(cli, ["report", "--db", db, "--today", "0001-01-01"])
    assert bad.exit_code == 2 and "--today" in bad.output and "Traceback" not in bad.output
