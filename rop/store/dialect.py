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
