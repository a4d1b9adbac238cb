"""The few SQL spellings where DuckDB and PostgreSQL differ.

Everything else in the project is written in their common subset. A store
names its dialect (``Store.dialect``); the SQL builders take it from there,
so one catalogue renders for both engines (tests/test_dialect.py keeps a
snapshot of what each renders). Parameters are written ``$name`` (named) or
``?`` (positional) everywhere; :func:`to_pyformat` is the one place that
rewrites them for psycopg.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def epoch_seconds(expr: str) -> str:
    """Seconds since 1970 of a TIMESTAMP expression, as a double in both engines.

    PostgreSQL's EXTRACT gives ``numeric`` (exact decimals): arithmetic on it
    rounds differently from DuckDB's doubles (35.701388888888886 against
    ...89), so the report's JSON would differ in its last digit.
    """
    return f"CAST(EXTRACT(EPOCH FROM {expr}) AS DOUBLE PRECISION)"


def days_between(later: str, earlier: str) -> str:
    """Fractional days between two TIMESTAMP expressions."""
    return f"(({epoch_seconds(later)} - {epoch_seconds(earlier)}) / 86400.0)"


@dataclass(frozen=True)
class Dialect:
    """One engine's spellings of what the common subset lacks."""

    name: str

    def list_agg(self, expr: str) -> str:
        """An aggregate collecting ``expr`` into a list (DuckDB LIST, PostgreSQL array)."""
        return f"array_agg({expr})" if self.name == "postgres" else f"list({expr})"

    def any_in_range(self, list_expr: str, low: str, high: str) -> str:
        """True when some element of a list lies in [low, high)."""
        if self.name == "postgres":
            return (
                f"EXISTS (SELECT 1 FROM unnest({list_expr}) AS t(v) "  # noqa: S608
                f"WHERE t.v >= {low} AND t.v < {high})"
            )
        # DuckDB: a vectorised lambda over the list, no correlated subquery.
        return f"len(list_filter({list_expr}, lambda t: t >= {low} AND t < {high})) > 0"

    def median(self, expr: str) -> str:
        """The median of ``expr`` over a group, NULLs ignored."""
        if self.name == "postgres":
            return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {expr})"
        return f"median({expr})"

    def page_order_key(self, expr: str) -> str:
        """``expr`` as the first sort key of a page (``ORDER BY ... LIMIT n``) that
        no index should walk: PostgreSQL's planner costs a LIMIT as stopping
        early and walks an index in that order (a drill-down's list by ID: the
        primary key, every fact of the portal filtered), but a ``count(*) OVER ()``
        beside the page reads every row anyway. ``expr + 0`` (same values, same
        order) is no indexed expression, so the filter's own index is read and the
        few matching rows sorted: 1M deals, 2.1 s -> ~30 ms (docs/BENCHMARKS.md,
        PostgreSQL thirteenth run). DuckDB has no such plan: unchanged."""
        return f"({expr} + 0)" if self.name == "postgres" else expr


DUCKDB = Dialect("duckdb")
POSTGRES = Dialect("postgres")


# A comment (its apostrophes are no quotes), a quoted string or identifier,
# a $name or ? parameter, or a lone % (which psycopg would read as a placeholder).
_TOKEN = re.compile(
    r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$([A-Za-z_][A-Za-z0-9_]*)|\?|%",
    re.DOTALL,
)


def to_pyformat(sql: str) -> str:
    """``$name`` -> ``%(name)s``, ``?`` -> ``%s``, ``%`` -> ``%%``; literals left alone.

    Quoted text is copied as is except its ``%`` (psycopg scans the whole
    statement for placeholders, string literals included).
    """

    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        if token[0] in "'\"" or token.startswith(("--", "/*")):
            return token.replace("%", "%%")
        if m.group(1):
            return f"%({m.group(1)})s"
        return "%s" if token == "?" else "%%"

    return _TOKEN.sub(swap, sql)


def median(expr: str) -> str:
    """The median of ``expr`` over a group, NULLs ignored (DuckDB's spelling).

    PostgreSQL: ``percentile_cont(0.5) WITHIN GROUP (ORDER BY expr)``; the
    stage report still calls this module-level DuckDB spelling (not yet
    threaded through ``Store.dialect``).
    """
    return f"median({expr})"
