"""Errors the report raises; rop.report.filter re-exports them."""

from __future__ import annotations

from typing import Protocol


class ReportInputError(ValueError):
    """Bad input to the report; the message names the problem."""


class AccessDenied(PermissionError):
    """A drill-down outside the viewer's scope."""


class ColumnChoice(Protocol):
    """What the catalogue reads from a report filter (rop.report.filter.ReportFilter)."""

    @property
    def sections(self) -> tuple[str, ...]: ...
    @property
    def key_stages(self) -> tuple[str, ...]: ...
    @property
    def key_statuses(self) -> tuple[str, ...]: ...
