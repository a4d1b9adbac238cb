"""The report and drill-downs as files: CSV (rop.report.export_csv), XLSX
(rop.report.export_xlsx), and the names they are downloaded under.

The web routes and the CLI both go through these functions, so a file is the
same whichever way it was asked for.
"""

from __future__ import annotations

from rop.report.export_csv import drill_csv_parts, drill_to_csv, report_to_csv
from rop.report.export_safe import content_disposition
from rop.report.export_xlsx import drill_to_xlsx, report_to_xlsx

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def report_file_name(report: dict, fmt: str) -> str:
    period = report["period"]
    return f"rop-report-{period['from']}-{period['to']}.{fmt}"


def drill_file_name(result: dict, fmt: str) -> str:
    """Built from a CRM identifier (a stage ``C3:СЧЁТ``): give it to
    ``content_disposition``, which makes it safe for a header."""
    period = result.get("period") or {}
    return f"rop-drill-{result['figure']}-{period.get('from')}-{period.get('to')}.{fmt}"


__all__ = [
    "MEDIA_TYPES",
    "content_disposition",
    "drill_csv_parts",
    "drill_file_name",
    "drill_to_csv",
    "drill_to_xlsx",
    "report_file_name",
    "report_to_csv",
    "report_to_xlsx",
]
