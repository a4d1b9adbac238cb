"""Exports a reader can trust and open: CRM strings stay text, file names survive any
stage ID, and the files open in a Russian Excel (web routes and the CLI alike).

The portal is the tiny web portal plus a pipeline stage with a Cyrillic ID, one
with every character a file or sheet name cannot hold (and a bidi override),
a manager called ``=1+1``, a deal titled ``=HYPERLINK(...)`` and amounts whose
float sum has dust.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import openpyxl
import pytest
from click.testing import CliRunner

from rop.cli import cli
from rop.config import Settings
from rop.report.export_safe import FORMULA_STARTS, content_disposition, csv_text, sheet_name
from rop.web import create_app
from tests.test_web_support import PERIOD, write_portal
from tests.web_client import page_client

HYPERLINK = '=HYPERLINK("http://evil.example/?x","click")'
CYRILLIC = "C1:СЧЁТ"
NASTY = 'C1:A/?[]*"\u202eB'  # path, sheet and header breakers, and a right-to-left override
STAGES = [CYRILLIC, NASTY]
BIDI = "\u202e"


def _t(day: str) -> str:
    return f"2026-{day}T10:00:00+03:00"


def plant(folder: Path) -> Path:
    """The tiny portal with the strings a hostile or careless CRM user can type."""
    write_portal(folder)

    def edit(name: str, change) -> None:
        path = folder / name
        data = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(change(data), ensure_ascii=False), encoding="utf-8")

    edit(
        "user.get.json",
        lambda users: [
            *users,
            {"ID": "8", "ACTIVE": True, "NAME": "=1+1", "LAST_NAME": "", "UF_DEPARTMENT": [20]},
        ],
    )
    stage = {"ENTITY_ID": "DEAL_STAGE_1", "CATEGORY_ID": "1", "SEMANTICS": None,
             "EXTRA": {"SEMANTICS": "process"}}  # fmt: skip
    edit(
        "crm.status.list.json",
        lambda statuses: [
            *statuses,
            {**stage, "STATUS_ID": CYRILLIC, "NAME": "Счёт", "SORT": "15"},
            {**stage, "STATUS_ID": NASTY, "NAME": "=2+3", "SORT": "16"},
        ],
    )

    def deal(i: int, user: int, cat: int, stage: str, sem: str, amount: str, title: str) -> dict:
        return {
            "ID": str(i), "TITLE": title, "CATEGORY_ID": str(cat), "STAGE_ID": stage,
            "STAGE_SEMANTIC_ID": sem, "OPPORTUNITY": amount, "CURRENCY_ID": "RUB",
            "ASSIGNED_BY_ID": str(user), "CREATED_BY_ID": str(user), "COMPANY_ID": "0",
            "CONTACT_ID": "0", "SOURCE_ID": "WEB", "CLOSED": "Y" if sem == "S" else "N",
            "DATE_CREATE": _t("10-13"), "DATE_MODIFY": _t("10-14"), "MOVED_TIME": _t("10-14"),
            "CLOSEDATE": "2026-10-14T03:00:00+03:00", "BEGINDATE": _t("10-13"),
        }  # fmt: skip

    edit(
        "crm.deal.list.json",
        lambda deals: [
            *deals,
            deal(20, 8, 1, CYRILLIC, "P", "0.10", HYPERLINK),
            deal(21, 8, 1, NASTY, "P", "0.20", "+79991234567"),
            # Won amounts whose float sum is 0.30000000000000004.
            deal(22, 8, 0, "WON", "S", "0.10", "@SUM(A1)"),
            deal(23, 8, 0, "WON", "S", "0.20", "-2+3"),
        ],
    )
    edit(
        "crm.stagehistory.list.2.json",
        lambda rows: [
            *rows,
            *[
                {"ID": str(100 + i), "TYPE_ID": "1", "OWNER_ID": str(owner),
                 "CREATED_TIME": _t("10-13"), "CATEGORY_ID": "1", "STAGE_SEMANTIC_ID": "P",
                 "STAGE_ID": stage}
                for i, (owner, stage) in enumerate(((20, CYRILLIC), (21, NASTY)))
            ],
        ],
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    from rop.bitrix.snapshot import load_snapshot
    from rop.store import open_store

    tmp = tmp_path_factory.mktemp("exports")
    path = tmp / "planted.duckdb"
    store = open_store(path)
    load_snapshot(store, plant(tmp / "portal"))
    store.close()
    return path


@pytest.fixture(scope="module")
def web(db):
    from rop.store import open_store

    store = open_store(db)
    # The served host name (not TestClient's "testserver"): rop/web/security.py.
    yield page_client(create_app(Settings(db=db), store), raise_server_exceptions=False)
    store.close()


def run(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result


CLI_PERIOD = ["--from", PERIOD["from"], "--to", PERIOD["to"]]


def cells(book) -> list:
    return [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]


def header_row(sheet, first: str) -> int:
    """The table's header row: the sheet states what it shows above it."""
    return next(r for r in range(1, 30) if sheet.cell(r, 1).value == first)


def parse_csv(data: bytes, delimiter: str = ";") -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "a UTF-8 BOM, the one sign Excel reads"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=delimiter))


def is_number(text: str, decimal: str = ",") -> bool:
    try:
        float(text.replace(decimal, "."))
    except ValueError:
        return False
    return True


def assert_no_live_formula(rows: list[list[str]], decimal: str = ",") -> None:
    for row in rows:
        for field in row:
            if field.startswith(FORMULA_STARTS):
                assert is_number(field, decimal), f"{field!r} would run as a formula"


# -- formula injection ---------------------------------------------------------------


@pytest.mark.parametrize("source", ["web", "cli"])
def test_planted_formulas_are_text_cells_in_xlsx(web, db, tmp_path, source):
    if source == "web":
        report = web.get("/report.xlsx", params={**PERIOD, "key_stage": STAGES}).content
        drill = web.get("/drill.xlsx", params={**PERIOD, "figure": "deals_new"}).content
    else:
        keys = [a for s in STAGES for a in ("--key-stage", s)]
        run("report", "--db", str(db), *CLI_PERIOD, *keys, "--format", "xlsx", "--out", str(tmp_path / "r.xlsx"))  # fmt: skip
        run("drill", "--db", str(db), *CLI_PERIOD, "--figure", "deals_new", "--format", "xlsx", "--out", str(tmp_path / "d.xlsx"))  # fmt: skip
        report, drill = (tmp_path / "r.xlsx").read_bytes(), (tmp_path / "d.xlsx").read_bytes()
    for data, planted in ((report, ["=1+1", "=2+3"]), (drill, [HYPERLINK, "@SUM(A1)", "-2+3"])):
        book = openpyxl.load_workbook(io.BytesIO(data))
        found = {c.value: c.data_type for c in cells(book) if c.value in planted}
        assert found == dict.fromkeys(planted, "s")
        assert not [c.coordinate for c in cells(book) if c.data_type == "f"], "no formulas at all"
        assert not any(c.hyperlink and "evil" in c.hyperlink.target for c in cells(book))


@pytest.mark.parametrize("source", ["web", "cli"])
def test_planted_formulas_are_neutralised_in_csv_and_numbers_stay_numbers(web, db, source):
    if source == "web":
        report = web.get("/report.csv", params=PERIOD).content
        drill = web.get("/drill.csv", params={**PERIOD, "figure": "deals_new"}).content
    else:
        report = run("report", "--db", str(db), *CLI_PERIOD, "--format", "csv").stdout_bytes
        drill = run("drill", "--db", str(db), *CLI_PERIOD, "--figure", "deals_new", "--format", "csv").stdout_bytes  # fmt: skip
    report_rows, drill_rows = parse_csv(report), parse_csv(drill)
    assert_no_live_formula(report_rows)
    assert_no_live_formula(drill_rows)
    assert any("'=1+1" in row for row in report_rows)
    titles = {row[drill_rows[0].index("Сделка")] for row in drill_rows[1:]}
    assert {"'" + HYPERLINK, "'@SUM(A1)", "'-2+3", "'+79991234567"} <= titles
    # Amounts are plain numbers with the Russian decimal comma, not neutralised.
    amounts = {row[drill_rows[0].index("Сумма")] for row in drill_rows[1:]}
    assert {"100000", "0,1", "0,2"} <= amounts


def test_csv_text_neutralises_only_formula_starts():
    for text in ("=1+1", "+7 999", "-2", "@A1", "\tx", "\rx"):
        assert csv_text(text) == "'" + text
    for text in ("Сделка", "1-2", " =x", "", "ООО «Окна»"):
        assert csv_text(text) == text


# -- file names and sheet names from CRM identifiers --------------------------------


def file_names(header: str) -> tuple[str, str]:
    """(filename, the decoded filename*) of a Content-Disposition header."""
    assert header.startswith("attachment; ")
    plain = header.split('filename="', 1)[1].split('"', 1)[0]
    assert header.count('"') == 2, header
    star = header.split("filename*=UTF-8''", 1)[1] if "filename*=" in header else plain
    return plain, unquote(star)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("stage", STAGES)
def test_drill_exports_of_any_stage_id_download_under_a_safe_name(web, stage, fmt):
    resp = web.get(f"/drill.{fmt}", params={**PERIOD, "figure": f"deal_stage:{stage}"})
    assert resp.status_code == 200, resp.text
    header = resp.headers["content-disposition"]
    header.encode("latin-1")  # what HTTP headers must be
    plain, full = file_names(header)
    assert plain.isascii() and plain.endswith(f"-2026-10-01-2026-10-31.{fmt}")
    assert not set(plain) & set('/\\?*[]:"<>|') and BIDI not in full
    assert "%E2%80%AE" not in header.upper()
    assert not set(full) & set('/\\"')
    if stage == CYRILLIC:
        assert "СЧЁТ" in full and "SChET" in plain
    if fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(resp.content))
        (name,) = book.sheetnames
        assert len(name) <= 31 and not set(name) & set("[]:*?/\\") and BIDI not in name
        sheet = book.worksheets[0]
        ids = [r[0] for r in sheet.iter_rows(min_row=header_row(sheet, "ID") + 1, values_only=True)]
        assert ids == [20 if stage == CYRILLIC else 21]
    else:
        rows = parse_csv(resp.content)
        assert [r[0] for r in rows[1:]] == ["20" if stage == CYRILLIC else "21"]


@pytest.mark.parametrize("stage", STAGES)
def test_cli_drill_of_any_stage_id_writes_a_workbook(db, tmp_path, stage):
    out = tmp_path / "d.xlsx"
    run("drill", "--db", str(db), *CLI_PERIOD, "--figure", f"deal_stage:{stage}",
        "--format", "xlsx", "--out", str(out))  # fmt: skip
    (name,) = openpyxl.load_workbook(out).sheetnames
    assert len(name) <= 31 and not set(name) & set("[]:*?/\\") and BIDI not in name


def test_report_export_names_are_plain_ascii(web):
    header = web.get("/report.csv", params=PERIOD).headers["content-disposition"]
    assert header == 'attachment; filename="rop-report-2026-10-01-2026-10-31.csv"'


def test_content_disposition_and_sheet_names_survive_anything():
    nasty = 'a"b\\c/d?e*f[g]h:i\u202ej\u2066k\u200fl\u061cm\r\nn\x00o.csv'
    header = content_disposition(nasty)
    header.encode("latin-1")
    plain, full = file_names(header)
    assert plain == "a_b_c_d_e_f_g_h_ijklm_n_o.csv"
    assert full == "a_b_c_d_e_f[g]h_ijklm_n_o.csv"
    taken: set[str] = set()
    first = sheet_name("deal_stage:" + "x" * 40, taken)
    second = sheet_name("deal_stage:" + "x" * 40, taken)
    assert len(first) == len(second) == 31 and first != second
    assert sheet_name("'[]'", set()) == "__"
    assert sheet_name("", set()) == "Sheet"


# -- a file a Russian head of sales can open ----------------------------------------


def test_russian_report_csv_has_semicolons_russian_headers_and_no_float_dust(web):
    rows = parse_csv(web.get("/report.csv", params=PERIOD).content)
    head = rows[0]
    assert head[:4] == ["Строка", "ID пользователя", "Менеджер", "Отдел"]
    assert "Сумма успешных" in head and "deals_won_amount" not in head
    by_name = {r[2]: dict(zip(head, r, strict=True)) for r in rows[1:]}
    planted = by_name["'=1+1"]
    assert planted["Сумма успешных"] == "0,3"  # 0.1 + 0.2, not 0.30000000000000004
    assert by_name["Итого"]["Сумма успешных"] == "340000,3"
    assert planted["Строка"] == "строка" and by_name["Итого"]["Строка"] == "итого"
    # Each department's subtotal comes right under its managers.
    titles = [r[2] for r in rows[1:]]
    sub1, sub2 = titles.index("Итого: Отдел продаж 1"), titles.index("Итого: Отдел продаж 2")
    assert titles.index("Вера Петрова") < sub1 < titles.index("Дина Орлова") < sub2
    assert titles.index("'=1+1") < sub2


def test_drill_csv_writes_booleans_as_words_and_moments_as_excel_reads_them(web):
    rows = parse_csv(web.get("/drill.csv", params={**PERIOD, "figure": "deals_new"}).content)
    head = rows[0]
    missing = {r[head.index("Нет суммы")] for r in rows[1:]}
    assert missing <= {"да", "нет"} and "нет" in missing
    assert not any(f in ("True", "False") for r in rows for f in r)
    created = {r[0]: r[head.index("Создана")] for r in rows[1:]}
    assert created["20"] == "13.10.2026 10:00:00"


def test_english_dialect_is_commas_decimal_points_and_keys(web, db):
    rows = parse_csv(web.get("/report.csv", params={**PERIOD, "lang": "en"}).content, ",")
    head = rows[0]
    assert head[:4] == ["line", "user_id", "name", "department"] and "deals_won_amount" in head
    total = next(dict(zip(head, r, strict=True)) for r in rows if r[0] == "total")
    assert total["deals_won_amount"] == "340000.3"
    # The CLI takes the configured language when --lang is not given.
    out = run("report", "--db", str(db), *CLI_PERIOD, "--format", "csv",
              env={"ROP_LANGUAGE": "en"}).stdout_bytes  # fmt: skip
    assert parse_csv(out, ",")[0][:2] == ["line", "user_id"]
    out = run("report", "--db", str(db), *CLI_PERIOD, "--format", "csv", "--lang", "ru",
              env={"ROP_LANGUAGE": "en"}).stdout_bytes  # fmt: skip
    assert parse_csv(out)[0][:2] == ["Строка", "ID пользователя"]


def test_report_xlsx_states_what_it_shows_and_compares_with_the_previous_period(web):
    book = openpyxl.load_workbook(io.BytesIO(web.get("/report.xlsx", params=PERIOD).content))
    sheet = book["Сделки"]
    facts = {sheet.cell(r, 1).value: r for r in range(1, 8)}
    period = facts["Период"]
    assert sheet.cell(period, 2).is_date and sheet.cell(period, 2).value == datetime(2026, 10, 1)
    assert sheet.cell(period, 3).value == datetime(2026, 10, 31)
    compared = facts["Сравнение с"]
    assert sheet.cell(compared, 2).value == datetime(2026, 9, 1)
    assert sheet.cell(facts["Фильтр"], 2).value.endswith("с 01.10.2026 по 31.10.2026")
    as_of = sheet.cell(facts["Данные на"], 2)
    assert as_of.is_date and isinstance(as_of.value, datetime)
    head = header_row(sheet, "Менеджер")
    header = [c.value for c in sheet[head]]
    won = header.index("Успешные") + 1
    assert header[won] == "Успешные, пред. период" and header[won + 1] == "Успешные, изменение"
    # A figure about the present has no previous value of its own.
    assert "В работе, пред. период" not in header
    rows = {sheet.cell(r, 1).value: r for r in range(head + 1, sheet.max_row + 1)}
    vera = rows["Вера Петрова"]  # won deal 1 in October and deal 8 in September
    assert [sheet.cell(vera, won + i).value for i in range(3)] == [1, 1, 0]
    dina = rows["Дина Орлова"]  # won deal 6 in October, nothing in September
    assert [sheet.cell(dina, won + i).value for i in range(3)] == [1, 0, 1]
    assert sheet.cell(dina, won + 2).data_type == "n"
    assert rows["Вера Петрова"] < rows["Итого: Отдел продаж 1"] < rows["Дина Орлова"]
    assert rows["Дина Орлова"] < rows["Итого: Отдел продаж 2"] < rows["Итого"]
    amount = sheet.cell(rows["Итого"], header.index("Сумма успешных") + 1)
    assert amount.data_type == "n" and amount.value == pytest.approx(340000.3)
    assert amount.number_format == "#,##0.00"


def test_drill_xlsx_writes_dates_as_dates_and_amounts_as_numbers(web):
    q = {**PERIOD, "figure": "deals_new"}
    sheet = openpyxl.load_workbook(io.BytesIO(web.get("/drill.xlsx", params=q).content)).active
    head = header_row(sheet, "ID")
    header = [c.value for c in sheet[head]]
    rows = {sheet.cell(r, 1).value: r for r in range(head + 1, sheet.max_row + 1)}
    created = sheet.cell(rows[20], header.index("Создана") + 1)
    assert created.is_date and created.value == datetime(2026, 10, 13, 10, 0)
    planned = sheet.cell(rows[20], header.index("Плановая дата") + 1)
    assert planned.is_date and planned.value == datetime(2026, 10, 14)
    amount = sheet.cell(rows[1], header.index("Сумма") + 1)
    assert amount.data_type == "n" and amount.value == 100000
    assert amount.number_format == "#,##0.00"
    assert sheet.cell(rows[1], len(header)).hyperlink.target.endswith("/crm/deal/details/1/")


def test_cli_csv_file_is_the_same_as_the_web_download(web, db, tmp_path):
    out = tmp_path / "d.csv"
    run("drill", "--db", str(db), *CLI_PERIOD, "--figure", "deals_new", "--format", "csv",
        "--lang", "en", "--out", str(out))  # fmt: skip
    download = web.get("/drill.csv", params={**PERIOD, "figure": "deals_new", "lang": "en"})
    assert out.read_bytes() == download.content
    rows = parse_csv(out.read_bytes(), ",")
    assert rows[0][:2] == ["id", "title"]
    assert {r[rows[0].index("amount_missing")] for r in rows[1:]} == {"yes", "no"}
