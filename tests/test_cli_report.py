"""`rop report`, `rop drill` and `rop rights` through click's CliRunner on a real store file."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import openpyxl
import pytest
from click.testing import CliRunner

from rop.cli import cli
from tests.fixtures.portals import load

NOV = ["--from", "2026-11-01", "--to", "2026-11-30"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "store.duckdb"
    load("tricky", path).close()
    return str(path)


def run(*args, ok=True):
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_report_json_has_the_contract_shape(db):
    out = run("report", "--db", db, *NOV, "--key-stage", "C1:PREP", "--format", "json").output
    report = json.loads(out)
    assert report["period"] == {
        "from": "2026-11-01",
        "to": "2026-11-30",
        "timezone": "Europe/Moscow",
    }
    assert report["currency"] == "RUB"
    assert report["filter"]["key_stages"] == ["C1:PREP"]
    row = next(r for r in report["rows"] if r["user_id"] == 4)
    assert {"user_id", "name", "department_id", "dismissed", "figures"} <= row.keys()
    assert isinstance(row["figures"]["deals_new"], int)
    assert isinstance(row["figures"]["deals_won_amount"], float)
    assert 0 <= row["figures"]["deals_win_rate"] <= 1
    assert "deal_stage:C1:PREP" in report["total"]["figures"]
    assert {"department_id", "name", "figures"} <= report["departments"][0].keys()
    assert report["previous"]["period"]["from"] == "2026-10-01"
    assert "figures" in report["previous"]["total"]
    assert report["portal"]["key"] == "tricky.bitrix24.ru" and report["data_as_of"]


def test_report_csv_and_table(db):
    # The English dialect: commas, a decimal point, figure keys as headers.
    out = run("report", "--db", db, *NOV, "--format", "csv", "--lang", "en").output
    lines = list(csv.DictReader(io.StringIO(out.removeprefix("\ufeff"))))
    total = next(x for x in lines if x["line"] == "total")
    assert total["deals_new"] == "5" and total["deals_loss_cycle_days"] == "46.5"
    assert next(x for x in lines if x["user_id"] == "4")["deals_won"] == "3"
    table = run("report", "--db", db, *NOV, "--format", "table", "--section", "deals").output
    assert "Ирина Петрова" in table and "Конверсия" in table and "Итого" in table
    assert "уволен" in table and "—" in table


def test_report_xlsx_reads_back_with_number_formats(db, tmp_path):
    out = tmp_path / "r.xlsx"
    run("report", "--db", db, *NOV, "--format", "xlsx", "--out", str(out))
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == [
        "Отчёт", "Сделки", "Лиды", "Компании", "Контакты", "Звонки",
        # Stage analytics (issue 12), deals and lead statuses.
        "Стадии — матрица", "Стадии — время", "Статусы — матрица", "Статусы — время",
        # A month is a plan period: the plan/fact sheet (issue 13).
        "План-факт",
    ]  # fmt: skip
    deals = book["Сделки"]
    # What the sheet shows is stated above the table; the table's header is frozen.
    head = next(r for r in range(1, 20) if deals.cell(r, 1).value == "Менеджер")
    assert deals.freeze_panes == f"B{head + 1}"
    header = [c.value for c in deals[head]]
    col = header.index("Конверсия в продажу") + 1
    ira = next(r for r in range(2, deals.max_row + 1) if deals.cell(r, 1).value == "Ирина Петрова")
    assert deals.cell(ira, col).value == 0.5 and deals.cell(ira, col).number_format == "0.0%"
    calls = book["Звонки"]
    talk = [c.value for c in calls[head]].index("Время разговоров") + 1
    # A real duration: openpyxl reads the [h]:mm:ss cell back as 0:02:25.
    assert calls.cell(ira, talk).value == timedelta(seconds=145)


def test_drill_json_and_csv(db):
    out = run("drill", "--db", db, *NOV, "--figure", "deals_won", "--user", "4").output
    result = json.loads(out)
    assert result["figure"] == "deals_won" and result["value"] == 3
    assert [r["id"] for r in result["records"]] == [1, 2, 3]
    assert result["records"][0]["url"] == "https://tricky.bitrix24.ru/crm/deal/details/1/"
    csv_out = run("drill", "--db", db, *NOV, "--figure", "calls_total", "--format", "csv").output
    assert len(list(csv.DictReader(io.StringIO(csv_out), delimiter=";"))) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["drill", "--figure", "deals_nope"], "unknown figure 'deals_nope'"),
        (["report", "--from", "2026-11-30", "--to", "2026-11-01"], "starts after it ends"),
        (["report", "--pipeline", "7"], "unknown pipeline 7"),
        (["report", "--key-stage", "NOPE"], "unknown deal stage 'NOPE'"),
        (["report", "--viewer", "4242"], "no user 4242"),
        (["report", "--from", "2026-13-01", "--to", "2026-11-30"], "bad date for --from"),
        (["drill", "--figure", "deals_new", "--viewer", "3", "--user", "5"], "access denied"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(db, args, message):
    dates = [] if "--from" in args else NOV
    result = run(*args[:1], "--db", db, *dates, *args[1:], ok=False)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_rights_commands(db):
    run("rights", "--db", db, "allow", "4", "7")
    shown = run("rights", "--db", db).output
    assert "user 4 sees user 7" in shown and "portal admins: 1" in shown
    out = json.loads(run("report", "--db", db, *NOV, "--viewer", "4", "--format", "json").output)
    assert {r["user_id"] for r in out["rows"]} == {4, 7}
    run("rights", "--db", db, "clear", "4")
    run("rights", "--db", db, "admin", "4")
    assert "report admins: 4" in run("rights", "--db", db, "show").output
    run("rights", "--db", db, "admin", "4", "--off")
    bad = run("rights", "--db", db, "allow", "4242", "4", ok=False)
    assert bad.exit_code == 2 and "no user 4242" in bad.output


def test_every_report_command_has_help():
    for args in (["report"], ["drill"], ["rights"], ["rights", "allow"]):
        assert "Usage" in run(*args, "--help").output


def test_table_shows_crm_text_as_data():
    from rop.report.table import report_to_table

    report = {
        "portal": {"key": "p"}, "period": {"from": "a", "to": "b", "timezone": "UTC"},
        "currency": "RUB", "description_ru": "[bold]x[/bold]",
        "columns": [{"key": "deals_new", "section": "deals", "label_ru": "Новые",
                     "label_en": "New", "kind": "count"}],
        "rows": [{"name": "[red]Мария[/red]", "dismissed": False, "figures": {"deals_new": 1}}],
        "departments": [], "total": {"figures": {"deals_new": 1}},
    }  # fmt: skip
    text = report_to_table(report)
    assert "[red]Мария[/red]" in text and "[bold]x[/bold]" in text


def test_report_with_a_preset_period(db):
    report = json.loads(
        run("report", "--db", db, "--period", "last_month", "--format", "json").output
    )
    assert report["period"]["from"].endswith("-01")
    bad = run("report", "--db", db, "--period", "next_year", ok=False)
    assert bad.exit_code == 2 and "unknown period 'next_year'" in bad.output
    both = run("report", "--db", db, "--period", "last_month", *NOV, ok=False)
    assert both.exit_code == 2 and "either a preset period or --from/--to" in both.output
