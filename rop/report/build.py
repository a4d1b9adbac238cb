"""Assemble the report (CONTRACT.md §3); ``drill`` (rop.report.drill) is re-exported here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace as dc_replace
from datetime import date
from typing import Any

from rop.metrics.catalogue import figures as catalogue_figures
from rop.metrics.client_counts import client_counts_sql
from rop.metrics.compile import (
    Context,
    aggregate_sql,
    bind,
    combine,
    pairs_periods,
    params_for,
    previous_figure,
)
from rop.metrics.figure import Figure
from rop.metrics.rollup_memory import partial_rows, report_asked
from rop.metrics.rollups import beside_records, rollup_sql
from rop.metrics.rollups import split as split_rollups
from rop.metrics.sources import SECTION_SOURCE, SOURCES
from rop.report.context import Prepared, context, filter_names, prepare, short_period
from rop.report.drill import drill
from rop.report.filter import ReportFilter
from rop.report.formatting import WORDS, unknown_user_name
from rop.report.periods import comparison_period
from rop.report.planfact import plan_fact_section
from rop.report.portal import data_as_of
from rop.report.stages import build_stages
from rop.store.db import Store

Cells = dict[Any, dict[str, Any]]


def empty_value(fig: Figure) -> Any:
    """A figure's value over no records: 0 for counts and sums, None for ratios."""
    if fig.measure == "count":
        return 0
    if fig.measure == "sum":
        return 0 if fig.kind == "seconds" else 0.0
    return None


def _section_figures(prep: Prepared) -> dict[str, list[Figure]]:
    out: dict[str, list[Figure]] = {}
    for fig in catalogue_figures(prep.flt, prep.names):
        out.setdefault(fig.section, []).append(fig)
    return out


Period = tuple[Cells, Cells, dict[str, Any]]  # figures per row key, per department, total


class _Batch:
    """The report's figure statements: planned first, then sent together
    (``Store.query_batch``: PostgreSQL's pipeline, one round trip for all of
    them, the server running the next while this process reads the last;
    DuckDB one after the other, as before), then read into their periods."""

    def __init__(self, prep: Prepared) -> None:
        self.prep = prep
        self.jobs: list[tuple[str, Any, Callable[[list[str], list[tuple]], None]]] = []

    def add(self, sql: str, params: Any, read: Callable[[list[str], list[tuple]], None]) -> None:
        self.jobs.append((sql, params, read))

    def run(self) -> None:
        jobs, self.jobs = self.jobs, []
        results = self.prep.store.query_batch([(sql, params) for sql, params, _ in jobs])
        for (_, _, read), (cols, recs) in zip(jobs, results, strict=True):
            read(cols, recs)


def _empty_period() -> Period:
    return ({}, {}, {})


def _run_figures(batch: _Batch, section: str, figs: Sequence[Figure], ctx: Context) -> Period:
    """``figs`` of one section, rolled up to departments and total: the sums the
    stored rollups answer from them (rop.metrics.rollups), the rest from the records.
    The period returned is filled when ``batch`` runs."""
    rolled, rest = split_rollups(section, figs, ctx)
    source = SOURCES[SECTION_SOURCE[section]]
    if not rolled:
        # Companies and contacts: counted from the period's events where it can.
        sql = client_counts_sql(source, rest, ctx) or aggregate_sql(source, rest, ctx)
        return _query_figures(batch, rest, sql, ctx)
    held = partial_rows(batch.prep.store, section, rolled, ctx, offset=len(rest))
    if held is not None:
        # The rollups' sums from the rows in memory (rop.metrics.rollup_memory):
        # only the records' figures (if any) are a statement.
        records = aggregate_sql(source, rest, ctx) if rest else None
        return _query_figures(batch, [*rest, *rolled], records, ctx, held)
    sql = rollup_sql(section, rolled, ctx, offset=len(rest))
    if rest:
        # One statement: a query per part cost DuckDB its planning twice (10k deals).
        sql = beside_records(aggregate_sql(source, rest, ctx), sql)
    return _query_figures(batch, [*rest, *rolled], sql, ctx)


_PARTS = {"count": ("n",), "sum": ("s",), "mean": ("s", "n"), "share": ("num", "den")}


def _partials(figs: Sequence[Figure]) -> list[str]:
    """The partials' names a query of ``figs`` gives (rop.metrics.compile.combine reads)."""
    return [f"a{i}_{part}" for i, fig in enumerate(figs) for part in _PARTS[fig.measure]]


def _query_figures(
    batch: _Batch,
    figs: Sequence[Figure],
    sql: str | None,
    ctx: Context,
    more: Sequence[dict[str, Any]] | None = None,
) -> Period:
    """One aggregate query of ``figs`` (row key, department, partials), added to
    ``batch``, its rows read with ``more`` rows of that shape (the rollups' sums
    taken in memory: each row then has every partial, the other part's None, as
    beside_records gives); no statement when ``sql`` is None."""
    out = _empty_period()

    def read(cols: list[str], recs: list[tuple]) -> None:
        if more is not None:
            every = ["k", "dept", *_partials(figs)]
            where = {c: i for i, c in enumerate(cols)}
            recs = [tuple(r[where[c]] if c in where else None for c in every) for r in recs]
            recs += [tuple(m.get(c) for c in every) for m in more]
            cols = every
        # The partials (columns ``a<i>_*``) summed per row key, per department
        # and in total (rop.metrics.compile.add_partials, by position: a report
        # reads about a thousand such rows at 10k deals).
        at = [i for i, name in enumerate(cols) if name.startswith("a")]
        names = [cols[i] for i in at]
        k_at, dept_at = cols.index("k"), cols.index("dept")
        row_parts: dict[Any, list[Any]] = {}
        dept_parts: dict[Any, list[Any]] = {}
        total = [0] * len(at)
        for rec in recs:
            values = [rec[i] or 0 for i in at]
            for acc in (
                row_parts.setdefault(rec[k_at], [0] * len(at)),
                dept_parts.setdefault(rec[dept_at], [0] * len(at)),
                total,
            ):
                for j, v in enumerate(values):
                    acc[j] += v

        def partials(sums: list[Any]) -> dict[str, Any]:
            return dict(zip(names, sums, strict=True))

        out[0].update({k: _values(figs, partials(v)) for k, v in row_parts.items()})
        out[1].update({k: _values(figs, partials(v)) for k, v in dept_parts.items()})
        out[2].update(_values(figs, partials(total) if recs else {}))

    if sql is None:
        read([], [])
    else:
        batch.add(sql, bind(sql, params_for(ctx, figs)), read)
    return out


def _merge(into: Period, part: Period) -> None:
    for target, cells in zip(into[:2], part[:2], strict=True):
        for k, values in cells.items():
            target.setdefault(k, {}).update(values)
    into[2].update(part[2])


def _merged(parts: Sequence[Period]) -> Period:
    """A period's sections merged, once their batch has run."""
    result = _empty_period()
    for part in parts:
        _merge(result, part)
    return result


def _run_both(
    batch: _Batch, section: str, figs: Sequence[Figure], ctx: Context, prev: Context
) -> tuple[Period, Period]:
    """Both periods of a section in one query: the relation gives its period
    columns for the previous period too, and each figure comes twice, the
    second about the previous period (rop.metrics.compile.previous_figure).
    Both periods are filled when ``batch`` runs."""
    source = SOURCES[SECTION_SOURCE[section]]
    both = dc_replace(
        ctx,
        params={
            **ctx.params,
            "q_from": prev.params["p_from"],
            "q_to": prev.params["p_to"],
            # The previous period's local days (the stored client days).
            "qd_from": prev.params["d_from"],
            "qd_to": prev.params["d_to"],
        },
        opts=dc_replace(ctx.opts, previous=True),
    )
    inner = _Batch(batch.prep)
    joint = _run_figures(inner, section, [*figs, *(previous_figure(source, f) for f in figs)], both)
    ((sql, params, read_joint),) = inner.jobs
    now, before = _empty_period(), _empty_period()
    n = len(figs)

    def split(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        items = list(values.values())
        return (
            dict(zip((f.key for f in figs), items[:n], strict=True)),
            dict(zip((f.key for f in figs), items[n:], strict=True)),
        )

    def read(cols: list[str], recs: list[tuple]) -> None:
        read_joint(cols, recs)
        rows, depts, total = joint
        for k, v in rows.items():
            now[0][k], before[0][k] = split(v)
        for k, v in depts.items():
            now[1][k], before[1][k] = split(v)
        now_total, prev_total = split(total)
        now[2].update(now_total)
        before[2].update(prev_total)

    batch.add(sql, params, read)
    return now, before


# Both periods of a section in one query only up to PAIR_DAYS days each: the
# clients are then joined once instead of twice, which is most of a short
# period's cost; over longer periods the deals and calls to flag dominate and
# one query for both cost more than two (docs/BENCHMARKS.md, round 4), so the
# flags come from the stored client facts instead (rop.report.context).


def _short(date_from: date, date_to: date) -> bool:
    return short_period(date_from, date_to)


def _run_period(
    batch: _Batch,
    sections: dict[str, list[Figure]],
    date_from: date,
    date_to: date,
    now: dict[str, Period],
    previous: tuple[date, date] | None = None,
    ahead: dict[str, Period] | None = None,
) -> list[Period]:
    """The figures of one period: a query per section for the period's figures,
    added to ``batch``; the parts returned are filled when it runs (``_merged``).

    Figures about the present (``Figure.now``: in progress, portfolio) do not
    depend on the period: they are computed once, kept in ``now``, and reused
    for the previous period.

    ``previous`` (the compared period's days): a section whose relation can
    give both periods at once (companies, contacts: one join of every client
    instead of two) computes the previous period's figures in the same query
    and leaves them in ``ahead``; the previous period's run takes them from
    there (``ahead`` without ``previous``).
    """
    prep = batch.prep
    ctx = context(prep, date_from, date_to)
    prev_ctx = context(prep, *previous) if previous is not None else None
    parts: list[Period] = []
    for section, figs in sections.items():
        if previous is None and ahead is not None and section in ahead:
            parts.append(ahead[section])
            continue
        timed = [f for f in figs if not f.now]
        if any(f.condition == "TRUE" for f in timed):
            # The period's query reads every record anyway: one query does both.
            timed = list(figs)
        source = SOURCES[SECTION_SOURCE[section]]
        if (
            previous is not None
            and prev_ctx is not None
            and ahead is not None
            and _short(date_from, date_to)
            and _short(*previous)
            and len(timed) == len(figs)
            and pairs_periods(source, figs)
        ):
            part, ahead[section] = _run_both(batch, section, figs, ctx, prev_ctx)
            parts.append(part)
            continue
        if timed:
            parts.append(_run_figures(batch, section, timed, ctx))
        present = [f for f in figs if f not in timed]
        if present:
            if section not in now:
                now[section] = _run_figures(batch, section, present, ctx)
            parts.append(now[section])
    return parts


def _values(figs: Sequence[Figure], partials: dict[str, Any]) -> dict[str, Any]:
    return {
        fig.key: combine(fig, i, partials) if partials else empty_value(fig)
        for i, fig in enumerate(figs)
    }


def _fill(values: dict[str, Any], figs: Sequence[Figure]) -> dict[str, Any]:
    return {f.key: values.get(f.key, empty_value(f)) for f in figs}


def _nonzero(values: dict[str, Any]) -> bool:
    return any(v not in (None, 0, 0.0) for v in values.values())


def _directory(store: Store, table: str, cols: tuple[str, ...], portal: str) -> dict[int, dict]:
    """A directory's rows by ID (fresh dicts), read once until the data changes
    (rop.store.memo). ``table`` and ``cols`` are this module's own words."""
    sql = f"SELECT {', '.join(cols)} FROM {table} WHERE portal = ?"  # noqa: S608
    return {
        row[0]: dict(zip(cols, row, strict=True)) for row in store.query_remembered(sql, [portal])
    }


def _users(store: Store, portal: str) -> dict[int, dict[str, Any]]:
    return _directory(
        store, "users", ("id", "active", "name", "last_name", "department_id"), portal
    )


def _departments(store: Store, portal: str) -> dict[int, dict[str, Any]]:
    return _directory(store, "departments", ("id", "name", "sort", "parent_id"), portal)


def _user_name(user: dict[str, Any] | None, uid: int) -> str:
    if user is None:
        return unknown_user_name(uid, "en")
    name = " ".join(p for p in (user.get("name"), user.get("last_name")) if p)
    return name or unknown_user_name(uid, "en")


def _names(name: str | None, ru: str, en: str) -> dict[str, str]:
    """A row's ``name`` (as before: English for what the store does not name) and
    ``name_ru``/``name_en``, so a page, a chart or an export says it in its language."""
    return {"name": name or en, "name_ru": name or ru, "name_en": name or en}


def _manager_rows(prep: Prepared, cells: Cells, figs: Sequence[Figure]) -> list[dict[str, Any]]:
    store, key = prep.store, prep.portal.key
    users = _users(store, key)
    depts = _departments(store, key)
    wanted = {k for k, v in cells.items() if k is not None and _nonzero(v)}
    if prep.flt.departments:
        # Every active user of the chosen departments gets a row, even with nothing to show.
        wanted |= {u for u in prep.scope.users if u in users and users[u]["active"] is not False}
    rows = []
    for uid in wanted:
        user = users.get(uid)
        dept = user["department_id"] if user else None
        named = _user_name(user, uid) if user is not None else None
        rows.append(
            {
                "user_id": uid,
                "key": uid,
                **_names(named, unknown_user_name(uid, "ru"), unknown_user_name(uid, "en")),
                "department_id": dept,
                "department": (depts.get(dept) or {}).get("name") if dept is not None else None,
                "dismissed": bool(user is not None and user["active"] is False),
                "unknown": user is None,
                "profile_url": prep.portal.link(f"/company/personal/user/{uid}/"),
                "figures": _fill(cells.get(uid, {}), figs),
            }
        )

    def order(row: dict[str, Any]) -> tuple:
        d = depts.get(row["department_id"]) or {}
        return (d.get("sort") is None, d.get("sort") or 0, str(d.get("name") or ""), row["name"])

    rows.sort(key=order)
    return rows


def _group_names(prep: Prepared) -> dict[Any, str]:
    store, key = prep.store, prep.portal.key
    by = prep.flt.by
    if by == "department":
        return {d: v["name"] for d, v in _departments(store, key).items()}
    if by == "source":
        return dict(
            store.query_remembered(
                "SELECT status_id, name FROM statuses WHERE portal = ? AND entity_id = 'SOURCE'",
                [key],
            )
        )
    names = {
        str(i): n
        for i, n in store.query_remembered("SELECT id, name FROM pipelines WHERE portal = ?", [key])
    }
    names.setdefault("0", "Общая")
    return names


def _group_name(by: str, k: Any, names: dict[Any, str]) -> dict[str, str]:
    if k is None:
        # The row of records with nothing to group by ("—"): its name in each language.
        ru, en = WORDS[f"no_{by}"]
        return {"name": "—", "name_ru": ru, "name_en": en}
    return _names(names.get(k), str(k), str(k))


def _group_rows(prep: Prepared, cells: Cells, figs: Sequence[Figure]) -> list[dict[str, Any]]:
    names = _group_names(prep)
    rows = []
    for k, values in cells.items():
        if not _nonzero(values):
            continue
        rows.append(
            {
                "user_id": None,
                "key": k,
                **_group_name(prep.flt.by, k, names),
                "department_id": k if prep.flt.by == "department" else None,
                "dismissed": False,
                "unknown": k is not None and k not in names,
                "profile_url": None,
                "figures": _fill(values, figs),
            }
        )
    rows.sort(key=lambda r: (r["key"] is None, r["name"]))
    return rows


def _dept_names(d: int | None, depts: dict[int, dict[str, Any]]) -> dict[str, str]:
    if d is None:
        ru, en = WORDS["no_department"]
        return {"name_ru": ru, "name_en": en}
    name = (depts.get(d) or {}).get("name") or str(d)
    return {"name_ru": name, "name_en": name}


def build_report(
    store: Store, flt: ReportFilter, *, portal: str | None = None, stages: bool = True
) -> dict:
    """The report of CONTRACT.md §3, for ``flt`` as seen by ``flt.viewer``.

    ``stages=False`` leaves out the stage section (key "stages"): the web page
    loads it on its own when the reader opens it (docs/WEB.md), so the table
    does not wait for it; rop.report.stages.stage_section builds it alone.
    """
    prep = prepare(store, flt, portal)
    if prep.rollups:
        report_asked(store, prep.portal.key)  # the rollup rows are held from the second
    names = filter_names(prep)
    sections = _section_figures(prep)
    figs = [f for fs in sections.values() for f in fs]
    now: dict[str, Period] = {}
    compared = (
        comparison_period(flt.date_from, flt.date_to, prep.today, flt.previous)
        if flt.compare
        else None
    )
    ahead: dict[str, Period] = {}
    # Both periods' statements planned, then sent together (_Batch).
    batch = _Batch(prep)
    current = _run_period(
        batch,
        sections,
        flt.date_from,
        flt.date_to,
        now,
        (compared.date_from, compared.date_to) if compared is not None else None,
        ahead,
    )
    earlier = (
        _run_period(batch, sections, compared.date_from, compared.date_to, now, None, ahead)
        if compared is not None
        else []
    )
    batch.run()
    cells, dept_cells, total = _merged(current)
    if flt.by == "manager":
        rows = _manager_rows(prep, cells, figs)
        all_depts = _departments(store, prep.portal.key)
        shown = {r["department_id"] for r in rows}
        departments = [
            {
                "department_id": d,
                "name": (all_depts.get(d) or {}).get("name") if d is not None else None,
                **_dept_names(d, all_depts),
                "figures": _fill(dept_cells.get(d, {}), figs),
            }
            for d in sorted(
                shown,
                key=lambda d: (d is None, (all_depts.get(d) or {}).get("sort") or 0, d or 0),
            )
        ]
    else:
        rows = _group_rows(prep, cells, figs)
        departments = []
    report: dict[str, Any] = {
        "portal": prep.portal.as_json(),
        "data_as_of": data_as_of(store, prep.portal),
        "period": {
            "from": flt.date_from.isoformat(),
            "to": flt.date_to.isoformat(),
            "timezone": prep.portal.timezone,
        },
        # The day "now" figures and overdue deals count from (the portal's clock).
        "today": prep.today.isoformat(),
        "currency": prep.portal.base_currency,
        "filter": flt.as_json(),
        "description_ru": flt.describe("ru", names),
        "description_en": flt.describe("en", names),
        "columns": [f.as_column() for f in figs],
        "rows": rows,
        "departments": departments,
        "total": {"figures": _fill(total, figs)},
    }
    if stages:
        report["stages"] = build_stages(prep, context(prep, flt.date_from, flt.date_to))
    report["plans"] = plan_fact_section(prep, report)
    if compared is not None:
        prev_cells, prev_depts, prev_total = _merged(earlier)
        report["previous"] = {
            "period": {**compared.as_json(), "timezone": prep.portal.timezone},
            "total": {"figures": _fill(prev_total, figs)},
            "rows": [
                {"key": r["key"], "user_id": r["user_id"],
                 "figures": _fill(prev_cells.get(r["key"], {}), figs)}
                for r in rows
            ],
            "departments": [
                {"department_id": d["department_id"],
                 "figures": _fill(prev_depts.get(d["department_id"], {}), figs)}
                for d in departments
            ],
        }  # fmt: skip
    return report


__all__ = ["build_report", "drill", "empty_value"]
