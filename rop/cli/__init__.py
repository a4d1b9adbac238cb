"""Command line: thin. Each command parses its options and calls the library.

One module per concept: demo.py (demo-portal, demo), bitrix.py (emulate,
sync), report.py (report, drill and their filter options), rights.py,
web.py (serve); store.py opens the store for a command and problems.py holds
UsageProblem. This module holds the group, registers the commands and runs
them; every command imports what it calls when it runs, so `rop --help`
loads neither DuckDB nor the web stack. A new command goes in its concept's
module and in the tuple below (tests/test_cli_meta.py lists the command set).
"""

from __future__ import annotations

import sys

import click

from rop.cli.bitrix import emulate_command, sync_command
from rop.cli.demo import demo_command, demo_portal
from rop.cli.problems import UsageProblem
from rop.cli.report import drill_command, report_command
from rop.cli.rights import rights_command
from rop.cli.web import serve_command
from rop.config import SettingsError, load_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    serve_command,
):
    cli.add_command(_command)


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


__all__ = ["cli", "main", "load_settings", "UsageProblem"]
