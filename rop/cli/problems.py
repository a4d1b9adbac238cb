"""The one error type of the command line (re-exported as rop.cli.UsageProblem).

It lives apart from the group so every command module can raise it without
importing the package that imports them.
"""

from __future__ import annotations

import click


class UsageProblem(click.ClickException):
    """One clear line naming the problem; exit code 2 (bad input)."""

    exit_code = 2
