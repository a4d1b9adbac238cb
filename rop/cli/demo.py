"""`rop demo-portal` (write a generated snapshot) and `rop demo` (the whole product)."""

from __future__ import annotations

import click

from rop.cli.problems import UsageProblem
from rop.config import load_settings


@click.command("demo-portal")
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write"
)
@click.option("--seed", default=1, show_default=True, help="Random seed (same seed, same files)")
@click.option("--deals", default=20000, show_default=True, help="Number of deals")
@click.option("--months", default=12, show_default=True, help="Months of history")
def demo_portal(out: str, seed: int, deals: int, months: int) -> None:
    """Write a generated demo portal snapshot folder."""
    from rop.demo.generator import generate

    try:
        generate(out, seed=seed, deals=deals, months=months)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    except OSError as exc:
        raise UsageProblem(
            f"cannot write the demo portal to {out}: {exc.strerror or exc}"
        ) from None
    click.echo(f"demo portal generated at {out}")


@click.command("demo")
@click.option("--deals", default=20000, show_default=True, help="Deals in the generated portal")
@click.option("--port", type=int, help="Web report port (default: ROP_PORT or 8000)")
@click.option("--host", help="Address to listen on (default: ROP_HOST or 127.0.0.1)")
def demo_command(deals: int, port: int | None, host: str | None) -> None:
    """The whole product on a generated demo portal: generate, emulate, sync, serve."""
    from rop.rundemo import DemoError, run_demo
    from rop.store.db import StoreError

    try:
        run_demo(load_settings(port=port, host=host), deals=deals, say=click.echo)
    except DemoError as exc:
        raise UsageProblem(str(exc)) from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
