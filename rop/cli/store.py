"""Opening the store for a command, with the messages a person can act on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rop.cli.problems import UsageProblem
from rop.config import default_db_path, load_settings

if TYPE_CHECKING:  # rop.store loads DuckDB: commands import it when they run
    from rop.store.holder import Holder


class HeldByServer(UsageProblem):
    """The store is open in `rop serve`, which answers for it (rop.cli.remote).

    Raised only when the server's file carries its token; without one the
    command stops with the server's URL instead.
    """

    def __init__(self, path: str | Path, holder: Holder) -> None:
        super().__init__(f"the store {path} is open in `rop serve` at {holder.url}")
        self.path = path
        self.holder = holder


def report_store_path(db: str | None) -> Path | str:
    """The store a read command reads: ``--db``/ROP_DB, else the default, else the demo's.

    After `make demo` only the demo's store exists (beside the default one);
    a report with no --db reads it, saying so, rather than finding nothing.
    """
    settings = load_settings(db=db)
    if isinstance(settings.db, str):
        return settings.db  # a postgresql:// URL: the server answers for it
    path = Path(settings.db)
    if path.exists():
        return path
    if db is None and path == default_db_path():
        from rop.rundemo import demo_paths

        demo = demo_paths(settings)[1]
        if demo.exists():
            click.echo(f"no store at {path}; reading the demo's store {demo}", err=True)
            return demo
        raise UsageProblem(
            f"no store at {path}: run `rop sync` first (or `rop demo`, whose store is "
            f"{demo}), or pass --db"
        )
    raise UsageProblem(f"no store at {path}: run `rop sync` first or pass --db")


def open_report_store(db: str | None):
    """The existing store for a read command (report, drill, rights); never creates one.

    Raises HeldByServer when `rop serve` holds it and can answer instead.
    """
    from rop.store.db import StoreError, open_store

    path = report_store_path(db)
    try:
        return open_store(path)
    except StoreError as exc:
        holder = _holder(path, str(exc))
        if holder is not None and holder.token:
            raise HeldByServer(path, holder) from None
        raise UsageProblem(locked_by_server(path, str(exc)) or str(exc)) from None


def _holder(path: str | Path, problem: str) -> Holder | None:
    from rop.bitrix.sync_remote import is_lock_error
    from rop.store.holder import read_holder

    if not is_lock_error(problem):
        return None
    try:
        return read_holder(path)
    except ValueError:
        return None


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


def store_options(fn: Any) -> Any:
    """--db and --portal after a group's subcommand too (`rop rights show --db X`)."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None and param.name:
            ctx.obj[param.name] = value

    fn = click.option(
        "--portal", expose_value=False, callback=remember, help="Portal key, when several"
    )(fn)
    return click.option(
        "--db", type=click.Path(dir_okay=False), expose_value=False, callback=remember,
        help="Store file (default: ROP_DB)",
    )(fn)  # fmt: skip
