"""Fair comparison (issue 15): a period that has not ended against the same days before.

Unit cases pin rop.report.periods.comparison_period's edge cases
(docs/METRICS_DECISIONS.md "Previous period of a period not yet over"); the
rest runs the report on a copy of the hand-made portal tests/fixtures/portals/blanks
(the portal's clock: 2026-10-20) with two September deals added, one before the
20th and one after, through the library, the CLI, the web's JSON twin and the
exports, with the machine's clock moved (time-machine) to show "today" is the
portal's.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pytest
import time_machine
from click.testing import CliRunner

from rop.bitrix.snapshot import load_snapshot
from rop.cli import cli
from rop.config import Settings
from rop.report.build import build_report
from rop.report.export import report_to_csv, report_to_xlsx
from rop.report.filter import ReportFilter, ReportInputError
from rop.report.options import make_filter
from rop.report.periods import comparison_period, previous_period, resolve_period
from rop.store import open_store
from rop.web import create_app
from tests.fixtures.portals import PORTALS
from tests.web_client import page_client

D = date


def cmp(start: date, end: date, today: date, mode: str = "to_date") -> tuple:
    c = comparison_period(start, end, today, mode)
    return (c.date_from, c.date_to), (c.current_from, c.current_to), c.ongoing


@pytest.mark.parametrize(
    ("preset", "today", "previous", "current"),
    [
        # 28 November: 1-28 November against 1-28 October.
        ("this_month", D(2026, 11, 28), (D(2026, 10, 1), D(2026, 10, 28)), D(2026, 11, 28)),
        # 30 March: February has no 29-30; it never runs past its own end.
        ("this_month", D(2026, 3, 30), (D(2026, 2, 1), D(2026, 2, 28)), D(2026, 3, 30)),
        ("this_month", D(2026, 3, 29), (D(2026, 2, 1), D(2026, 2, 28)), D(2026, 3, 29)),
        # A leap year's 28 February: 1-28 February 2028 against 1-28 January.
        ("this_month", D(2028, 2, 28), (D(2028, 1, 1), D(2028, 1, 28)), D(2028, 2, 28)),
        # 29 February 2028 to date, against the year before that has no 29th.
        ("this_year", D(2028, 2, 29), (D(2027, 1, 1), D(2027, 2, 28)), D(2028, 2, 29)),
        # 1 March 2029: the same calendar stretch, even if the year before had a 29th.
        ("this_year", D(2029, 3, 1), (D(2028, 1, 1), D(2028, 3, 1)), D(2029, 3, 1)),
        # A quarter keeps the day of the month: 1 Oct-30 Nov against 1 Jul-30 Aug.
        ("this_quarter", D(2026, 11, 30), (D(2026, 7, 1), D(2026, 8, 30)), D(2026, 11, 30)),
        ("this_quarter", D(2026, 5, 31), (D(2026, 1, 1), D(2026, 2, 28)), D(2026, 5, 31)),
        ("this_year", D(2026, 11, 28), (D(2025, 1, 1), D(2025, 11, 28)), D(2026, 11, 28)),
        # A week: Monday-Thursday against the Monday-Thursday before.
        ("this_week", D(2026, 11, 26), (D(2026, 11, 16), D(2026, 11, 19)), D(2026, 11, 26)),
        # The first day: one day against one day.
        ("this_month", D(2026, 11, 1), (D(2026, 10, 1), D(2026, 10, 1)), D(2026, 11, 1)),
    ],
)
def test_a_period_not_over_compares_its_days_so_far(preset, today, previous, current):
    start, end = resolve_period(preset, today)
    assert cmp(start, end, today) == (previous, (start, current), True)
    # The option: the whole previous period, the same as before issue 15.
    full = comparison_period(start, end, today, "full")
    assert (full.date_from, full.date_to) == previous_period(start, end)
    assert (full.current_from, full.current_to, full.ongoing) == (start, end, True)


@pytest.mark.parametrize(
    ("start", "end", "today"),
    [
        (D(2026, 10, 1), D(2026, 10, 31), D(2026, 11, 28)),  # last month: over
        (D(2026, 11, 1), D(2026, 11, 30), D(2026, 11, 30)),  # ends today: whole days
        (D(2026, 3, 1), D(2026, 3, 31), D(2026, 3, 31)),  # 31 March: all of February
        (D(2028, 2, 1), D(2028, 2, 29), D(2028, 2, 29)),  # the leap day: all of January
        (D(2026, 11, 22), D(2026, 11, 28), D(2026, 11, 28)),  # last 7 days end today
        (D(2026, 12, 1), D(2026, 12, 31), D(2026, 11, 28)),  # not started yet
    ],
)
def test_a_period_over_or_not_started_compares_in_full(start, end, today):
    assert cmp(start, end, today) == (previous_period(start, end), (start, end), False)


def test_custom_days_not_over_count_the_same_days_from_the_previous_start():
    # 5-20 November on the 10th: the 16 days before are 20 October-4 November,
    # and its first 6 days are 20-25 October.
    assert cmp(D(2026, 11, 5), D(2026, 11, 20), D(2026, 11, 10)) == (
        (D(2026, 10, 20), D(2026, 10, 25)),
        (D(2026, 11, 5), D(2026, 11, 10)),
        True,
    )


def test_an_unknown_mode_is_refused():
    with pytest.raises(ReportInputError, match="unknown comparison 'half'"):
        comparison_period(D(2026, 11, 1), D(2026, 11, 30), D(2026, 11, 28), "half")
    with pytest.raises(ReportInputError, match="to_date, full"):
        ReportFilter(D(2026, 11, 1), D(2026, 11, 30), previous="half").validate()


# The hand-made portal (today 20 October 2026) with two September deals of
# manager 2: one created on 5 September (inside 1-20 September), one on 25th.
SEPTEMBER = [
    {"ID": "101", "TITLE": "Early September", "DATE_CREATE": "2026-09-05T10:00:00+03:00"},
    {"ID": "102", "TITLE": "Late September", "DATE_CREATE": "2026-09-25T10:00:00+03:00"},
]


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("compare") / "portal"
    shutil.copytree(PORTALS / "blanks", folder)
    deals = json.loads((folder / "crm.deal.list.json").read_text())
    template = next(d for d in deals if d["ID"] == "1")
    for extra in SEPTEMBER:
        deals.append({**template, **extra, "DATE_MODIFY": extra["DATE_CREATE"]})
    (folder / "crm.deal.list.json").write_text(json.dumps(deals, ensure_ascii=False))
    return folder


@pytest.fixture(scope="module")
def db(portal_dir, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("compare-db") / "store.duckdb")
    with open_store(path) as store:
        load_snapshot(store, portal_dir)
    return path


def _prev(report: dict) -> tuple[dict, int, int]:
    prev = report["previous"]
    row = next(r for r in prev["rows"] if r["user_id"] == 2)
    return prev["period"], row["figures"]["deals_new"], prev["total"]["figures"]["deals_new"]


@pytest.mark.parametrize("machine", [datetime(2026, 11, 29, tzinfo=UTC), datetime(2027, 2, 1)])
def test_this_month_against_the_same_days_of_september(db, machine):
    with time_machine.travel(machine, tick=False), open_store(db) as store:
        report = build_report(store, make_filter(store, period="this_month"))
        period, row, total = _prev(report)
        assert (period["from"], period["to"], period["mode"]) == (
            "2026-09-01",
            "2026-09-20",
            "to_date",
        )
        assert period["ongoing"] is True
        assert period["current"] == {"from": "2026-10-01", "to": "2026-10-20"}
        assert (row, total) == (1, 1)  # only the 5 September deal
        full = build_report(store, make_filter(store, period="this_month", previous="full"))
        period, row, total = _prev(full)
        assert (period["from"], period["to"], period["mode"]) == (
            "2026-09-01",
            "2026-09-30",
            "full",
        )
        assert period["ongoing"] is True and (row, total) == (2, 2)
        assert full["filter"]["previous"] == "full" and report["filter"]["previous"] == "to_date"
        # A month that is over compares in full whatever the mode.
        past = build_report(store, make_filter(store, date_from="2026-10-01", date_to="2026-10-31",
                                               today="2026-11-02"))  # fmt: skip
        assert _prev(past)[0]["to"] == "2026-09-30" and _prev(past)[2] == 2


def test_the_cli_takes_previous_full_and_refuses_a_bad_mode(db):
    def run(*args: str):
        return CliRunner().invoke(cli, ["report", "--db", db, "--format", "json", *args])

    same = json.loads(run("--period", "this_month").output)
    full = json.loads(run("--period", "this_month", "--previous", "full").output)
    assert same["previous"]["period"]["to"] == "2026-09-20"
    assert full["previous"]["period"]["to"] == "2026-09-30"
    table = run("--period", "this_month", "--format", "table", "--lang", "en").output
    assert "Previous period 2026-09-01–2026-09-20, same days" in table
    bad = run("--previous", "half")
    assert bad.exit_code == 2 and "Traceback" not in bad.output and "--previous" in bad.output


def test_the_exports_say_which_comparison(db):
    with open_store(db) as store:
        report = build_report(store, make_filter(store, period="this_month"))
        full = build_report(store, make_filter(store, period="this_month", previous="full"))
    lines = list(csv.reader(io.StringIO(report_to_csv(report, "en").lstrip("\ufeff"))))
    assert (
        lines[-1][0] == "previous"
        and lines[-1][2] == "Previous period 2026-09-01–2026-09-20, same days"
    )
    lines = list(csv.reader(io.StringIO(report_to_csv(full, "ru").lstrip("\ufeff")), delimiter=";"))
    assert lines[-1][2] == "Предыдущий период 01.09.2026–30.09.2026, весь период"
    book = openpyxl.load_workbook(io.BytesIO(report_to_xlsx(report, lang="ru")))
    sheet = book.worksheets[0]
    cells = [c.value for row in sheet.iter_rows(max_row=12) for c in row if c.value is not None]
    assert "Новые, пред. период (те же дни)" in cells  # the column heads
    assert "те же дни" in cells  # the facts above the table


def test_the_web_twin_and_header_follow_the_mode(db):
    with open_store(db) as store:
        client = page_client(create_app(Settings(db=store.path), store))
        twin = client.get("/report.json", params={"period": "this_month"}).json()
        assert twin["report"]["previous"]["period"]["to"] == "2026-09-20"
        assert twin["filter"]["previous"] == "to_date"
        page = client.get("/report", params={"period": "this_month"}).text
        assert "те же дни: 01.10.2026 – 20.10.2026 против 01.09.2026 – 20.09.2026" in page
        assert "previous=full" in page  # the link to the other comparison
        full = client.get("/report.json", params={"period": "this_month", "previous": "full"})
        assert full.json()["report"]["previous"]["period"]["to"] == "2026-09-30"
        assert "previous=full" in full.json()["links"]["csv"]
        page = client.get(
            "/report", params={"period": "this_month", "previous": "full", "lang": "en"}
        )
        assert "the whole previous period, though this one is not over" in page.text
        bad = client.get("/report.json", params={"previous": "half"})
        assert bad.status_code == 400 and "previous" in bad.text


def test_a_month_to_date_digest_compares_the_same_days_of_the_month_before(db):
    """Sent on 21 October, "month to date" is 1-20 October, a period that has ended:
    a digest compares it in full (docs/DIGESTS.md), and the full previous period of
    days from a month's first day is the same days of the month before: 1-20
    September (the 5 September deal only, not the 25th)."""
    from rop.digests.content import build_digest
    from rop.digests.subscriptions import make

    with open_store(db) as store:
        portal = store.scalar("SELECT portal FROM portals")
        sub = make(portal, 2, period="month_to_date", channels=("chat",))
        digest = build_digest(store, sub, date(2026, 10, 21))
        assert (digest.date_from, digest.date_to) == (date(2026, 10, 1), date(2026, 10, 20))
        assert digest.previous == (date(2026, 9, 1), date(2026, 9, 20))
        deals_new = next(f for f in digest.figures if f.key == "deals_new")
        assert deals_new.previous == 1
