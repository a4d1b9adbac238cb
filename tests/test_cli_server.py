"""The command line while `rop serve` holds the store (issue 9): report, drill
and rights show read through the server and print what the store itself
would; `rop sync` for another portal is refused; the demo's store is found;
options go before or after the command.

The server is a real `rop serve` process: DuckDB's lock is per process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from rop.cli import cli, remote
from rop.store.holder import LOCAL_TOKEN_HEADER, server_file
from tests.fixtures.portals import load

ROP = str(Path(sys.executable).with_name("rop"))
NOV = ["--from", "2026-11-01", "--to", "2026-11-30"]
SERVED_WEBHOOK = "http://127.0.0.1:1/rest/1/t/"  # the server's portal: 127.0.0.1:1


def rop(*args: str, env: dict[str, Any] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


def start_server(db: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [ROP, "serve", "--db", str(db), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ROP Report: "), line + (proc.stderr.read() if proc.stderr else "")
    return proc, line.split(": ", 1)[1].strip().removesuffix("/report")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A store held by `rop serve --viewer 6`, and an untouched copy to compare with."""
    folder = tmp_path_factory.mktemp("served")
    db, copy = folder / "store.duckdb", folder / "copy.duckdb"
    load("tricky", db).close()
    shutil.copy(db, copy)
    # The server shows the page as Дина (6) sees it; the CLI still reads as itself.
    proc, base = start_server(db, "--webhook", SERVED_WEBHOOK, "--viewer", "6")
    try:
        yield db, copy, base
    finally:
        stop_server(proc)


def both(served: Any, *args: str) -> tuple[Any, Any]:
    """The same command on the held store (through the server) and on the copy."""
    db, copy, _ = served
    command, rest = args[0], args[1:]
    return rop(command, "--db", str(db), *rest), rop(command, "--db", str(copy), *rest)


def test_the_store_is_really_held(served: Any) -> None:
    from rop.store.db import StoreError, open_store

    with pytest.raises(StoreError, match="lock"):
        open_store(served[0])


@pytest.mark.parametrize(
    "args",
    [
        ["report", *NOV, "--format", "json"],
        ["report", *NOV, "--by", "department", "--pipeline", "1", "--format", "csv"],
        ["report", *NOV, "--viewer", "6", "--no-compare", "--format", "json"],
        ["report", "--period", "last_month", "--section", "calls", "--lang", "en"],
        ["drill", *NOV, "--figure", "deals_new"],
        ["drill", *NOV, "--figure", "calls_total", "--sort", "id", "--desc", "--format", "csv"],
        ["drill", *NOV, "--figure", "deals_new", "--user", "4", "--offset", "1", "--limit", "1"],
        ["drill", *NOV, "--figure", "companies_new", "--by", "source", "--none-row"],
        ["report", "--period", "this_month", "--today", "2026-10-05", "--format", "json"],
        ["rights", "show"],
    ],
    ids=lambda a: " ".join(a[:1] + a[-2:]),
)
def test_read_commands_answer_through_the_server_as_from_the_store(
    served: Any, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "PAGE", 2)  # several pages even on the small portal
    through, direct = both(served, *args)
    assert through.exit_code == 0, through.output
    assert direct.exit_code == 0, direct.output
    assert through.output == direct.output


def test_refusals_come_back_as_one_line(served: Any) -> None:
    through, direct = both(served, "report", *NOV, "--viewer", "6", "--manager", "3")
    assert through.exit_code == direct.exit_code == 2
    assert through.output.strip() == "Error: access denied: user 3 is outside the viewer's scope"
    bad = rop("report", "--db", str(served[0]), "--from", "0001-01-01", "--to", "0001-01-02")
    assert bad.exit_code == 2 and "0001-01-01" in bad.output and "Traceback" not in bad.output


def test_only_the_token_holder_reads_as_anyone(served: Any) -> None:
    db, _, base = served
    info = json.loads(server_file(db).read_text())
    assert stat.S_IMODE(os.stat(server_file(db)).st_mode) == 0o600
    params = {"period": "custom", "from": "2026-11-01", "to": "2026-11-30", "viewer": "1"}
    # A visitor sees what the server's viewer sees, whatever the URL says...
    visitor = httpx.get(base + "/report.json", params=params, timeout=30).json()
    assert {r["user_id"] for r in visitor["report"]["rows"]} <= {5, 6, 7}
    assert httpx.get(base + "/api/rights", timeout=30).status_code == 403
    forged = httpx.get(base + "/api/rights", headers={LOCAL_TOKEN_HEADER: "guess"}, timeout=30)
    assert forged.status_code == 403
    # ...the command line, proving it can read the server's file, as it asks.
    local = {LOCAL_TOKEN_HEADER: info["token"]}
    mine = httpx.get(base + "/report.json", params=params, headers=local, timeout=30).json()
    assert {r["user_id"] for r in mine["report"]["rows"]} - {5, 6, 7}  # everyone's rows
    assert httpx.get(base + "/api/rights", headers=local, timeout=30).status_code == 200


def test_sync_for_another_portal_is_refused_naming_both(served: Any) -> None:
    db, _, base = served
    result = rop("sync", "--webhook", "https://b.example.ru/rest/1/abc/", "--db", str(db))
    assert result.exit_code == 2, result.output
    assert "this server syncs portal 127.0.0.1:1, not b.example.ru" in result.output
    assert "Traceback" not in result.output
    token = json.loads(server_file(db).read_text())["token"]
    status = httpx.get(base + "/api/sync", headers={LOCAL_TOKEN_HEADER: token}, timeout=30)
    assert status.json()["runs"] == 0  # nothing was synced


# -- the demo's store ----------------------------------------------------------------


def test_report_without_a_store_finds_the_demos(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path), "ROP_DB": None}
    os_env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    os_env.pop("ROP_DB", None)
    missing = rop("report", *NOV, env=env)
    assert missing.exit_code == 2
    demo = tmp_path / "rop-report" / "demo" / "demo.duckdb"
    assert str(demo) in missing.output and "rop demo" in missing.output
    # What `make demo` leaves: the demo's store beside the default one.
    demo.parent.mkdir(parents=True)
    load("tricky", demo).close()
    found = subprocess.run(
        [ROP, "report", *NOV, "--format", "json"], capture_output=True, text=True, env=os_env
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["total"]["figures"]["deals_new"] == 5
    assert f"reading the demo's store {demo}" in found.stderr


# -- options before and after the command ----------------------------------------------


@pytest.mark.parametrize(
    "before, after",
    [
        (["--db", "{db}", "report", *NOV], ["report", *NOV, "--db", "{db}"]),
        (
            ["--db={db}", "--lang", "en", "report", *NOV],
            ["report", "--lang", "en", *NOV, "--db={db}"],
        ),
        (
            ["--db", "{db}", "--format", "csv", "drill", "--figure", "deals_new", *NOV],
            ["drill", "--figure", "deals_new", *NOV, "--format", "csv", "--db", "{db}"],
        ),
        (["--db", "{db}", "rights", "show"], ["rights", "show", "--db", "{db}"]),
        (["--db", "{db}", "rights"], ["rights", "--db", "{db}"]),
    ],
)
def test_options_go_before_or_after_the_command(
    tmp_path: Path, before: list[str], after: list[str]
) -> None:
    db = tmp_path / "s.duckdb"
    load("tricky", db).close()
    fill = [a.replace("{db}", str(db)) for a in before], [a.replace("{db}", str(db)) for a in after]
    first, second = rop(*fill[0]), rop(*fill[1])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert first.output == second.output
    # An option the command does not have is still refused, wherever it stands.
    wrong = rop("--figure", "x", "report", "--db", str(db))
    assert wrong.exit_code == 2 and "--figure" in wrong.output
