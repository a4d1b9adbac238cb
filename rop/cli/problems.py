"""The one error type of the command line (re-exported as rop.cli.UsageProblem).

It lives apart from the group so every command module can raise it without
importing the package that imports them.
"""

from __future__ import annotations

import click


class UsageProblem(click.ClickException):
    """One clear line naming the problem; exit code 2 (bad input)."""

    exit_code = 2


class Whole(click.ParamType):
    """A whole number in the range the report accepts (rop.report.bounds), named by its option."""

    name = "integer"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        from rop.report.bounds import MAX_WHOLE

        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip()
            if not text.lstrip("+-").isdigit() or not text.isascii():
                self.fail(f"{value!r} is not a whole number", param, ctx)
            # Thousands of digits are refused by int() itself: too large anyway.
            number = int(text) if len(text) <= 40 else MAX_WHOLE + 1
        if number < 0:
            self.fail(f"{value} must be 0 or more", param, ctx)
        if number > MAX_WHOLE:
            self.fail(f"{str(value)[:40]} is too large (at most {MAX_WHOLE})", param, ctx)
        return number


WHOLE = Whole()
