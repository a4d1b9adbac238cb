"""The companies' and contacts' figures from the period's events, not from every client.

The records path (rop.metrics.compile.aggregate_sql over ``company_rel`` or
``contact_rel``) joins every client of the portal with the period's flags and
counts the joined rows: at 1M deals (250k companies, 500k contacts) most of a
report's cost. Every figure of these sections is a count, so the same numbers
come from two smaller parts, per manager (the client's ASSIGNED_BY, not the
deal's):

- ``total`` and ``new``: a grouped count of the clients (two columns read);
- ``with_deals``, ``with_sales``, ``called``: the clients the period's events
  flag (``<kind>_flags``: the period's deals and calls, the stored client
  facts or the stored client days, rop.metrics.sources.client_flag_steps),
  joined to their clients; or, for the default pipelines and call bound,
  counted per manager from the stored client firsts (rop.store.client_firsts:
  a client's first day in the period, no grouping per client);
- ``not_called``/``not_sold``: ``total`` minus the flagged count; the shares
  take ``total`` as their denominator.

A client without a manager, or the portal's own company, is in neither part,
as in the records path (rop.metrics.sources.client_where). Drill-downs stay
on the records path, so a figure still equals its list. Viewer scopes narrow
the per-manager rows (a row is one manager's); a viewer who sees single
records by grant (app mode) gets the records path, and so does any figure this
module does not know (:func:`client_counts_sql` returns None).
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rop.metrics.compile import GROUP_EXPR, Context, relation
from rop.metrics.figure import Figure
from rop.metrics.sources import (
    CLIENT_TABLES,
    Cte,
    Options,
    Source,
    client_flag_steps,
    client_source,
    client_where,
    deal_base,
    in_period,
)
from rop.store import client_firsts, manager_clients

# Tests switch it off to compare with the records path.
ENABLED = True

_KINDS = {"company_rel": "company", "contact_rel": "contact"}
_FLAGS = ("with_deals", "with_sales", "called")


def _counts(previous: bool) -> dict[str, tuple[str, str | None]]:
    """A figure's condition (or numerator) -> (the count it is, minus this one)."""
    out: dict[str, tuple[str, str | None]] = {"TRUE": ("total", None)}
    for q in ("", "_q") if previous else ("",):
        new = in_period("date_create")
        if q:
            new = new.replace("$p_", "$q_")
        out[new] = (f"new{q}", None)
        for flag in _FLAGS:
            out[f"{flag}{q}"] = (f"{flag}{q}", None)
            out[f"NOT {flag}{q}"] = ("total", f"{flag}{q}")
    return out


def _expr(count: tuple[str, str | None]) -> str:
    plus, minus = count
    return f"g.{plus} - g.{minus}" if minus else f"g.{plus}"


def _figure_columns(i: int, fig: Figure, known: dict) -> list[str] | None:
    cond = known.get(fig.condition)
    if cond is None:
        return None
    if fig.measure == "count":
        return [f"{_expr(cond)} AS a{i}_n"]
    if fig.measure == "share" and fig.numerator in known and fig.condition == "TRUE":
        return [f"{_expr(known[fig.numerator])} AS a{i}_num", f"{_expr(cond)} AS a{i}_den"]
    return None


def _stored_per_manager(kind: str, opts: Options, flags: str | None, cid: str | None) -> Cte:
    """``<kind>_per`` from the stored copies of the clients' managers: ``total`` and
    ``new`` summed from the client counts per manager and creation day
    (rop.store.manager_clients), the flags counted from the client days' rows,
    which hold their client's manager (rop.store.client_days): no client row read.
    With ``opts.client_firsts`` (``flags`` None) the flags are counted per manager
    from the stored client firsts' range of days, with no grouping per client
    (rop.store.client_firsts).
    """
    periods = ("", "_q") if opts.previous else ("",)
    # A period is whole local days ($d_from..$d_to, the previous $qd_from..$qd_to).
    bounds = {"": "d", "_q": "qd"}
    flag_cols = [f"{f}{q}" for q in periods for f in _FLAGS]
    new = ", ".join(
        f"coalesce(sum(m.n) FILTER (WHERE m.day >= ${bounds[q]}_from "
        f"AND m.day <= ${bounds[q]}_to), 0) AS new{q}"
        for q in periods
    )
    zeros, zero_new, flagged, any_flag, sums = _columns(periods, flag_cols)
    if flags is None:
        firsts = client_firsts.counts_sql(kind, {q: bounds[q] for q in periods})
        cols = ", ".join(f"c.{c}" for c in flag_cols)
        flagged_part = f"SELECT c.manager_id, 0 AS total, {zero_new}, {cols} FROM ({firsts}) c"
    else:
        # The flags come from the client days only with opts.client_days; else (the
        # stored client facts) they are joined to the clients for their manager.
        flagged_from = (
            f"FROM {flags} fl WHERE fl.manager_id IS NOT NULL"
            if opts.client_days
            else f"FROM {flags} fl JOIN ({_clients(kind, False)}) x ON x.id = fl.{cid} WHERE TRUE"
        )
        manager = "fl.manager_id" if opts.client_days else "x.manager_id"
        flagged_part = (
            f"SELECT {manager} AS manager_id, 0 AS total, {zero_new}, {flagged}\n"
            f"{flagged_from} AND ({any_flag}) GROUP BY {manager}"
        )
    return Cte(
        f"{kind}_per",
        f"SELECT manager_id, CAST(NULL AS VARCHAR) AS grp_source, "
        f"CAST(NULL AS VARCHAR) AS grp_pipeline, {sums} FROM (\n"
        f"SELECT m.manager_id, sum(m.n) AS total, {new}, {zeros}\n"
        f"FROM {manager_clients.TABLE} m WHERE m.portal = $portal AND m.kind = '{kind}' "
        "GROUP BY m.manager_id\n"
        f"UNION ALL {flagged_part}\n"
        ") p GROUP BY manager_id",
    )


def _columns(periods: Sequence[str], flag_cols: Sequence[str]) -> tuple[str, str, str, str, str]:
    """The column lists both ``<kind>_per`` spellings share: the flags' zeros, the
    new clients' zeros, the flagged counts, "any flag", and the outer sums."""
    zeros = ", ".join(f"0 AS {c}" for c in flag_cols)
    zero_new = ", ".join(f"0 AS new{q}" for q in periods)
    flagged = ", ".join(f"count(*) FILTER (WHERE fl.{c}) AS {c}" for c in flag_cols)
    any_flag = " OR ".join(f"fl.{c}" for c in flag_cols)
    sums = ", ".join(
        f"CAST(sum({c}) AS BIGINT) AS {c}"
        for c in ("total", *(f"new{q}" for q in periods), *flag_cols)
    )
    return zeros, zero_new, flagged, any_flag, sums


def _clients(kind: str, by_source: bool) -> str:
    """The clients a section counts, with their manager (and source, ``by_source``)."""
    table = CLIENT_TABLES[kind][0]
    source = client_source(kind) if by_source else "CAST(NULL AS VARCHAR)"
    return (
        f"SELECT x.id, x.assigned_by_id AS manager_id, {source} AS grp_source, "
        f"x.date_create FROM {table} x WHERE {client_where(kind)}"
    )


def _per_manager(kind: str, opts: Options, flags: str, cid: str, by_source: bool) -> Cte:
    """``<kind>_per``: per manager (and source, ``by_source``), the clients' counts of
    the period(s). Grouping by a contact's source only when the rows are sources:
    a string key costs a third of the count (at 1M deals, 500k contacts)."""
    periods = ("", "_q") if opts.previous else ("",)
    new = {q: in_period("x.date_create").replace("$p_", "$q_" if q else "$p_") for q in periods}
    flag_cols = [f"{f}{q}" for q in periods for f in _FLAGS]
    totals = ", ".join(f"count(*) FILTER (WHERE {new[q]}) AS new{q}" for q in periods)
    zeros, zero_new, flagged, any_flag, sums = _columns(periods, flag_cols)
    clients = _clients(kind, by_source)
    return Cte(
        f"{kind}_per",
        f"SELECT manager_id, grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline, {sums} FROM (\n"
        f"SELECT x.manager_id, x.grp_source, count(*) AS total, {totals}, {zeros}\n"
        f"FROM ({clients}) x GROUP BY x.manager_id, x.grp_source\n"
        f"UNION ALL SELECT x.manager_id, x.grp_source, 0 AS total, {zero_new}, {flagged}\n"
        f"FROM {flags} fl JOIN ({clients}) x ON x.id = fl.{cid}\n"
        f"WHERE {any_flag} GROUP BY x.manager_id, x.grp_source\n"
        ") p GROUP BY manager_id, grp_source",
    )


def client_counts_sql(source: Source, figs: Sequence[Figure], ctx: Context) -> str | None:
    """The section's aggregate query (the columns of compile.aggregate_sql: ``k``,
    ``dept`` and each figure's ``a<i>_*``) from counts per manager; None where
    only the records path gives the figures."""
    kind = _KINDS.get(source.name)
    if not ENABLED or kind is None or ctx.grant_viewer is not None:
        return None
    known = _counts(ctx.opts.previous)
    cols: list[str] = []
    for i, fig in enumerate(figs):
        got = _figure_columns(i, fig, known)
        if got is None:
            return None
        cols.extend(got)

    def steps(opts: Options) -> list[Cte]:
        # By source the rows need each client's source: the clients are read.
        stored = opts.client_managers and ctx.group != "source"
        if stored and opts.client_firsts:
            # Counted per manager from the client firsts: no flags per client.
            return [_stored_per_manager(kind, opts, None, None)]
        flag_steps, flags, cid = client_flag_steps(kind, opts)
        if stored:
            per = _stored_per_manager(kind, opts, flags, cid)
        else:
            per = _per_manager(kind, opts, flags, cid, ctx.group == "source")
        # Only the period's flags read the deals (the stored client facts and
        # days need none), and only their facts step.
        deals = [] if opts.client_days or opts.client_facts else [deal_base(opts)]
        return [*deals, *flag_steps, per]

    # The rows are managers: relation() narrows them to the viewer's scope and
    # gives each its department, as it does for the records.
    per = replace(source, name=f"{kind}_per", ctes=steps, base="TRUE")
    key = GROUP_EXPR[ctx.group]
    dept = "f.department_id" if ctx.group == "manager" else "NULL"
    periods = ("", "_q") if ctx.opts.previous else ("",)
    counts = ("total", *(f"new{q}" for q in periods), *(f"{f}{q}" for q in periods for f in _FLAGS))
    # BIGINT: PostgreSQL sums BIGINTs to NUMERIC, which would make the shares Decimals.
    sums = ", ".join(f"CAST(sum(f.{c}) AS BIGINT) AS {c}" for c in counts)
    return (
        f"{relation(per, ctx)}\nSELECT g.k, g.dept, {', '.join(cols)} FROM (\n"
        f"SELECT {key} AS k, {dept} AS dept, {sums}\n"
        f"FROM f GROUP BY {key}{', ' + dept if dept != 'NULL' else ''}) g"
    )
