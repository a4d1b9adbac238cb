"""The few SQL spellings where DuckDB and PostgreSQL differ.

Everything else in the project is written in their common subset; a future
PostgreSQL backend supplies its own versions of these functions.
"""

from __future__ import annotations


def epoch_seconds(expr: str) -> str:
    """Seconds since 1970 of a TIMESTAMP expression (works in both engines)."""
    return f"EXTRACT(EPOCH FROM {expr})"


def days_between(later: str, earlier: str) -> str:
    """Fractional days between two TIMESTAMP expressions."""
    return f"(({epoch_seconds(later)} - {epoch_seconds(earlier)}) / 86400.0)"


def list_agg(expr: str) -> str:
    """An aggregate that collects ``expr`` into a list (PostgreSQL: ``array_agg``)."""
    return f"list({expr})"


def any_in_range(list_expr: str, low: str, high: str) -> str:
    """True when some element of a list lies in [low, high).

    PostgreSQL: ``EXISTS (SELECT 1 FROM unnest(l) AS t(v) WHERE v >= low AND v < high)``.
    """
    return f"len(list_filter({list_expr}, lambda t: t >= {low} AND t < {high})) > 0"


# Named parameters are written ``$name`` (DuckDB); a PostgreSQL backend
# rewrites them to its driver's style (``%(name)s``) in one pass.


def median(expr: str) -> str:
    """The median of ``expr`` over a group, NULLs ignored.

    PostgreSQL: ``percentile_cont(0.5) WITHIN GROUP (ORDER BY expr)``.
    """
    return f"median({expr})"
