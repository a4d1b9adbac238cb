"""Command line: thin. Each command parses its options and calls the library.

One module per concept: demo.py (demo-portal, demo), bitrix.py (emulate,
sync), report.py (report, drill and their filter options), rights.py, plans.py,
digests.py, web.py (serve), server.py (migrate, portals), jobs.py (worker); store.py opens the store for a command and problems.py holds
UsageProblem. This module holds the group, registers the commands and runs
them; every command imports what it calls when it runs, so `rop --help`
loads neither DuckDB nor the web stack. A new command goes in its concept's
module and in the tuple below (tests/test_cli_meta.py lists the command set).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from rop.cli.bitrix import emulate_command, sync_command
from rop.cli.demo import demo_command, demo_portal
from rop.cli.digests import digests_command
from rop.cli.jobs import worker_command
from rop.cli.plans import plans_command
from rop.cli.problems import UsageProblem
from rop.cli.report import drill_command, report_command
from rop.cli.rights import rights_command
from rop.cli.server import migrate_command, portals_command
from rop.cli.web import serve_command
from rop.config import SettingsError, load_settings


class OptionsAnywhere(click.Group):
    """`rop --db X report` reads as `rop report --db X`.

    A command's options may come before its name: they are moved right after
    it before click parses, so both orders work for every command (click
    itself still refuses an option the command does not have). The group's
    own options (--help, --version) stay where they are.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._options_after_command(ctx, args))

    def invoke(self, ctx: click.Context) -> Any:
        """A store that fails mid-command (a damaged block read late, a disk gone)
        is one line and exit 2 in every command, not only where it opens: the
        store's errors already name the file and what to do."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            # Only loaded when a command opened a store; `rop --help` loads no DuckDB.
            db = sys.modules.get("rop.store.db")
            if db is not None and isinstance(exc, db.StoreError):
                raise UsageProblem(str(exc)) from None
            raise

    def _options_after_command(self, ctx: click.Context, args: list[str]) -> list[str]:
        own = {o for p in self.params for o in (*p.opts, *p.secondary_opts)}
        own |= set(ctx.help_option_names)
        known = _command_options(self)  # name -> takes a value
        kept: list[str] = []
        moved: list[str] = []
        i = 0
        while i < len(args) and args[i].startswith("-") and args[i] not in ("-", "--"):
            token = args[i]
            name = token.split("=", 1)[0]
            if name in own or name not in known:
                kept.append(token)  # the group's own, or unknown: click decides
            else:
                moved.append(token)
                if known[name] and "=" not in token and i + 1 < len(args):
                    i += 1
                    moved.append(args[i])
            i += 1
        if not moved or i >= len(args) or args[i] == "--":
            return args
        return [*kept, args[i], *moved, *args[i + 1 :]]


def _all_params(group: click.Group) -> list[click.Parameter]:
    out: list[click.Parameter] = []
    for command in group.commands.values():
        out += command.params
        if isinstance(command, click.Group):
            out += _all_params(command)
    return out


def _command_options(group: click.Group) -> dict[str, bool]:
    """Option name -> whether it takes a value, over every command."""
    out: dict[str, bool] = {}
    for p in _all_params(group):
        if isinstance(p, click.Option):
            for name in (*p.opts, *p.secondary_opts):
                out[name] = not (p.is_flag or p.count)
    return out


@click.group(cls=OptionsAnywhere, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rop-report")
def cli() -> None:
    """ROP Report (Отчёт РОПа): the head of sales' report over a Bitrix24 CRM."""


for _command in (
    demo_portal,
    demo_command,
    emulate_command,
    sync_command,
    report_command,
    drill_command,
    rights_command,
    plans_command,
    digests_command,
    serve_command,
    migrate_command,
    portals_command,
    worker_command,
):
    cli.add_command(_command)


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


__all__ = ["cli", "main", "load_settings", "UsageProblem"]
