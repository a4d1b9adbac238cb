"""`rop plans` through click's CliRunner on a real store file (tests/fixtures/plans_portal)."""

from __future__ import annotations

import io
import json

import openpyxl
import pytest
from click.testing import CliRunner

from rop.cli import cli
from tests.fixtures import plans_portal


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "store.duckdb"
    plans_portal.build(path).close()
    return str(path)


def run(*args, code=0):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def test_set_show_history_and_the_report(db):
    run("plans", "set", "--db", db, "user", "2", "deals_won_amount", "2026-11", "1 500 000,50")
    run("plans", "set", "--db", db, "--as", "1", "user", "2", "deals_won_amount", "2026-11",
        "160000")  # fmt: skip
    shown = json.loads(run("plans", "show", "--db", db, "--period", "2026-11", "--json").output)
    assert [(p["subject_id"], p["value"], p["changed_by"]) for p in shown] == [(2, 160000.0, 1)]
    history = run("plans", "history", "--db", db).output.splitlines()
    assert len(history) == 2 and "CLI" in history[0] and "1.5e+06 -> 160000" in history[1]
    report = json.loads(run("report", "--db", db, "--from", "2026-11-01", "--to", "2026-11-30",
                            "--format", "json").output)  # fmt: skip
    row = next(r for r in report["plans"]["rows"] if r["user_id"] == 2)
    assert row["figures"]["deals_won_amount"]["plan"] == 160000.0
    assert row["figures"]["deals_won_amount"]["fact"] == 150000.0


def test_rights_and_bad_input_exit_2(db):
    out = run("plans", "set", "--db", db, "--as", "2", "user", "2", "deals_won", "2026-11", "3",
              code=2).output  # fmt: skip
    assert "no right to change the plan of user 2" in out and "Traceback" not in out
    out = run("plans", "set", "--db", db, "--as", "1", "department", "2", "deals_won",
              "2026-11", "3", code=2).output  # fmt: skip
    assert "department 2" in out
    assert "bad plan period" in run("plans", "set", "--db", db, "user", "2", "deals_won",
                                    "2026-13", "3", code=2).output  # fmt: skip
    assert (
        "cannot be planned"
        in run(
            "plans", "set", "--db", db, "user", "2", "deals_win_rate", "2026-11", "3", code=2
        ).output
    )
    assert "bad plan value" in run("plans", "set", "--db", db, "user", "2", "deals_won",
                                   "2026-11", "много", code=2).output  # fmt: skip
    assert json.loads(run("plans", "show", "--db", db, "--json").output) == []


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_export_the_template_fill_it_and_import_it_back(db, tmp_path, suffix):
    out = tmp_path / f"plans.{suffix}"
    run("plans", "export", "--db", db, "--period", "2026-11", "--out", str(out))
    if suffix == "csv":
        text = out.read_text(encoding="utf-8-sig")
        lines = text.splitlines()
        assert lines[0] == "subject;id;name;figure;period;plan"
        filled = [
            line + "250 000"
            if line.startswith("user;2;") and ";deals_won_amount;" in line
            else line
            for line in lines
        ]
        out.write_text("\n".join(filled), encoding="utf-8")
    else:
        book = openpyxl.load_workbook(out)
        sheet = book.active
        rows = list(sheet.iter_rows())
        assert [c.value for c in rows[0]] == ["subject", "id", "name", "figure", "period", "plan"]
        for r in rows[1:]:
            if (r[0].value, r[1].value, r[3].value) == ("user", 2, "deals_won_amount"):
                r[5].value = 250000
        book.save(out)
    assert "1 plan(s) changed" in run("plans", "import", "--db", db, str(out)).output
    shown = json.loads(run("plans", "show", "--db", db, "--json").output)
    assert [(p["subject"], p["subject_id"], p["figure"], p["value"]) for p in shown] == [
        ("user", 2, "deals_won_amount", 250000.0)]  # fmt: skip
    # The template now carries the plan in force.
    again = run("plans", "export", "--db", db, "--period", "2026-11").output
    assert "user;2;Пётр Т;deals_won_amount;2026-11;250000.0" in again


def test_a_bad_file_names_its_line_and_changes_nothing(db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("subject;id;name;figure;period;plan\nuser;2;;deals_won;2026-11;5\n"
                   "user;2;;deals_won;2026-11;пять\n", encoding="utf-8")  # fmt: skip
    out = run("plans", "import", "--db", db, str(bad), code=2).output
    assert "line 3" in out and "bad plan value" in out
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"PK not a zip")
    assert "not an XLSX workbook" in run("plans", "import", "--db", db, str(junk), code=2).output
    assert json.loads(run("plans", "show", "--db", db, "--json").output) == []
    _ = io


def test_fact_prints_plan_fact_and_forecasts(db):
    run("plans", "set", "--db", db, "user", "2", "deals_won_amount", "2026-11", "160000")
    out = run("plans", "fact", "--db", db, "--period", "2026-11", "--today", "2026-11-27").output
    assert out.startswith("2026-11: 19 of 20 working days, expected 95.0 %")
    peter = next(x for x in out.splitlines() if x.startswith("Пётр Т\t160,000\t"))
    assert peter.split("\t")[1:] == ["160,000", "150,000", "93.8 %", "-10,000", "amber",
                                     "157,894.74", "180,000"]  # fmt: skip
    bad = run("plans", "fact", "--db", db, "--period", "2026-11", "--today", "вчера", code=2)
    assert "bad date for --today" in bad.output
