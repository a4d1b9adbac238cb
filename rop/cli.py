"""Command line: thin. Each command parses its options and calls the library."""

from __future__ import annotations

import sys

import click

from rop.config import SettingsError, load_settings


class UsageProblem(click.ClickException):
    """One clear line naming the problem; exit code 2 (bad input)."""

    exit_code = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rop-report")
def cli() -> None:
    """ROP Report (Отчёт РОПа): the head of sales' report over a Bitrix24 CRM."""


@cli.command("demo-portal")
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write"
)
@click.option("--seed", default=1, show_default=True, help="Random seed (same seed, same files)")
@click.option("--deals", default=20000, show_default=True, help="Number of deals")
@click.option("--months", default=12, show_default=True, help="Months of history")
def demo_portal(out: str, seed: int, deals: int, months: int) -> None:
    """Write a generated demo portal snapshot folder."""
    from rop.demo.generator import generate

    generate(out, seed=seed, deals=deals, months=months)
    click.echo(f"demo portal generated at {out}")


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


__all__ = ["cli", "main", "load_settings", "UsageProblem"]
