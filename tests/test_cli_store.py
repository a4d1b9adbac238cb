"""How the read commands (report, drill, rights) meet a store they cannot use,
and an output file they cannot write.

DuckDB lets one process hold a store file for writing; the holder here is a
real second process, since within one process DuckDB shares the instance.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rop.cli import cli

HOLD = (
    "import sys; from rop.store import open_store; "
    "store = open_store(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
)


@pytest.fixture()
def held(tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield db
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.mark.parametrize("command", [["report"], ["drill", "--figure", "deals_new"], ["rights"]])
def test_a_store_held_by_rop_serve_points_to_the_server(held: Path, command: list[str]) -> None:
    Path(f"{held}.server.json").write_text(json.dumps({"url": "http://127.0.0.1:8123/"}))
    result = CliRunner().invoke(cli, [*command, "--db", str(held)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: the store {held} is open in `rop serve`")
    assert "http://127.0.0.1:8123/report.json" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_store_held_by_something_else_says_it_is_locked(held: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--db", str(held)])
    assert result.exit_code == 2, result.output
    assert "lock" in result.output and "rop serve" not in result.output
    assert "Traceback" not in result.output


def test_no_store_says_to_sync_first(tmp_path: Path) -> None:
    missing = tmp_path / "none.duckdb"
    result = CliRunner().invoke(cli, ["report", "--db", str(missing)])
    assert result.exit_code == 2
    assert f"no store at {missing}: run `rop sync` first" in result.output
    assert not missing.exists(), "a read command must not create a store"


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "table"])
@pytest.mark.parametrize("command", [["report"], ["drill", "--figure", "deals_new"]])
def test_an_output_file_in_no_folder_is_refused_before_work(tmp_path, command, fmt):
    out = tmp_path / "missing" / f"r.{fmt}"
    missing_store = tmp_path / "none.duckdb"  # refused first: nothing was opened
    args = [*command, "--db", str(missing_store), "--format", fmt, "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output == f"Error: cannot write {out}: no folder {out.parent}\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
# xlsxwriter leaves its failed ZipFile to the garbage collector, which complains.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_unwritable_output_file_is_one_line(tmp_path):
    from tests.fixtures.portals import load

    db = tmp_path / "s.duckdb"
    load("tricky", db).close()
    for fmt in ("csv", "xlsx"):
        args = ["report", "--db", str(db), "--period", "this_month", "--format", fmt]
        result = CliRunner().invoke(cli, [*args, "--out", "/dev/full"])  # every write: ENOSPC
        assert result.exit_code == 2, result.output
        assert result.output == "Error: cannot write /dev/full: No space left on device\n"
        del result  # its traceback holds xlsxwriter's workbook
        gc.collect()  # collected here, under the filter above


def test_a_second_rop_serve_points_to_the_first(held: Path) -> None:
    Path(f"{held}.server.json").write_text(json.dumps({"url": "http://127.0.0.1:8123"}))
    result = CliRunner().invoke(cli, ["serve", "--db", str(held), "--port", "0"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: the store {held} is open in `rop serve` at")
