"""Edge values, choices outside the viewer's scope and unknown IDs: one clear
refusal each, from the web (4xx) and the CLI (exit 2), never a traceback.

The tricky portal: Дина (6) heads department 4 (users 5, 6, 7); Вера (3) is
in department 3; pipelines 0 and 1.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rop.cli import cli
from rop.config import Settings
from rop.report.bounds import FIRST_DAY, LAST_DAY, MAX_DAYS, MAX_WHOLE
from rop.web import create_app
from tests.fixtures.portals import load
from tests.web_client import page_client

NOV = {"period": "custom", "from": "2026-11-01", "to": "2026-11-30"}
NOV_CLI = ["--from", "2026-11-01", "--to", "2026-11-30"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("bounds") / "store.duckdb"
    load("tricky", path).close()
    return str(path)


@pytest.fixture(scope="module")
def web(db):
    from rop.store import open_store

    store = open_store(db + ".web")  # a copy of its own: the CLI opens `db`
    from rop.bitrix.snapshot import load_snapshot
    from tests.fixtures.portals import PORTALS

    load_snapshot(store, PORTALS / "tricky")
    # Demo mode: the viewer comes from the URL, as in `rop demo`.
    # The served host name, not TestClient's "testserver" (rop/web/security.py).
    client = page_client(
        create_app(Settings(db=store.path, demo=True), store), raise_server_exceptions=False
    )
    yield client
    store.close()


def cli_run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def refused_by_cli(db, *args, words):
    result = cli_run(*args[:1], "--db", db, *args[1:])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output
    return result


# -- 1. edge values --------------------------------------------------------------


@pytest.mark.parametrize("start, end", [("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31")])
def test_years_out_of_range_are_refused_by_web_and_cli_alike(db, web, start, end):
    bounds = (FIRST_DAY.isoformat(), LAST_DAY.isoformat())
    for path in ("/report.json", "/report"):
        answer = web.get(path, params={"lang": "en", **NOV, "from": start, "to": end})
        assert answer.status_code == 400
        text = answer.text
        assert start in text and "(from)" in text and all(b in text for b in bounds)
    drill = web.get("/drill.json", params={**NOV, "from": start, "to": end, "figure": "deals_new"})
    assert drill.status_code == 400
    for command in (["report"], ["drill", "--figure", "deals_new"]):
        refused_by_cli(db, *command, "--from", start, "--to", end, words=["--from", *bounds])


def test_the_last_and_first_allowed_days_still_answer(db, web):
    edge = {"period": "custom", "from": LAST_DAY.isoformat(), "to": LAST_DAY.isoformat()}
    assert web.get("/report.json", params=edge).status_code == 200
    first = ["--from", FIRST_DAY.isoformat(), "--to", FIRST_DAY.isoformat()]
    assert cli_run("report", "--db", db, *first, "--format", "json").exit_code == 0
    # The ten-year bound holds on the command line as on the page.
    long = ["--from", "2010-01-01", "--to", "2026-01-01"]
    refused_by_cli(db, "report", *long, words=[str(MAX_DAYS)])


def test_huge_paging_is_refused_naming_the_field(db, web):
    answer = web.get("/drill.json", params={**NOV, "figure": "deals_new", "offset": str(10**23)})
    assert answer.status_code == 400 and "offset" in answer.json()["error"]["message"]
    for option in ("--offset", "--limit"):
        for value in ("1e23", str(10**23), "-1"):
            refused_by_cli(db, "drill", "--figure", "deals_new", option, value, words=[option])
    # The largest allowed offset is an empty page, not a crash.
    big = cli_run(
        "drill", "--db", db, *NOV_CLI, "--figure", "deals_new", "--offset", str(MAX_WHOLE)
    )
    assert big.exit_code == 0 and '"records": []' in big.output


def test_negative_numbers_are_called_negative_not_malformed(db, web):
    answer = web.get("/report.json", params={**NOV, "lang": "en", "min_call": "-5"})
    message = answer.json()["error"]["message"]
    assert answer.status_code == 400 and "0 or more" in message and "whole" not in message
    result = refused_by_cli(db, "report", "--manager", "-3", words=["--manager", "0 or more"])
    assert "whole" not in result.output
    huge = web.get("/report.json", params={**NOV, "manager": "9" * 5000})
    assert huge.status_code == 400 and "manager" in huge.json()["error"]["message"]


# -- 2. choices outside the viewer's scope -----------------------------------------


@pytest.mark.parametrize(
    "params, named",
    [({"manager": "3"}, "Вера"), ({"department": "3"}, "Продажи Москва")],
)
def test_web_filter_outside_scope_is_403_and_names_nothing(web, params, named):
    for path in ("/report.json", "/report"):
        answer = web.get(path, params={**NOV, "viewer": "6", **params})
        assert answer.status_code == 403
        assert named not in answer.text
    # Inside the scope the same choices answer.
    assert web.get("/report.json", params={**NOV, "viewer": "6", "manager": "7"}).status_code == 200
    ok = web.get("/report.json", params={**NOV, "viewer": "6", "department": "4"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"dept": "3"},
        {"row": "3"},
        {"row": "3", "by": "department"},
        {"dept": "2"},  # above the viewer's own department
    ],
)
def test_web_drill_outside_scope_is_403(web, params):
    answer = web.get("/drill", params={**NOV, "viewer": "6", "figure": "deals_new", **params})
    assert answer.status_code == 403
    assert "Продажи Москва" not in answer.text and "Вера" not in answer.text


def test_cli_filter_outside_scope_exits_2_without_the_name(db):
    for extra in (["--manager", "3"], ["--department", "3"]):
        result = refused_by_cli(db, "report", *NOV_CLI, "--viewer", "6", *extra, words=["outside"])
        assert "Вера" not in result.output and "Москва" not in result.output
    refused_by_cli(
        db, "drill", "--figure", "deals_new", "--viewer", "6", "--department-row", "3",
        words=["department 3", "outside"],
    )  # fmt: skip
    assert cli_run("report", "--db", db, "--viewer", "6", "--department", "4").exit_code == 0


# -- 3. unknown IDs and keys ---------------------------------------------------------


def test_unknown_ids_are_errors_not_empty_results(db, web):
    refused_by_cli(db, "report", "--manager", "44", words=["no user 44"])
    refused_by_cli(db, "drill", "--figure", "deals_new", "--user", "999", words=["no user 999"])
    refused_by_cli(
        db, "drill", "--figure", "deals_new", "--department-row", "99999999999",
        words=["unknown department 99999999999"],
    )  # fmt: skip
    refused_by_cli(
        db, "drill", "--figure", "deals_new", "--by", "pipeline", "--key", "3",
        words=["unknown pipeline 3", "0, 1"],
    )  # fmt: skip
    assert (
        web.get("/drill.json", params={**NOV, "figure": "deals_new", "row": "777"}).status_code
        == 400
    )
    assert (
        web.get("/drill.json", params={**NOV, "figure": "deals_new", "dept": "777"}).status_code
        == 400
    )


def test_unknown_pipeline_and_figure_list_the_choices(db):
    refused_by_cli(
        db, "report", "--pipeline", "2", words=["unknown pipeline 2", "choose from 0, 1"]
    )
    refused_by_cli(
        db, "drill", "--figure", "nope", words=["unknown figure 'nope'", "deals_won", "deal_stage:"]
    )


def test_the_web_lists_the_pipelines_and_figures_too(web):
    pipe = web.get("/report.json", params={**NOV, "lang": "en", "pipeline": "2"})
    assert pipe.status_code == 400
    assert "0 (Общая), 1 (Опт)" in pipe.json()["error"]["message"]
    fig = web.get("/drill.json", params={**NOV, "lang": "en", "figure": "nope"})
    assert fig.status_code == 400 and "deals_won" in fig.json()["error"]["message"]
