"""A damaged store file and a full disk: one line naming the file and what to
do, never a traceback, and the store left exact (issue 9)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

import rop.store.db as db_module
from rop.cli import cli
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.store.db import open_store
from tests.fixtures.portals import load
from tests.sync_portal import TOKEN, make_portal

DATA = ("deals", "leads", "companies", "contacts", "calls", "users", "deal_stage_history")


def rop(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def one_error_line(result: Any) -> str:
    """The one error line (a sync's progress lines may come before it)."""
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    return errors[0]


def data_of(db: Path) -> dict[str, list[str]]:
    with open_store(db) as store:
        return {t: sorted(map(repr, store.query(f"SELECT * FROM {t}"))) for t in DATA}


# -- a store file cut in half ----------------------------------------------------


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("damaged") / "store.duckdb"
    load("tricky", path).close()
    shutil.copyfile(path, path.with_name("intact.duckdb"))
    os.truncate(path, path.stat().st_size // 2)
    return path


@pytest.mark.parametrize(
    "command",
    [["report"], ["drill", "--figure", "deals_new"], ["rights"], ["serve", "--port", "0"]],
    ids=lambda c: c[0],
)
def test_a_store_cut_in_half_is_one_line_naming_it(damaged: Path, command: list[str]) -> None:
    result = rop(*command, "--db", str(damaged))
    if result.exit_code == 0 and command[0] != "serve":
        # Where the cut falls depends on the file's layout: a command whose blocks
        # all lie in the intact half may answer, but then exactly as before the cut.
        intact = rop(*command, "--db", str(damaged.with_name("intact.duckdb")))
        assert intact.exit_code == 0 and result.output == intact.output
        return
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(damaged) in line and "damaged" in line and "rop sync" in line


def test_a_store_damaged_where_a_command_reads_late_is_one_line_too(damaged: Path) -> None:
    """The open can succeed and a block read later fail (the report's facts lie in
    the cut half): the command's error is then the same one line, exit 2, from
    the command group (rop.cli.OptionsAnywhere.invoke), not a traceback."""
    result = rop("report", "--db", str(damaged))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(damaged) in line and "rop sync" in line


# -- a full disk during `rop sync` --------------------------------------------------


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=120)


@pytest.fixture(scope="module")
def emulator(portal_dir: Path) -> Any:
    app = create_app(portal_dir, EmulatorConfig(rate_limit=False, simulate_processing=False))
    with serve_in_thread(app, host="127.0.0.1", port=0) as base:
        yield f"{base}/rest/1/{TOKEN}/"


@pytest.fixture(scope="module")
def reference(emulator: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """What a clean sync of the portal stores."""
    db = tmp_path_factory.mktemp("reference") / "rop.duckdb"
    assert rop("sync", "--webhook", emulator, "--db", str(db)).exit_code == 0
    return data_of(db)


class FullDiskAt:
    """A DuckDB connection whose commits fail as on a full disk after ``ok`` good ones.

    The failed commit is rolled back first, as DuckDB does when it cannot
    write its log, so what the store keeps is what a real full disk leaves.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: str, ok: int) -> None:
        self._conn, self._path, self._ok = conn, path, ok

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.strip().upper() == "COMMIT":
            if self._ok <= 0:
                self._conn.execute("ROLLBACK")
                raise duckdb.TransactionException(
                    "TransactionContext Error: Failed to commit: Could not write file "
                    f'"{self._path}.wal": No space left on device'
                )
            self._ok -= 1
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.mark.parametrize("ok_commits", [0, 3])
def test_full_disk_during_sync_is_one_line_and_the_next_run_completes(
    ok_commits: int,
    emulator: str,
    reference: dict[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "rop.duckdb"
    real_connect = duckdb.connect

    def connect(target: str, **kwargs: Any) -> Any:
        return FullDiskAt(real_connect(target, **kwargs), target, ok_commits)

    with monkeypatch.context() as patch:
        patch.setattr(db_module.duckdb, "connect", connect)
        result = rop("sync", "--webhook", emulator, "--db", str(db))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(db) in line and "disk is full" in line and "free some space" in line
    # Space is back: the next run carries on to exactly the clean copy.
    again = rop("sync", "--webhook", emulator, "--db", str(db))
    assert again.exit_code == 0, again.output
    assert data_of(db) == reference


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A real 64 MB file system (tmpfs); skipped where mounting is not allowed (CI).

    A first copy of the small portal is a 17 MB store (a block or more for each
    of its tables), so 16 MB, the size before the stored facts, no longer held it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_leaves_the_store_exact(
    small_disk: Path, emulator: str, reference: dict[str, list[str]]
) -> None:
    db = small_disk / "rop.duckdb"
    assert rop("sync", "--webhook", emulator, "--db", str(db)).exit_code == 0
    filler = small_disk / "filler"
    with open(filler, "wb") as fh:  # take every byte that is left
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    result = rop("sync", "--full", "--webhook", emulator, "--db", str(db))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(db) in line and "disk is full" in line
    filler.unlink()
    assert data_of(db) == reference
    assert rop("sync", "--full", "--webhook", emulator, "--db", str(db)).exit_code == 0
    assert data_of(db) == reference


# -- a sync past its memory limit ----------------------------------------------------


@pytest.mark.parametrize(("limit", "says"), [
    # Below what the freshly opened store already holds: DuckDB refuses the SET.
    ("1MB", "ROP_SYNC_MEMORY_LIMIT is too small"),
    # Taken, then the first batches do not fit.
    ("8MB", "raise ROP_SYNC_MEMORY_LIMIT"),
])  # fmt: skip
def test_a_sync_past_its_memory_limit_names_the_syncs_setting(
    emulator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, says: str
) -> None:
    # The server's hint (ROP_DB_MEMORY_LIMIT, "a shorter period") means nothing here.
    monkeypatch.setenv("ROP_SYNC_MEMORY_LIMIT", limit)
    result = rop("sync", "--webhook", emulator, "--db", str(tmp_path / "rop.duckdb"))
    assert result.exit_code == 2, (result.output, result.exception)
    line = one_error_line(result)
    assert "memory limit" in line and says in line, line
    assert "ROP_DB_MEMORY_LIMIT" not in line
