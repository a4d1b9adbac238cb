"""The drill-down: the records behind one number of the report, rights-aware.

Its SQL is compiled from the same figure definition as the report's number
(rop.metrics.compile), and the number itself comes with the page.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from rop.metrics.catalogue import FUNNEL_PREFIX, funnel_figure
from rop.metrics.catalogue import figure as find_figure
from rop.metrics.compile import (
    GROUP_EXPR,
    Context,
    bind,
    combine,
    drill_columns,
    drill_sql,
    params_for,
    value_sql,
)
from rop.metrics.quality import SOURCES as QUALITY_SOURCES
from rop.metrics.quality import QualitySettings
from rop.metrics.sources import SOURCES
from rop.metrics.stages import STAGE_SOURCES
from rop.report.bounds import check_whole
from rop.report.context import (
    Prepared,
    check_department,
    check_user,
    context,
    filter_names,
    prepare,
)
from rop.report.filter import AccessDenied, ReportFilter, ReportInputError
from rop.store.db import Store


def _jsonable(value: Any, prep: Prepared) -> Any:
    if isinstance(value, datetime):
        # Moments are shown in the portal's clock, as its users read them.
        return value.replace(tzinfo=UTC).astimezone(prep.tz).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


_CARDS = {"LEAD": "lead", "CONTACT": "contact", "COMPANY": "company", "DEAL": "deal"}


def _record_url(prep: Prepared, entity: str, rec: dict[str, Any]) -> str | None:
    if entity == "call":
        kind = _CARDS.get(str(rec.get("crm_entity_type") or "").upper())
        target = rec.get("crm_entity_id")
        if kind is None or target is None:
            return None
        return prep.portal.link(f"/crm/{kind}/details/{target}/")
    if entity == "activity":
        # An activity opens on its owner's card (crm.enum.ownertype).
        owners = {1: "lead", 2: "deal", 3: "contact", 4: "company"}
        owner = owners.get(int(rec.get("owner_type_id") or 0))
        if owner is None or rec.get("owner_id") is None:
            return None
        return prep.portal.link(f"/crm/{owner}/details/{rec['owner_id']}/")
    return prep.portal.link(f"/crm/{entity}/details/{rec['id']}/")


# A recording kept on the portal's Drive (RECORD_FILE_ID) opens in the Drive.
_DRIVE_FILE = "/bitrix/tools/disk/focus.php?objectId={id}&cmd=show&action=showObjectInGrid&ncc=1"


def _record_link(prep: Prepared, value: Any) -> str | None:
    """A call's recording as a link: the portal's URL (http/https only: this is
    CRM data and becomes an href), or its Drive file's page; else none."""
    text = str(value or "").strip()
    if text.startswith("file:") and text[5:].isdigit():
        return prep.portal.link(_DRIVE_FILE.format(id=int(text[5:])))
    if text.lower().startswith(("https://", "http://")):
        return text
    return None


def drill(
    store: Store,
    flt: ReportFilter,
    figure: str,
    *,
    user_id: int | None = None,
    department_id: int | None = None,
    portal: str | None = None,
    sort: str | None = None,
    desc: bool = False,
    offset: int = 0,
    limit: int | None = None,
    key: Any = None,
    none_row: bool = False,
    quality: QualitySettings | None = None,
) -> dict:
    """The records behind one number of the report; refused outside the viewer's scope.

    ``quality``: the thresholds of the data-quality checks (the settings'),
    for a figure of the data-quality panel (rop.report.quality).

    ``user_id`` is a manager's row, ``department_id`` a department's subtotal,
    ``key`` a row when rows are by department/source/pipeline, ``none_row``
    the row of records with none ("—": no department, source or pipeline; by
    manager, the "no department" subtotal); none of them is the grand total.
    A flag, not a key value, so it cannot meet a real key.
    """
    if figure == "forecast_pipeline":
        return _forecast(store, flt, portal, user_id, department_id, offset, limit)
    plan = _plan(store, flt, figure, user_id, department_id, portal, sort, desc, offset, limit,
                 key, none_row, quality)  # fmt: skip
    fig, ctx, where, params = plan.fig, plan.ctx, plan.where, plan.params
    records = store.query_dicts(plan.sql, bind(plan.sql, params))
    if records:
        total = int(records[0]["_total"])
        value = combine(fig, 0, records[0])
    else:
        # An empty page: the figure over all its records, without listing them.
        vsql = value_sql(plan.source, fig, ctx, where)
        counted = store.query_dicts(vsql, bind(vsql, params))[0]
        value = combine(fig, 0, counted)
        total = 0
        if offset:
            count_sql, _ = drill_sql(plan.source, fig, ctx, where, "f.id", 1, 0)
            got = store.query_dicts(count_sql, bind(count_sql, params))
            total = int(got[0]["_total"]) if got else 0
    head = plan.head()
    # The keys in their old order (JSON readers see the same document).
    order = ["figure", "label_ru", "label_en", "kind", "measure", "value", "value_column",
             "entity", "records", "columns", "total_records"]  # fmt: skip
    extra = {"value": value, "records": plan.records(store, records), "total_records": total}
    out = {k: extra[k] if k in extra else head[k] for k in order}
    return out | {k: v for k, v in head.items() if k not in out}


# Records an export reads at a time (drill_chunks): a few MB of Python objects.
EXPORT_CHUNK = 5000


def drill_chunks(
    store: Store,
    flt: ReportFilter,
    figure: str,
    *,
    user_id: int | None = None,
    department_id: int | None = None,
    portal: str | None = None,
    sort: str | None = None,
    desc: bool = False,
    key: Any = None,
    none_row: bool = False,
    quality: QualitySettings | None = None,
    chunk: int | None = None,
) -> tuple[dict, Iterator[list[dict[str, Any]]]]:
    """Every record behind one number, for an export: the drill-down's head
    (figure, columns, period; no value nor count) and its records ``chunk`` at a
    time, so a list of two million calls is never held whole.

    Every check (filter, rights, sort) is done, and the first chunk read, before
    this returns: a refusal comes before a file starts. The records come from one
    statement on a handle of their own (one snapshot of the data: a sync that
    commits meanwhile is not seen), closed when the chunks end or are dropped.
    """
    chunk = EXPORT_CHUNK if chunk is None else max(1, check_whole(chunk, "chunk"))
    if figure == "forecast_pipeline":
        # The forecast's deals are computed whole by rop.report.forecast anyway.
        result = _forecast(store, flt, portal, user_id, department_id, 0, None)
        records = result.pop("records")
        return result, iter([records[i : i + chunk] for i in range(0, len(records), chunk)])
    # Its own statement: the rows alone, without the page's count and value
    # over the whole list (windows DuckDB fills only once it has held every row).
    plan = _plan(store, flt, figure, user_id, department_id, portal, sort, desc, 0, None,
                 key, none_row, quality, totals=False)  # fmt: skip
    known = plan.known_users(store)
    reader = store.cursor()

    def chunks() -> Generator[list[dict[str, Any]], None, None]:
        try:
            for rows in reader.query_chunks(plan.sql, bind(plan.sql, plan.params), chunk):
                yield plan.records(store, rows, known)
        finally:
            reader.close()

    stream = chunks()
    try:
        first = next(stream, None)
    except BaseException:
        stream.close()
        raise
    if first is None:
        return plan.head(), iter(())
    return plan.head(), itertools.chain([first], stream)


@dataclass(frozen=True)
class _Plan:
    """A drill-down checked and compiled: its statement, and how its rows become records."""

    prep: Prepared
    names: dict
    fig: Any
    source: Any
    cols: tuple
    ctx: Context
    where: str
    sql: str
    params: dict[str, Any]
    user_id: int | None
    department_id: int | None
    key: Any
    none_row: bool

    def known_users(self, store: Store) -> set[int]:
        # Owners unknown to user.get are named "user #ID" by SQL; the flag lets a
        # page say it in its language (rop.report.formatting.unknown_user_name).
        # The users' IDs: a directory remembered until the data changes (rop.store.memo).
        return {
            uid
            for (uid,) in store.query_remembered(
                "SELECT id FROM users WHERE portal = ?", [self.prep.portal.key]
            )
        }

    def records(
        self, store: Store, rows: list[dict[str, Any]], known: set[int] | None = None
    ) -> list[dict[str, Any]]:
        known_users = self.known_users(store) if known is None else known
        prep, entity = self.prep, self.source.entity
        out_records = []
        for rec in rows:
            rec["manager_unknown"] = rec.get("manager_id") is not None and (
                rec["manager_id"] not in known_users
            )
            for name in [k for k in rec if k == "_total" or k.startswith("a0_")]:
                del rec[name]
            item = {k: _jsonable(v, prep) for k, v in rec.items()}
            item["url"] = _record_url(prep, entity, rec)
            if "record" in item:
                item["record"] = _record_link(prep, item["record"])
            out_records.append(item)
        return out_records

    def head(self) -> dict[str, Any]:
        fig, flt, prep = self.fig, self.prep.flt, self.prep
        value_column = None
        if fig.measure in ("sum", "mean"):
            value_column = next((c.key for c in self.cols if c.expr == fig.value), "value")
        return {
            "figure": fig.key,
            "label_ru": fig.label_ru,
            "label_en": fig.label_en,
            "kind": fig.kind,
            "measure": fig.measure,
            "value_column": value_column,
            "entity": self.source.entity,
            "columns": [{"key": "id", "label_ru": "ID", "label_en": "ID", "kind": "count"}]
            + [c.as_json() for c in self.cols],
            "description": flt.describe("ru", self.names),
            "description_en": flt.describe("en", self.names),
            "period": {"from": flt.date_from.isoformat(), "to": flt.date_to.isoformat(),
                       "timezone": prep.portal.timezone},
            "today": prep.today.isoformat(),
            "user_id": self.user_id,
            "department_id": self.department_id,
            "key": self.key,
            "none_row": self.none_row,
        }  # fmt: skip


def _plan(
    store: Store,
    flt: ReportFilter,
    figure: str,
    user_id: int | None,
    department_id: int | None,
    portal: str | None,
    sort: str | None,
    desc: bool,
    offset: int,
    limit: int | None,
    key: Any,
    none_row: bool,
    quality: QualitySettings | None,
    totals: bool = True,
) -> _Plan:
    """Every check of a drill-down (figure, section, rights, sort) and its statement;
    ``totals``: with the list's count and the figure's value (a page, not an export)."""
    fig = find_figure(figure)
    # A key stage/status column may be drilled without being chosen as a column:
    # adding it to the filter checks that it exists (and is in the chosen pipelines).
    ident = fig.key.split(":", 1)[1] if ":" in fig.key else ""
    if fig.key.startswith("deal_stage:") and ident not in flt.key_stages:
        flt = replace(flt, key_stages=(*flt.key_stages, ident))
    if fig.key.startswith("lead_status:") and ident not in flt.key_statuses:
        flt = replace(flt, key_statuses=(*flt.key_statuses, ident))
    prep = prepare(store, flt, portal)
    names = filter_names(prep)
    if fig.key.startswith(FUNNEL_PREFIX):
        # A funnel step (the page's picture) is titled by its stage's name.
        if ("stage", ident) not in names:
            raise ReportInputError("unknown_stage", stage=ident)
        fig = funnel_figure(ident, names[("stage", ident)])
    panel = fig.source in QUALITY_SOURCES
    if fig.section not in flt.sections and not panel:
        raise ReportInputError("hidden_section", figure=figure, section=fig.section)
    check_whole(offset, "offset")
    if limit is not None:
        check_whole(limit, "limit")
    if panel:
        from rop.report.quality import quality_context

        ctx = quality_context(prep, quality or QualitySettings())
    else:
        ctx = context(prep, flt.date_from, flt.date_to)
    source = SOURCES.get(fig.source) or STAGE_SOURCES.get(fig.source) or QUALITY_SOURCES[fig.source]
    where, extra = _drill_where(prep, ctx, user_id, department_id, key, source.entity, none_row)
    cols_all = {c.key: c for c in source.columns}
    cols = drill_columns(source, fig)
    by_key = {c.key: c for c in cols} | cols_all
    if sort is not None and sort != "id" and sort not in by_key:
        raise ReportInputError("bad_sort", sort=sort, choices=", ".join(by_key))
    direction = "DESC" if desc else "ASC"
    order_expr = "f.id" if sort in (None, "id") else by_key[sort].expr
    if order_expr == "f.id" and limit is not None:
        order_expr = store.dialect.page_order_key(order_expr)  # no primary-key walk
    order = f"{order_expr} {direction} NULLS LAST, f.id"
    sql, cols = drill_sql(source, fig, ctx, where, order, limit, offset, totals)
    params = params_for(ctx, [fig]) | extra
    return _Plan(prep, names, fig, source, cols, ctx, where, sql, params,
                 user_id, department_id, key, none_row)  # fmt: skip


def _forecast(
    store: Store,
    flt: ReportFilter,
    portal: str | None,
    user_id: int | None,
    department_id: int | None,
    offset: int,
    limit: int | None,
) -> dict:
    """The deals behind the weighted-pipeline forecast (rop.report.forecast), by
    the same route as every drill-down; the period must be a month or a quarter."""
    from rop.report.forecast import forecast_drill
    from rop.report.plans import period_of

    period = period_of(flt.date_from, flt.date_to)
    if period is None:
        raise ReportInputError("bad_plan_period", text=f"{flt.date_from}..{flt.date_to}")
    prep = prepare(store, flt, portal)
    names = filter_names(prep)
    out = forecast_drill(prep, period, user_id=user_id, department_id=department_id)
    check_whole(offset, "offset")
    end = None if limit is None else offset + check_whole(limit, "limit")
    out["records"] = out["records"][offset:end]
    out["description"] = flt.describe("ru", names)
    out["description_en"] = flt.describe("en", names)
    return out


def _drill_where(
    prep: Prepared,
    ctx: Context,
    user_id: int | None,
    department_id: int | None,
    key: Any,
    entity: str | None = None,
    none_row: bool = False,
) -> tuple[str, dict[str, Any]]:
    key_of = prep.portal.key
    if key is not None and not str(key).strip():
        raise ReportInputError("empty_row_key")
    if none_row:
        if user_id is not None or department_id is not None or key is not None:
            raise ReportInputError("several_rows")
        # By manager the "—" row is the subtotal of managers with no department.
        group = "department" if ctx.group == "manager" else ctx.group
        return f"{GROUP_EXPR[group]} IS NULL", {}
    if user_id is not None:
        check_user(prep.store, key_of, prep.scope, user_id)
        # In app mode a user may be visible for deals and not for calls:
        # refused, not an empty list (issue 10).
        if entity and not prep.scope.sees_in(user_id, entity):
            raise AccessDenied(user_id)
        return "f.manager_id = $drill_user", {"drill_user": user_id}
    if department_id is not None:
        check_department(prep.store, key_of, prep.flt.viewer, prep.scope, department_id)
        return "f.department_id = $drill_dept", {"drill_dept": department_id}
    if key is not None:
        expr = GROUP_EXPR[ctx.group]
        if ctx.group == "source":
            key = str(key)
        else:
            try:
                key = check_whole(int(key), "row")
            except (TypeError, ValueError):
                raise ReportInputError("bad_row_key", key=key) from None
            # A row names a manager, a department or a pipeline: the same
            # checks as choosing it in the filter.
            if ctx.group == "manager":
                check_user(prep.store, key_of, prep.scope, key)
            elif ctx.group == "department":
                check_department(prep.store, key_of, prep.flt.viewer, prep.scope, key)
            else:
                _check_pipeline(prep, key)
                key = str(key)
        return f"{expr} = $drill_key", {"drill_key": key}
    return "TRUE", {}


def _check_pipeline(prep: Prepared, pipeline: int) -> None:
    known = {0} | {
        p
        for (p,) in prep.store.query_remembered(
            "SELECT id FROM pipelines WHERE portal = ?", [prep.portal.key]
        )
    }
    if pipeline not in known:
        raise ReportInputError(
            "unknown_pipeline", pipeline=pipeline, choices=", ".join(map(str, sorted(known)))
        )
