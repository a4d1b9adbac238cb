"""Bitrix24's "nothing" ("" and 0) is NULL in the store and in every figure (issue 17, item 1).

The hand-made portal tests/fixtures/portals/blanks sends "nothing" the ways
Bitrix24 does: SOURCE_ID "", STAGE_SEMANTIC_ID "", CURRENCY_ID "",
CATEGORY_ID "", COMPANY_ID/LEAD_ID/ASSIGNED_BY_ID "0", UF_DEPARTMENT ["0"],
CALL_FAILED_CODE "", PORTAL_USER_ID "0"... Each must read as "none": a deal
whose SOURCE_ID is "" takes its lead's source, and no row is named "".
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from rop.store import open_store
from rop.store.migrations import MIGRATIONS
from tests.fixtures.portals import load

OCT = (date(2026, 10, 1), date(2026, 10, 31))


@pytest.fixture(scope="module")
def store():
    opened = load("blanks")
    yield opened
    opened.close()


def rows_by(store, by: str) -> dict:
    report = build_report(store, ReportFilter(*OCT, by=by))
    return {r["key"]: r for r in report["rows"]}


def test_the_store_holds_no_blank_text_and_no_zero_links(store):
    blanks = []
    for table, column, kind in store.query(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name <> 'schema_migrations'"
    ):
        if kind == "VARCHAR":
            sql = f"SELECT count(*) FROM {table} WHERE trim({column}) = ''"  # noqa: S608
        elif kind == "BIGINT" and column.endswith("_id") and column != "id":
            sql = f"SELECT count(*) FROM {table} WHERE {column} = 0"  # noqa: S608
        else:
            continue
        if store.scalar(sql):
            blanks.append(f"{table}.{column}")
    # category_id 0 is a real pipeline (the general one), not "nothing".
    assert [b for b in blanks if not b.endswith(".category_id")] == []


def test_a_deal_with_an_empty_source_takes_its_leads_source(store):
    rows = rows_by(store, "source")
    assert "" not in rows  # no nameless row beside "—"
    assert set(rows) == {"EMAIL", "CALL", "WEB", None}
    email = rows["EMAIL"]
    assert email["name"] == "E-mail"
    assert email["figures"]["deals_in_progress"] == 4  # D1-D4: SOURCE_ID "", leads by e-mail
    assert email["figures"]["deals_new"] == 4
    assert email["figures"]["leads_new"] == 4
    assert email["figures"]["contacts_new"] == 1
    none = rows[None]
    assert (none["name_ru"], none["name_en"]) == ("Без источника", "No source")
    assert none["figures"]["deals_won"] == 1  # D5: SOURCE_ID "", LEAD_ID "0"
    assert none["figures"]["leads_new"] == 2  # L5 "" and L6 null alike
    assert none["figures"]["contacts_new"] == 1  # C1 ""
    assert none["figures"]["companies_new"] == 1  # companies have no source
    assert none["figures"]["calls_total"] == 3  # calls have no source; user 0's is nobody's


def test_blank_stage_semantics_currency_and_pipeline_fall_back(store):
    rows = rows_by(store, "manager")
    # ASSIGNED_BY_ID "0" and PORTAL_USER_ID "0" are nobody: no "user #0" row.
    assert set(rows) == {1, 2, 3, 4}
    vera = rows[3]["figures"]
    # STAGE_SEMANTIC_ID "" is read from the stage directory (WON: success) ...
    assert vera["deals_won"] == 1
    # ... and CURRENCY_ID "" is the base currency, not an unknown one worth 0.
    assert vera["deals_won_amount"] == 5000.0
    (record,) = drill(store, ReportFilter(*OCT), "deals_won", user_id=3)["records"]
    assert record["amount_missing"] is False and record["currency"] == "RUB"
    # A lead whose STATUS_SEMANTIC_ID is "" is in progress by its status (NEW).
    assert rows[2]["figures"]["leads_in_progress"] == 1
    # CALL_FAILED_CODE "" is a missed incoming call.
    assert rows[3]["figures"]["calls_missed"] == 1
    pipes = rows_by(store, "pipeline")
    assert set(pipes) == {"0", "1", None}
    assert pipes["0"]["figures"]["deals_new"] == 6  # D5's CATEGORY_ID "" is pipeline 0


def test_a_user_whose_department_is_0_has_none(store):
    rows = rows_by(store, "department")
    assert set(rows) == {1, 2, None}  # no department "0"
    assert rows[None]["name_ru"] == "Без отдела"
    assert rows[None]["figures"]["calls_total"] == 2  # users 3 (UF_DEPARTMENT []) and 4 (["0"])
    report = build_report(store, ReportFilter(*OCT))
    users = {r["user_id"]: r for r in report["rows"]}
    assert users[3]["department_id"] is None and users[4]["department_id"] is None


def test_an_empty_row_key_is_refused_not_matched(store):
    from rop.report.filter import ReportInputError

    with pytest.raises(ReportInputError, match="none-row"):
        drill(store, ReportFilter(*OCT, by="source"), "deals_new", key="")


def _old_store(path) -> None:
    """A store at schema version 2, as rop wrote it before "nothing" became NULL."""
    conn = duckdb.connect(str(path))
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, "
        "applied_at TIMESTAMP)"
    )
    for version, name, sql in MIGRATIONS[:2]:
        conn.execute(sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    conn.execute(
        "INSERT INTO portals VALUES ('old.bitrix24.ru', 'https://old.bitrix24.ru', "
        "'Europe/Moscow', 'RUB', 1, TIMESTAMP '2026-10-20 09:00:00')"
    )
    conn.execute(
        "INSERT INTO statuses VALUES ('old.bitrix24.ru', 'SOURCE', 'EMAIL', 'E-mail', 10, NULL, "
        "'P'), ('old.bitrix24.ru', 'DEAL_STAGE', 'NEW', 'Новая', 10, 0, 'P')"
    )
    conn.execute(
        "INSERT INTO users (portal, id, active, name, department_id) "
        "VALUES ('old.bitrix24.ru', 2, TRUE, 'Борис', 0)"
    )
    conn.execute(
        "INSERT INTO leads (portal, id, assigned_by_id, source_id, status_id, date_create) "
        "VALUES ('old.bitrix24.ru', 1, 2, 'EMAIL', 'NEW', TIMESTAMP '2026-10-01 07:00:00')"
    )
    conn.execute(
        "INSERT INTO deals (portal, id, category_id, stage_id, stage_semantic, currency_id, "
        "assigned_by_id, company_id, lead_id, source_id, opportunity, date_create) VALUES "
        "('old.bitrix24.ru', 1, 0, 'NEW', '', '', 2, 0, 1, '', 100, "
        "TIMESTAMP '2026-10-02 07:00:00')"
    )
    conn.close()


def test_a_migration_clears_what_older_versions_stored(tmp_path):
    path = tmp_path / "old.duckdb"
    _old_store(path)
    with open_store(path) as store:
        deal = store.query_dicts("SELECT * FROM deals")[0]
        assert [deal[c] for c in ("source_id", "stage_semantic", "currency_id", "company_id")] == [
            None,
            None,
            None,
            None,
        ]
        assert deal["lead_id"] == 1 and deal["category_id"] == 0
        assert store.scalar("SELECT department_id FROM users") is None
        # The portal's clock was never recorded: the best estimate is the copy's time.
        assert store.scalar("SELECT clock FROM portals") == datetime(2026, 10, 20, 9, 0)
        report = build_report(store, ReportFilter(*OCT, by="source"))
        (row,) = report["rows"]
        assert row["key"] == "EMAIL" and row["figures"]["deals_in_progress"] == 1
        assert report["today"] == "2026-10-20"


def test_rop_drill_reaches_the_none_row(tmp_path):
    import json

    from click.testing import CliRunner

    from rop.cli import cli

    db = str(tmp_path / "s.duckdb")
    load("blanks", db).close()
    args = ["drill", "--db", db, "--from", "2026-10-01", "--to", "2026-10-31", "--by", "source"]
    out = CliRunner().invoke(cli, [*args, "--figure", "leads_new", "--none-row"])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.output)
    assert sorted(r["id"] for r in listed["records"]) == [5, 6] and listed["none_row"] is True
    # The "—" row is a flag: an empty key or a key beside it is one clear line, exit 2.
    for extra in (["--key", ""], ["--none-row", "--key", "EMAIL"]):
        bad = CliRunner().invoke(cli, [*args, "--figure", "leads_new", *extra])
        assert bad.exit_code == 2 and "Traceback" not in bad.output, extra
        assert len(bad.output.strip().splitlines()) == 1, bad.output
