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
@click.option(
    "--app",
    "as_app",
    is_flag=True,
    help="Run the emulated portal with the report as its Bitrix24 application",
)
def demo_command(deals: int, port: int | None, host: str | None, as_app: bool) -> None:
    """The whole product on a generated demo portal: generate, emulate, sync, serve."""
    from rop.rundemo import DemoError, run_demo, run_demo_app
    from rop.store.db import StoreError

    try:
        settings = load_settings(port=port, host=host)
        if as_app:
            run_demo_app(settings, deals=deals, say=click.echo)
        else:
            run_demo(settings, deals=deals, say=click.echo)
    except (DemoError, StoreError) as exc:
        raise UsageProblem(str(exc)) from None
