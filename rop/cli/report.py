"""`rop report` and `rop drill`, with the filter options they share (CONTRACT.md §2)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator

import click

from rop.cli.problems import WHOLE, UsageProblem
from rop.cli.store import HeldByServer, open_report_store


def report_filter_options(fn):
    """The filter options shared by `rop report` and `rop drill` (CONTRACT.md §2)."""
    options = [
        click.option("--db", type=click.Path(dir_okay=False), help="Store file or postgresql:// URL (default: ROP_DB)"),
        click.option("--portal", help="Portal key, when the store holds several"),
        click.option("--from", "date_from", help="First day, YYYY-MM-DD (portal's time zone)"),
        click.option("--to", "date_to", help="Last day, YYYY-MM-DD (inclusive)"),
        click.option("--period", help="Preset instead of dates: this_month, last_week, ..."),
        click.option(
            "--today", help="Count presets and overdue deals from this day, YYYY-MM-DD "
            "(default: the portal's clock at the last sync or load)",
        ),
        click.option("--pipeline", "pipelines", type=WHOLE, multiple=True, help="Pipeline ID"),
        click.option("--key-stage", "key_stages", multiple=True, help="Key deal stage ID"),
        click.option("--key-status", "key_statuses", multiple=True, help="Key lead status ID"),
        click.option("--section", "sections", multiple=True, help="Section to show (default: all)"),
        click.option("--department", "departments", type=WHOLE, multiple=True, help="Department ID"),
        click.option("--manager", "managers", type=WHOLE, multiple=True, help="Manager user ID"),
        click.option("--viewer", type=WHOLE, help="Show what this user may see"),
        click.option(
            "--min-call-seconds", type=WHOLE, default=0, show_default=True,
            help="Call figures: shortest call counted, seconds",
        ),
        click.option(
            "--max-call-seconds", type=WHOLE, help="Call figures: longest call counted, seconds"
        ),
        click.option(
            "--by", type=click.Choice(["manager", "department", "source", "pipeline"]),
            default="manager", show_default=True, help="What a row is",
        ),
        click.option("--no-compare", is_flag=True, help="Leave out the previous period"),
        click.option(
            "--previous", type=click.Choice(["to_date", "full"]), default="to_date",
            show_default=True,
            help="A period that has not ended: its days so far against the same days of the "
            "previous period (to_date), or against the whole previous period (full)",
        ),
        click.option(
            "--stuck-days", type=WHOLE, default=14, show_default=True,
            help="Stage analytics: a deal is stuck after this many days without movement",
        ),
        click.option(
            "--pipeline-stuck-days", "stuck_days_by", multiple=True, metavar="PIPELINE=DAYS",
            help="Stage analytics: this pipeline's own stuck threshold (default: --stuck-days)",
        ),
        click.option(
            "--lang", type=click.Choice(["ru", "en"]),
            help="Language of headers, labels and the CSV dialect (default: ROP_LANGUAGE, ru)",
        ),
        click.option("--out", type=click.Path(dir_okay=False), help="Write to FILE"),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def report_call(fn, *args, **kwargs):
    """Run a report function; bad input and refused access become one line, exit 2."""
    from rop.report.filter import AccessDenied, ReportInputError

    try:
        return fn(*args, **kwargs)
    except ReportInputError as exc:
        raise UsageProblem(str(exc)) from None
    except AccessDenied as exc:
        raise UsageProblem(f"access denied: {exc}") from None


def stuck_days_by(o: dict) -> list[tuple[int, int]]:
    """``--pipeline-stuck-days PIPELINE=DAYS`` options -> (pipeline, days); exit 2 if malformed."""
    from rop.report.options import parse_stuck_override

    return [
        report_call(parse_stuck_override, text, "--pipeline-stuck-days")
        for text in o.get("stuck_days_by") or ()
    ]


def _make_report_filter(store, o: dict):
    from rop.report.options import make_filter

    return report_call(
        make_filter, store, stuck_days_by=stuck_days_by(o), portal=o["portal"], date_from=o["date_from"], date_to=o["date_to"],
        period=o["period"], pipelines=o["pipelines"], key_stages=o["key_stages"],
        key_statuses=o["key_statuses"], sections=o["sections"], departments=o["departments"],
        managers=o["managers"], min_call_seconds=o["min_call_seconds"],
        max_call_seconds=o["max_call_seconds"], by=o["by"], compare=not o["no_compare"],
        previous=o["previous"], viewer=o["viewer"], stuck_days=o["stuck_days"], today=o["today"],
    )  # fmt: skip


def _check_out(fmt: str, out: str | None) -> None:
    """Refuse an output file that cannot be written before the report is built."""
    from pathlib import Path

    if fmt == "xlsx" and not out:
        raise UsageProblem("--format xlsx needs --out FILE")
    if out and not Path(out).resolve().parent.is_dir():
        raise UsageProblem(f"cannot write {out}: no folder {Path(out).resolve().parent}")


@contextlib.contextmanager
def _writing(out: str | None) -> Iterator[None]:
    """A file that still cannot be written (rights, a full disk) is one line, exit 2."""
    from xlsxwriter.exceptions import FileCreateError

    try:
        yield
    except OSError as exc:
        raise UsageProblem(f"cannot write {out}: {exc.strerror or exc}") from None
    except FileCreateError as exc:
        cause = exc.__cause__ or exc.__context__
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else exc
        raise UsageProblem(f"cannot write {out}: {reason}") from None


def _language(lang: str | None, db: str | None) -> str:
    """--lang, else the configured language (ROP_LANGUAGE); it also picks the CSV
    dialect (rop.report.export_csv)."""
    from rop.config import load_settings

    return lang or load_settings(db=db).language


def _emit(text: str, out: str | None) -> None:
    if out:
        with open(out, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _write(
    fmt: str,
    data: dict,
    out: str | None,
    lang: str,
    to_csv: Callable[[dict, str], str],
    to_xlsx: Callable[[dict, str, str], object],
    to_table: Callable[[dict, str], str],
) -> None:
    """One output path for a report or a drill-down, whatever the format."""
    with _writing(out):
        if fmt == "json":
            _emit(json.dumps(data, ensure_ascii=False, indent=2), out)
        elif fmt == "csv":
            _emit(to_csv(data, lang), out)
        elif fmt == "xlsx":
            assert out is not None  # _check_out refused xlsx without --out
            to_xlsx(data, out, lang)
        else:
            _emit(to_table(data, lang), out)


def quality_settings(db: str | None):
    """The data-quality checks and thresholds of the settings (ROP_QUALITY_*)."""
    from rop.config import load_settings
    from rop.metrics.quality import QualitySettings

    s = load_settings(db=db)
    return QualitySettings(s.quality_check_names(), s.quality_stale_days, s.quality_lead_hours)


def _quality_command(fmt: str, o: dict) -> None:
    """`rop report --quality`: the data-quality panel (docs/WEB.md "Data quality")."""
    from rop.report.export_quality import quality_to_table, quality_to_xlsx
    from rop.report.quality import build_quality

    if fmt == "csv":
        raise UsageProblem("--quality: choose --format json, xlsx or table")
    _check_out(fmt, o["out"])
    try:
        store = open_report_store(o["db"])
    except HeldByServer as held:
        from rop.cli import remote

        panel = remote.quality(held.holder, o)
    else:
        with store:
            flt = _make_report_filter(store, o)
            settings = quality_settings(o["db"])
            panel = report_call(build_quality, store, flt, settings, portal=o["portal"])
    lang = _language(o["lang"], o["db"])

    def to_xlsx(data: dict, out: str, lang: str) -> None:
        with open(out, "wb") as fh:
            fh.write(quality_to_xlsx(data, lang))

    _write(fmt, panel, o["out"], lang, lambda d, lang: "", to_xlsx, quality_to_table)


@click.command("report")
@report_filter_options
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv", "xlsx", "table"]), default="table",
    show_default=True, help="Output format (xlsx needs --out)",
)  # fmt: skip
@click.option(
    "--quality", is_flag=True,
    help="The data-quality panel (checks per manager, activities) instead of the report",
)  # fmt: skip
@click.option(
    "--no-stages", is_flag=True,
    help="Leave out the stage section (matrix, time in stage, funnel, stuck)",
)  # fmt: skip
def report_command(fmt: str, quality: bool, no_stages: bool, **o) -> None:
    """The report: rows per manager, department subtotals, total and the previous period."""
    from rop.report.build import build_report
    from rop.report.export import report_to_csv, report_to_xlsx
    from rop.report.table import report_to_table

    if quality:
        return _quality_command(fmt, o)
    _check_out(fmt, o["out"])
    try:
        store = open_report_store(o["db"])
    except HeldByServer as held:
        from rop.cli import remote

        report = remote.report(held.holder, o, stages=not no_stages)
    else:
        with store:
            flt = _make_report_filter(store, o)
            report = report_call(build_report, store, flt, portal=o["portal"], stages=not no_stages)
    lang = _language(o["lang"], o["db"])
    _write(fmt, report, o["out"], lang, report_to_csv, report_to_xlsx, report_to_table)


@click.command("drill")
@click.option("--figure", required=True, help="Figure key, e.g. deals_won or deal_stage:C1:NEW")
@click.option("--user", "user_id", type=WHOLE, help="Manager's row (default: the total)")
@click.option("--department-row", "department_id", type=WHOLE, help="Department subtotal's row")
@click.option("--key", "row_key", help="Row key when rows are by department/source/pipeline")
@click.option(
    "--none-row", is_flag=True,
    help='The "—" row: records with no department/source/pipeline (by manager: '
    "the no-department subtotal)",
)  # fmt: skip
@click.option("--sort", help="Column to sort by")
@click.option("--desc", is_flag=True, help="Sort descending")
@click.option("--limit", type=WHOLE, help="At most this many records (default: all)")
@click.option("--offset", type=WHOLE, default=0, help="Skip this many records first")
@report_filter_options
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv", "xlsx", "table"]), default="json",
    show_default=True, help="Output format (xlsx needs --out)",
)  # fmt: skip
def drill_command(
    figure: str, user_id: int | None, department_id: int | None, row_key: str | None,
    none_row: bool, sort: str | None, desc: bool, limit: int | None, offset: int, fmt: str, **o,
) -> None:  # fmt: skip
    """The records behind one figure of the report."""
    from rop.report.build import drill
    from rop.report.export import drill_to_csv, drill_to_xlsx
    from rop.report.table import drill_to_table

    _check_out(fmt, o["out"])
    try:
        store = open_report_store(o["db"])
    except HeldByServer as held:
        from rop.cli import remote

        result = remote.drill(
            held.holder, o, figure, user_id=user_id, department_id=department_id,
            row_key=row_key, none_row=none_row, sort=sort, desc=desc, offset=offset,
            limit=limit,
        )  # fmt: skip
    else:
        with store:
            flt = _make_report_filter(store, o)
            result = report_call(
                drill, store, flt, figure, user_id=user_id, department_id=department_id,
                portal=o["portal"], sort=sort, desc=desc, offset=offset, limit=limit,
                key=row_key, none_row=none_row, quality=quality_settings(o["db"]),
            )  # fmt: skip
    lang = _language(o["lang"], o["db"])
    _write(fmt, result, o["out"], lang, drill_to_csv, drill_to_xlsx, drill_to_table)
