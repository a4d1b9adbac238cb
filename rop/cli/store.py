"""Opening the store from a command, with the messages a person can act on."""

from __future__ import annotations

import json
from pathlib import Path

from rop.cli.problems import UsageProblem
from rop.config import load_settings


def open_report_store(db: str | None):
    """The existing store for a read command (report, drill, rights); never creates one."""
    from rop.store.db import StoreError, open_store

    path = load_settings(db=db).db
    if not Path(path).exists():
        raise UsageProblem(f"no store at {path}: run `rop sync` first or pass --db")
    try:
        return open_store(path)
    except StoreError as exc:
        raise UsageProblem(locked_by_server(path, str(exc)) or str(exc)) from None


def locked_by_server(path: str | Path, problem: str) -> str | None:
    """When `rop serve` holds the store, say where its report is instead of DuckDB's lock text."""
    from rop.bitrix.sync_remote import is_lock_error
    from rop.store.holder import server_file

    if not is_lock_error(problem):
        return None
    try:
        url = str(json.loads(server_file(path).read_text(encoding="utf-8"))["url"]).rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (
        f"the store {path} is open in `rop serve` at {url}: see {url}/report "
        f"(or {url}/report.json), or stop the server first"
    )
