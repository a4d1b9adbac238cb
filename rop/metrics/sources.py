"""The source relations every figure is computed over: one row per record.

These are the report's "views": the joins live here and nowhere else. Each
relation is a chain of CTEs ending in one named relation with an ``id``, the
``manager_id`` the record is attributed to, and the facts the figures test
(close time, base-currency amount, movements in the period...). They are
compiled as CTEs rather than stored views so the portal and the period are
bound early and the planner can prune by them.

Named parameters every relation may use: ``$portal``, ``$base`` (base
currency), ``$p_from``/``$p_to`` (period as UTC, [from, to)),
``$tz`` (the portal's IANA zone, for CLOSEDATE at local midnight), ``$min_s``/``$max_s`` (call duration bounds) and ``$pipes``.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rop.metrics.figure import Column
from rop.store import client_days, client_facts, client_firsts, client_texts, facts
from rop.store.dialect import DUCKDB, Dialect, days_between
from rop.store.grants import GRANT_ENTITIES


def in_period(expr: str) -> str:
    """``expr`` (a UTC TIMESTAMP) falls in the period [$p_from, $p_to)."""
    return f"({expr} >= $p_from AND {expr} < $p_to)"


# A record moved in the period if one of its movements is in it. The first and
# last movements (stored facts, rop.store.facts) decide nearly every record;
# only one that moved before the period and after it needs its list of
# movements, and only those records' lists are read: a semi-join on the few
# that qualify (reading the list column of every record cost more than the
# rest of the deals query, 35 of 59 ms CPU at 1M deals). (Looking up the
# period's history rows instead cost 20-40 % more per deal query at 100k
# deals.) No movement: every test is NULL, so FALSE.
# The records that may have moved in the period (a figure's ``bound``): a movement
# at or after its start and one before its end.
MOVED_BOUND = "last_move >= $p_from AND first_move < $p_to"


def moved(dialect: Dialect, base: str, direct: bool = False) -> str:
    """``moved`` of the records ``b`` of the step ``base`` (which holds the movements).

    ``direct``: the undecided records' own lists are read in place instead, for a
    statement whose rows all lie within the movement bound (``last_move >= $p_from
    AND first_move < $p_to``): its scan reads the lists of those rows only, and the
    semi-join's second scan of the facts is saved (Options.moved)."""
    if direct:
        return f"""coalesce(CASE
    WHEN b.last_move < $p_from OR b.first_move >= $p_to THEN FALSE
    WHEN b.first_move >= $p_from OR b.last_move < $p_to THEN TRUE
    ELSE {dialect.any_in_range("b.moves", "$p_from", "$p_to")}
END, FALSE)"""
    between = dialect.any_in_range("u.moves", "$p_from", "$p_to")
    return f"""coalesce(CASE
    WHEN b.last_move < $p_from OR b.first_move >= $p_to THEN FALSE
    WHEN b.first_move >= $p_from OR b.last_move < $p_to THEN TRUE
    ELSE b.id IN (SELECT u.id FROM {base} u
        WHERE u.first_move < $p_from AND u.last_move >= $p_to AND {between})
END, FALSE)"""


def _moved(opts: Options, base: str, last: bool = False) -> str:
    """The relation's ``moved`` column (with its comma), or nothing where the
    statement reads none (``Options.moved``): then a use of it is an error, not a count."""
    if not opts.moved:
        return ""
    column = f"{moved(opts.dialect, base, direct=opts.moved == 'direct')} AS moved"
    return f", {column}" if last else f"{column}, "


@dataclass(frozen=True)
class Cte:
    """One named step of a relation.

    A ``static`` step depends on the store's data only, not on the period or
    the filter, so a report may compute it once and reuse it (rop.metrics.cache).
    Two static steps are reused, the others are helpers inlined into them:
    ``*_base``, the facts every figure reads, and ``*_text``, the names and
    texts only a drill-down list shows (kept apart: copying a million titles
    into the cache cost more than computing the facts).

    ``paged`` (a ``*_text`` step): the same rows for the records whose ids the
    given subquery (``(SELECT id FROM ...)``) yields only. A drill-down's page
    reads that form, never cached: the first page after a store is opened
    then names its 100 rows instead of every record of the portal (at 1M
    deals 0.5-2.4 s on DuckDB, ~3.3 s per PostgreSQL connection).
    """

    name: str
    sql: str
    static: bool = False
    paged: Callable[[str], str] | None = field(default=None, compare=False)


# The drill-down's page (rop.metrics.compile.relation): a paged text step reads
# the page's ids from it, and may read the page's own columns too.
PAGE = "f_page"


def among(expr: str, ids: str | None) -> str:
    """`` AND expr IN ids`` for a paged text step, nothing for the whole one."""
    return f" AND {expr} IN {ids}" if ids else ""


def text_step(name: str, sql: Callable[[str | None], str]) -> Cte:
    """A ``*_text`` step: cached whole for a list in another order, paged for a page."""
    return Cte(name, sql(None), static=True, paged=sql)


@dataclass(frozen=True)
class Options:
    """What the relations need from the filter (beyond bound values)."""

    pipelines: bool  # a pipeline subset is chosen ($pipes)
    max_call: bool  # an upper call duration bound is chosen ($max_s)
    # App mode: entities the viewer sees only in part (rop.store.grants); their
    # records count only where granted ($grant_full_<entity>, $grant_viewer).
    granted: frozenset[str] = frozenset()
    dialect: Dialect = field(default=DUCKDB)  # the store's engine (rop.store.dialect)
    # The previous period ($q_from/$q_to) too: a source with ``period_columns``
    # then also gives each of them for that period, named with ``_q``
    # (rop.report.build runs both periods of such a section in one query).
    previous: bool = False
    # The clients' flags from the stored client facts (rop.store.client_facts):
    # set by the report for the filter those facts are about (every pipeline,
    # calls of any duration, deals and calls not granted one by one) while they
    # are current.
    client_facts: bool = False
    # The stored client texts (rop.store.client_texts) are current: a page of a
    # companies' or contacts' list reads its rows' texts from them.
    client_texts: bool = False
    # The clients' flags per manager from the stored client days
    # (rop.store.client_days, rop.metrics.client_counts): set by the report
    # while they are current, for a filter without an upper call-duration
    # bound and without deals or calls granted one by one.
    client_days: bool = False
    # The stored copies of the clients' managers are current (the client days'
    # ``manager_id``, rop.store.manager_clients): the client sections' counts per
    # manager read them, not the clients (rop.metrics.client_counts).
    client_managers: bool = False
    # The clients' flags counted per manager from the stored client firsts
    # (rop.store.client_firsts, with the client days and managers): for a deal of
    # any pipeline and a call of any duration ($min_s 0, no upper bound).
    client_firsts: bool = False
    # How the deal and lead relations give each record's ``moved`` (a movement in
    # the period): "semi", a semi-join on the few records whose list must be read
    # (any statement); "direct", each such record's own list read in place, for a
    # statement whose rows all lie within the movement bound (the sections'
    # "moved" count: a second scan of the facts fewer, on DuckDB); "" none, for a
    # statement that reads no such column (the page's funnels: DuckDB keeps an
    # unused semi-join, half the funnels' CPU at 1M deals).
    moved: str = "semi"


def granted_filter(entity: str, alias: str) -> str:
    """The records of ``entity`` (rows ``alias`` with ``id`` and ``manager_id``) the
    viewer was granted: their manager's in full, or the record itself.

    ``entity`` is the catalogue's own word (deal, lead...), never input.
    """
    return (
        f"({alias}.manager_id IN (SELECT unnest(CAST($grant_full_{entity} AS BIGINT[]))) OR {alias}.id IN ("
        "SELECT record_id FROM viewer_grant_records WHERE portal = $portal "
        f"AND viewer_id = $grant_viewer AND entity = '{entity}'))"
    )


# An activity's owner (OWNER_TYPE_ID, crm.enum.ownertype) -> the report's entity.
ACTIVITY_OWNERS: dict[int, str] = {1: "lead", 2: "deal", 3: "contact", 4: "company"}


def granted_activity_filter(restricted: Iterable[str], alias: str) -> str:
    """App mode: the activities (rows ``alias`` with ``owner_type_id``, ``owner_id``)
    the viewer may read: those whose owner record they may read.

    CRM roles have no entry for activities: Bitrix24 shows an activity to whoever
    may read the record it belongs to (docs/METRICS_DECISIONS.md "Activities and
    rights"). An owner of an entity seen whole is enough; one of a restricted
    entity (``restricted``, the catalogue's words) must be granted like the record
    itself; an activity of anything else (a quote, a smart process) is not shown.
    """
    parts = []
    for type_id, entity in ACTIVITY_OWNERS.items():
        table, owner = GRANT_ENTITIES[entity]
        if entity not in restricted:
            parts.append(f"{alias}.owner_type_id = {type_id}")
            continue
        seen = (
            f"SELECT t.id FROM {table} t WHERE t.portal = $portal AND (t.{owner} IN ("
            f"SELECT unnest(CAST($grant_full_{entity} AS BIGINT[]))) OR t.id IN ("
            "SELECT record_id FROM viewer_grant_records WHERE portal = $portal "
            f"AND viewer_id = $grant_viewer AND entity = '{entity}'))"
        )
        parts.append(f"({alias}.owner_type_id = {type_id} AND {alias}.owner_id IN ({seen}))")
    return "(" + " OR ".join(parts) + ")"


def _seen(entity: str, alias: str, opts: Options) -> str:
    """`` AND granted_filter`` when ``entity`` is restricted, else nothing."""
    return f" AND {granted_filter(entity, alias)}" if entity in opts.granted else ""


def call_bounds(alias: str, opts: Options) -> str:
    cond = f"{alias}.call_duration >= $min_s"
    if opts.max_call:
        cond += f" AND {alias}.call_duration <= $max_s"
    return cond


def _pipes(alias: str, opts: Options) -> str:
    return (
        f"{alias}.category_id IN (SELECT unnest(CAST($pipes AS BIGINT[])))"
        if opts.pipelines
        else "TRUE"
    )


def _base(fact: facts.Fact, dialect: Dialect) -> Cte:
    """A stored fact table as the relation's ``*_base`` step: this SQL computes it;
    a report reads the stored table instead while it is current (rop.metrics.compile)."""
    return Cte(f"{fact.source[:-1]}_base", fact.sql(None, dialect), static=True)


def deal_base(opts: Options) -> Cte:
    """The deals' facts step alone (``deal_base``), for a relation that reads no
    more of the deals (the clients' flags from the period's deals)."""
    return _base(facts.DEAL, opts.dialect)


def _only(table: str, ids: str | None) -> str:
    """``table``, or a paged step's rows of it: the page's ids in a subquery of
    their own, so that PostgreSQL restricts them before the step's other joins."""
    return f"(SELECT * FROM {table} WHERE portal = $portal AND id IN {ids})" if ids else table


def _deal_text(ids: str | None) -> str:
    return f"""SELECT d.id, d.title, coalesce(p.name, CAST(d.category_id AS VARCHAR)) AS pipeline_name,
    d.stage_id, coalesce(s.name, d.stage_id) AS stage_name, d.source_id,
    d.opportunity, coalesce(d.currency_id, $base) AS currency_id
FROM {_only("deals", ids)} d
LEFT JOIN deal_stage_dir s ON s.status_id = d.stage_id
LEFT JOIN (SELECT id, name FROM pipelines WHERE portal = $portal) p ON p.id = d.category_id
WHERE d.portal = $portal"""


def _lead_text(ids: str | None) -> str:
    return f"""SELECT l.id, l.status_id, coalesce(s.name, l.status_id) AS status_name, l.source_id,
    coalesce(l.title, trim(coalesce(l.name, '') || ' ' || coalesce(l.last_name, ''))) AS title
FROM {_only("leads", ids)} l
LEFT JOIN lead_status_dir s ON s.status_id = l.status_id
WHERE l.portal = $portal"""


def deal_ctes(opts: Options) -> list[Cte]:
    return [
        Cte(
            "deal_stage_dir",
            "SELECT status_id, max(semantics) AS semantics, max(name) AS name FROM statuses "
            "WHERE portal = $portal AND entity_id LIKE 'DEAL_STAGE%' GROUP BY status_id",
            static=True,
        ),
        _base(facts.DEAL, opts.dialect),
        text_step("deal_text", _deal_text),
        Cte(
            "deal_rel",
            f"SELECT b.*, {_moved(opts, 'deal_base')}{_pipes('b', opts)} AS in_pipes "
            "FROM deal_base b",
        ),
    ]


def lead_ctes(opts: Options) -> list[Cte]:
    return [
        Cte(
            "lead_status_dir",
            "SELECT status_id, max(semantics) AS semantics, max(name) AS name FROM statuses "
            "WHERE portal = $portal AND entity_id = 'STATUS' GROUP BY status_id",
            static=True,
        ),
        _base(facts.LEAD, opts.dialect),
        text_step("lead_text", _lead_text),
        Cte(
            "lead_rel",
            f"SELECT b.*{_moved(opts, 'lead_base', last=True)} FROM lead_base b",
        ),
    ]


def _previous(sql: str) -> str:
    """``sql`` about the period, made about the previous period ($q_from/$q_to)."""
    return sql.replace("$p_from", "$q_from").replace("$p_to", "$q_to")


def _client_flags(kind: str, link: str, opts: Options) -> tuple[list[Cte], str, str]:
    """The steps that flag each client for the period (a deal created, a deal
    won, a call), the relation's columns of them and the joins onto clients ``x``.

    One period: the deals' flags and the called clients apart, each joined to
    the clients. With ``opts.previous`` the flags of both periods come from one
    step joined once (``with_deals_q``...): over a short period the join of
    every client is most of the section's cost (at 1M deals, contacts for a
    month and its previous one: 144 vs 221 ms CPU), so a report pairs the
    periods then (rop.report.build); over a long one the deals and calls to
    flag dominate and one step for both cost about 10 % more, so it does not.
    """
    created = in_period("date_create")
    won = f"semantic = 'S' AND {in_period('close_time')}"
    call = in_period("c.call_start_date")
    if not opts.previous:
        deals = Cte(
            f"{kind}_deals",
            f"SELECT {link} AS cid, "
            f"bool_or({created}) AS with_deals, bool_or({won}) AS with_sales "
            # deal_base, not deal_rel: the flags need no stage movements.
            f"FROM deal_base b WHERE {_pipes('b', opts)} AND {link} IS NOT NULL"
            f"{_seen('deal', 'b', opts)} "
            # Only deals created or won in the period can set a flag.
            f"AND ({created} OR ({won})) GROUP BY {link}",
        )
        # call_base resolves each call's company directly or through its contact.
        called = Cte(
            f"{kind}_calls",
            f"SELECT DISTINCT {link} AS cid FROM call_base c WHERE {link} IS NOT NULL "
            f"AND {call} AND {call_bounds('c', opts)}" + _seen("call", "c", opts),
            # A client's flags must not tell of deals or calls the viewer cannot see.
        )
        cols = (
            "coalesce(cd.with_deals, FALSE) AS with_deals, "
            "coalesce(cd.with_sales, FALSE) AS with_sales,\n    "
            "cc.cid IS NOT NULL AS called"
        )
        joins = (
            f"LEFT JOIN {kind}_deals cd ON cd.cid = x.id\n"
            f"LEFT JOIN {kind}_calls cc ON cc.cid = x.id"
        )
        return [deals, CALL_BASE, called], cols, joins
    step = flags_step(kind, link, opts)
    cols = ",\n    ".join(
        f"coalesce(cf.with_deals{q}, FALSE) AS with_deals{q}, "
        f"coalesce(cf.with_sales{q}, FALSE) AS with_sales{q}, "
        f"coalesce(cf.called{q}, FALSE) AS called{q}"
        for q in ("", "_q")
    )
    return [CALL_BASE, step], cols, f"LEFT JOIN {kind}_flags cf ON cf.cid = x.id"


def flags_step(kind: str, link: str, opts: Options) -> Cte:
    """``<kind>_flags``: one row per client (``cid``) with a deal created, a deal won
    or a call in the period (and in the previous one, ``_q``, with
    ``opts.previous``), its flags of each; from the period's deals and calls
    only. It reads ``deal_base`` and ``call_base``."""
    created = in_period("date_create")
    won = f"semantic = 'S' AND {in_period('close_time')}"
    call = in_period("c.call_start_date")
    periods = [("", created, won, call)]
    if opts.previous:
        periods.append(("_q", _previous(created), _previous(won), _previous(call)))
    deal_cols = ", ".join(f"{c} AS d{q}, {w} AS s{q}, FALSE AS c{q}" for q, c, w, _ in periods)
    deal_any = " OR ".join(f"({c}) OR ({w})" for _, c, w, _ in periods)
    call_cols = ", ".join(f"FALSE, FALSE, {k}" for *_, k in periods)
    call_any = " OR ".join(f"({k})" for *_, k in periods)
    flags = ", ".join(
        f"bool_or(d{q}) AS with_deals{q}, bool_or(s{q}) AS with_sales{q}, "
        f"bool_or(c{q}) AS called{q}"
        for q, *_ in periods
    )
    return Cte(
        f"{kind}_flags",
        f"SELECT cid, {flags} FROM (\n"
        f"SELECT {link} AS cid, {deal_cols} FROM deal_base b "
        f"WHERE {_pipes('b', opts)} AND {link} IS NOT NULL{_seen('deal', 'b', opts)} "
        f"AND ({deal_any})\n"
        f"UNION ALL SELECT c.{link}, {call_cols} FROM call_base c "
        f"WHERE c.{link} IS NOT NULL AND ({call_any}) AND {call_bounds('c', opts)}"
        f"{_seen('call', 'c', opts)}\n) m GROUP BY cid",
    )


_CLIENT_EVENTS = (("created", "with_deals"), ("won", "with_sales"), ("called", "called"))


def _stored_flags(kind: str, opts: Options) -> tuple[list[Cte], str, str]:
    """The flags of the period (and the previous one with ``opts.previous``) from the
    stored client facts: one row per client, no deal or call read
    (rop.store.client_facts).

    Like the deals' ``moved``: a client whose events of a kind all lie before or
    after the period had none in it; one whose first or last lies in it had one.
    Only the few clients with events both before and after the period need their
    list of moments, and those are looked up in one pass (``<kind>_cf_open``) for
    every flag of both periods.
    """
    name = client_facts.step(kind)
    periods = [("", "$p_from", "$p_to")]
    if opts.previous:
        periods.append(("_q", "$q_from", "$q_to"))
    open_cols, open_any, flags, cols = [], [], [], []
    for q, low, high in periods:
        for event, flag in _CLIENT_EVENTS:
            first, last = f"{event}_first", f"{event}_last"
            undecided = f"u.{first} < {low} AND u.{last} >= {high}"
            between = opts.dialect.any_in_range(f"u.{event}", low, high)
            open_cols.append(f"CASE WHEN {undecided} THEN {between} END AS {flag}{q}")
            open_any.append(f"({undecided})")
            flags.append(
                f"CASE WHEN cf.{last} < {low} OR cf.{first} >= {high} THEN FALSE "
                f"WHEN cf.{first} >= {low} OR cf.{last} < {high} THEN TRUE "
                f"ELSE coalesce(co.{flag}{q}, FALSE) END AS {flag}{q}"
            )
            cols.append(f"coalesce(fl.{flag}{q}, FALSE) AS {flag}{q}")
    steps = [
        Cte(name, client_facts.stored_sql(kind), static=True),
        Cte(
            f"{name}_open",
            f"SELECT u.id, {', '.join(open_cols)} FROM {name} u WHERE {' OR '.join(open_any)}",
        ),
        # The flags per client with facts, then joined to every client: the join
        # carries three booleans per period instead of six moments.
        Cte(
            f"{name}_flags",
            f"SELECT cf.id, {', '.join(flags)} FROM {name} cf "
            f"LEFT JOIN {name}_open co ON co.id = cf.id",
        ),
    ]
    return steps, ",\n    ".join(cols), f"LEFT JOIN {name}_flags fl ON fl.id = x.id"


CLIENT_TABLES: dict[str, tuple[str, str]] = {
    "company": ("companies", "company_id"),
    "contact": ("contacts", "contact_id"),
}


def client_flag_steps(kind: str, opts: Options) -> tuple[list[Cte], str, str]:
    """The steps that give one row per client that may have a flag in the period
    (both periods with ``opts.previous``): the steps, the last one's name and its
    client ID column. From the stored client facts with ``opts.client_facts``,
    else from the period's deals and calls (rop.metrics.client_counts)."""
    if opts.client_facts:
        steps, _, _ = _stored_flags(kind, opts)
        return steps, f"{client_facts.step(kind)}_flags", "id"
    if opts.client_days:
        return [_days_flags(kind, opts)], f"{kind}_flags", "cid"
    return [CALL_BASE, flags_step(kind, CLIENT_TABLES[kind][1], opts)], f"{kind}_flags", "cid"


def _days_flags(kind: str, opts: Options) -> Cte:
    """``<kind>_flags`` as :func:`flags_step` gives it, from the stored client days
    (rop.store.client_days): the period's days (and the previous period's), one
    row per client and day already, instead of every deal and call of them."""
    # The period's local days ($d_from..$d_to; the previous period's $qd_from..
    # $qd_to), bound as values: PostgreSQL then reads an index range it can
    # estimate, where a zone conversion of the UTC bounds in the SQL was computed
    # per row (0.75 -> 2.6 s for the contacts at 1M deals).
    periods = [("", "d")]
    if opts.previous:
        periods.append(("_q", "qd"))
    days = {q: f"d.day >= ${b}_from AND d.day <= ${b}_to" for q, b in periods}
    deals = _pipes("d", opts)
    conds = {
        f"{name}{q}": cond
        for q, _ in periods
        for name, cond in (
            ("with_deals", f"d.created AND {deals} AND {days[q]}"),
            ("with_sales", f"d.won AND {deals} AND {days[q]}"),
            # call_bounds without an upper bound (client_days is off with one).
            ("called", f"d.call_max >= $min_s AND {days[q]}"),
        )
    }
    # One bit per flag, OR-ed per client: one aggregate instead of one per flag
    # (at 1M deals on PostgreSQL the per-client grouping of two months' days was
    # most of the statement: 524 -> 415 ms for the contacts, docs/BENCHMARKS.md).
    mask = " + ".join(
        f"CASE WHEN {cond} THEN {1 << i} ELSE 0 END" for i, cond in enumerate(conds.values())
    )
    flags = ", ".join(f"(f.m & {1 << i}) <> 0 AS {name}" for i, name in enumerate(conds))
    return Cte(
        f"{kind}_flags",
        # With the stored copy of the client's manager (one per client: the same
        # groups as by id), for the counts per manager that read no client row.
        f"SELECT f.cid, f.manager_id, {flags} FROM (\n"
        f"SELECT d.id AS cid, d.manager_id, bit_or({mask}) AS m FROM {client_days.TABLE} d "
        f"WHERE d.portal = $portal AND d.kind = '{kind}' "
        f"AND ({' OR '.join(f'({days[q]})' for q, _ in periods)}) GROUP BY d.id, d.manager_id"
        ") f",
    )


def _firsts_flags(kind: str, opts: Options) -> Cte:
    """``<kind>_flags`` as :func:`_days_flags` gives it, from the stored client firsts
    (rop.store.client_firsts): for a deal of any pipeline and a call of any
    duration (``opts.client_firsts``), one row per client and flagged day, the
    rows the report's counts read (a first drill-down after them reads no
    other table for its flags)."""
    periods = [("", "d")]
    if opts.previous:
        periods.append(("_q", "qd"))
    days = {q: f"d.day >= ${b}_from AND d.day <= ${b}_to" for q, b in periods}
    # One period: every row read is in it; two: each flag of a row is its period's.
    within = {q: f" AND {cond}" if opts.previous else "" for q, cond in days.items()}
    flags = ", ".join(
        f"bool_or(d.{event}{within[q]}) AS {name}{q}"
        for q, _ in periods
        for event, name in (("created", "with_deals"), ("won", "with_sales"), ("called", "called"))
    )
    return Cte(
        f"{kind}_flags",
        f"SELECT d.id AS cid, d.manager_id, {flags} FROM {client_firsts.TABLE} d "
        f"WHERE d.portal = $portal AND d.kind = '{kind}' "
        f"AND ({' OR '.join(f'({c})' for c in days.values())}) GROUP BY d.id, d.manager_id",
    )


def _list_flags(kind: str, opts: Options) -> tuple[list[Cte], str, str]:
    """The flags of a client relation (its list and the records path) from the stored
    client firsts or days, joined on the client and its stored manager.

    Each stored row holds its client's manager as the sections count it, which
    for every client of the relation (:func:`client_where`) is its
    ``assigned_by_id``. Joined on both, the engine narrows the stored rows to the
    managers of the clients it joins: DuckDB pushes the managers of the list
    (one manager's row: one value) into the scan through the grouping, so one
    manager's list groups that manager's period rows only (at 1M deals 8.6k
    rows of 93k, instead of the period's deals and calls: 163k and 58k rows).
    """
    step = _firsts_flags(kind, opts) if opts.client_firsts else _days_flags(kind, opts)
    periods = ("", "_q") if opts.previous else ("",)
    cols = ",\n    ".join(
        f"coalesce(cf.{flag}{q}, FALSE) AS {flag}{q}" for q in periods for flag in _CLIENT_PERIOD
    )
    join = f"LEFT JOIN {kind}_flags cf ON cf.cid = x.id AND cf.manager_id = x.assigned_by_id"
    return [step], cols, join


def client_where(kind: str) -> str:
    """The clients (rows ``x`` of the kind's table) a section counts."""
    # The stored copies of a client's manager (rop.store.client_days,
    # rop.store.manager_clients) keep the same clients.
    return f"x.portal = $portal AND {client_days.counted(kind)}"


def client_source(kind: str) -> str:
    """A client's source (the report's rows by source): contacts have one."""
    return "x.source_id" if kind == "contact" else "CAST(NULL AS VARCHAR)"


def client_name(kind: str) -> str:
    """A client's name as its list shows it, from its row ``x``."""
    if kind == "company":
        return "x.title"
    return "trim(coalesce(x.name, '') || ' ' || coalesce(x.last_name, ''))"


def _client_text(kind: str) -> str:
    """What a list of clients shows beside the facts (who to call, and when they
    were last called and last bought): the last call and the last won deal
    whenever they were, and a phone (the card's, else the greatest number
    called), from the tables: what the stored client texts hold
    (rop.store.client_texts), computed for every client. Read from the tables,
    not the *_base steps, so the cached step stands alone."""
    table, link = CLIENT_TABLES[kind]
    # A call reaches a company directly or through one of its contacts (as call_base).
    call_client = (
        "CASE c.crm_entity_type WHEN 'COMPANY' THEN c.crm_entity_id "
        "WHEN 'CONTACT' THEN ct.company_id END"
        if kind == "company"
        else "CASE c.crm_entity_type WHEN 'CONTACT' THEN c.crm_entity_id END"
    )
    return f"""SELECT x.id, {client_name(kind)} AS title, coalesce(x.phone, lc.phone) AS phone,
    lc.last_call, lw.last_won
FROM {table} x
LEFT JOIN (SELECT {call_client} AS cid, max(c.call_start_date) AS last_call,
        max(c.phone_number) AS phone
    FROM calls c
    LEFT JOIN (SELECT id, company_id FROM contacts WHERE portal = $portal) ct
        ON ct.id = c.crm_entity_id AND c.crm_entity_type = 'CONTACT'
    WHERE c.portal = $portal GROUP BY 1) lc ON lc.cid = x.id
LEFT JOIN (SELECT d.{link} AS cid, max(coalesce(h.t, d.moved_time)) AS last_won
    FROM deals d
    LEFT JOIN (SELECT owner_id, max(created_time) AS t FROM deal_stage_history
        WHERE portal = $portal AND type_id = 3 GROUP BY owner_id) h ON h.owner_id = d.id
    WHERE d.portal = $portal AND d.stage_semantic = 'S' AND d.{link} IS NOT NULL
    GROUP BY 1) lw ON lw.cid = x.id
WHERE x.portal = $portal"""


def _client_ctes(kind: str, opts: Options) -> list[Cte]:
    """Companies or contacts with their deal and call facts for the period."""
    table, link = CLIENT_TABLES[kind]
    # Only the steps the flags read: no deal relation (its movements were bound
    # and planned by every list, 1-4 ms of a first page's binding at 1M deals).
    deals: list[Cte] = []
    if opts.client_facts:
        flag_steps, flag_cols, flag_joins = _stored_flags(kind, opts)
    elif opts.client_firsts or opts.client_days:
        flag_steps, flag_cols, flag_joins = _list_flags(kind, opts)
    else:
        deals = [deal_base(opts)]
        flag_steps, flag_cols, flag_joins = _client_flags(kind, link, opts)
    source = client_source(kind)
    # The name too is a text (a page names its own rows): read with every client,
    # it was a fifth of a manager's companies page (10 of 53 ms at 1M deals).
    name = client_name(kind)
    text = (
        # Stored per client, so a page reads its own rows' (on both engines), and so
        # does an export; a list sorted by a column reads them whole.
        text_step(f"{kind}_text", lambda ids: client_texts.paged_sql(kind, table, ids, name))
        if opts.client_texts
        # Else (the stored facts lag the data) from the tables, cached whole: the
        # calls table has no order or index by client, so a paged form read every
        # call per page (docs/METRICS_DECISIONS.md "List texts per page").
        else Cte(f"{kind}_text", _client_text(kind), static=True)
    )
    return [
        *deals,
        *flag_steps,
        text,
        Cte(
            f"{kind}_rel",
            f"""SELECT x.id, x.assigned_by_id AS manager_id, x.date_create,
    {flag_cols},
    {source} AS grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline
FROM {table} x
{flag_joins}
WHERE {client_where(kind)}""",
        ),
    ]


def company_ctes(opts: Options) -> list[Cte]:
    return _client_ctes("company", opts)


def contact_ctes(opts: Options) -> list[Cte]:
    return _client_ctes("contact", opts)


CALL_BASE = _base(facts.CALL, DUCKDB)  # no dialect spelling in it


def _call_text(ids: str | None) -> str:
    # The client by name (its card is linked by the list), and the recording:
    # the portal's URL, else "file:<id>" of a file on its Drive (rop.report.drill
    # turns it into a link). Paged, the clients too are only the page's calls'
    # (else DuckDB hashes every company, contact and lead to join 100 calls),
    # each table only the IDs its kind of call points at: with every page
    # call's ID, DuckDB read the names of most of the 500k leads to keep ~30
    # (the calls page 130 -> 60 ms at 1M deals, load 6). Read from the page
    # itself (its rows are the call facts', which hold the call's binding):
    # from the calls table, DuckDB took them for many and hashed all 250k
    # companies to join 7 calls (a warm page 110 -> 350 ms).
    def clients(kind: str) -> str:
        if not ids:
            return ""
        page_calls = f"(SELECT crm_entity_id FROM {PAGE} WHERE crm_entity_type = '{kind}')"
        return among("id", page_calls)

    # The page's calls in a subquery of their own (_only): PostgreSQL otherwise
    # joins every call to its client and only then keeps the page's (2 s at 1M).
    calls = _only("calls", ids)
    return f"""SELECT c.id, c.phone_number,
    CASE c.crm_entity_type
        WHEN 'COMPANY' THEN co.title
        WHEN 'CONTACT' THEN nullif(trim(coalesce(ct.name, '') || ' ' || coalesce(ct.last_name, '')), '')
        WHEN 'LEAD' THEN coalesce(l.title,
            nullif(trim(coalesce(l.name, '') || ' ' || coalesce(l.last_name, '')), ''))
    END AS client_name,
    coalesce(nullif(c.call_record_url, ''),
        'file:' || CAST(c.record_file_id AS VARCHAR)) AS record
FROM {calls} c
LEFT JOIN (SELECT id, title FROM companies WHERE portal = $portal{clients("COMPANY")}) co
    ON co.id = c.crm_entity_id AND c.crm_entity_type = 'COMPANY'
LEFT JOIN (SELECT id, name, last_name FROM contacts WHERE portal = $portal{clients("CONTACT")}) ct
    ON ct.id = c.crm_entity_id AND c.crm_entity_type = 'CONTACT'
LEFT JOIN (SELECT id, title, name, last_name FROM leads WHERE portal = $portal{clients("LEAD")}) l
    ON l.id = c.crm_entity_id AND c.crm_entity_type = 'LEAD'
WHERE c.portal = $portal"""


# Paged on both engines: a page names its 100 calls (computed whole, every
# call's client name cost the first page after an open 1.4 s at 1M deals, and
# a server's warm-up 2.4 s of CPU); a list sorted by one of these columns reads
# them whole (docs/WEB.md "Sorting a list").
CALL_TEXT = text_step("call_text", _call_text)


def call_ctes(opts: Options) -> list[Cte]:
    return [
        CALL_BASE,
        CALL_TEXT,
        Cte(
            "call_rel",
            f"""SELECT c.*, CAST(NULL AS VARCHAR) AS grp_source, CAST(NULL AS VARCHAR) AS grp_pipeline
FROM call_base c
WHERE c.manager_id IS NOT NULL
    AND {in_period("c.call_start_date")} AND {call_bounds("c", opts)}""",
        ),
    ]


@dataclass(frozen=True)
class Source:
    """A relation: its CTEs, the predicate every figure over it shares, its drill columns."""

    name: str  # the final CTE's name
    section: str
    entity: str  # deal|lead|company|contact|call
    ctes: Callable[[Options], list[Cte]]
    base: str  # predicate shared by every figure of the source
    columns: tuple[Column, ...]
    card: str | None  # URL path of a record's card, {id} replaced
    text: tuple[str, ...] = ()  # columns of the ``<entity>_text`` step, for lists only
    # Columns about the period that the relation also gives for the previous
    # period (``<column>_q``) when ``Options.previous`` is set: a report then
    # runs both periods of the section in one query (rop.report.build).
    period_columns: tuple[str, ...] = ()
    # The list is a filtered scan of stored facts, cheap to read again: on DuckDB a
    # drill-down's page counts it beside the page, not in windows that hold the
    # whole list (rop.metrics.compile.drill_sql; the calls of a month at 1M
    # deals: -22 % CPU a page; a client list, joined to its flags, read twice
    # cost more).
    reread: bool = False


_MANAGER = Column("manager", "manager_name", "Менеджер", "Manager")
# What a list of companies or contacts shows beside its facts ({kind}_text).
_CLIENT_FACTS = (
    Column("last_call", "last_call", "Последний звонок", "Last call", "datetime"),
    Column("last_won", "last_won", "Последняя продажа", "Last sale", "datetime"),
    Column("phone", "phone", "Телефон", "Phone", "phone"),
)
_CLIENT_TEXT = ("title", "phone", "last_call", "last_won")
_CLIENT_PERIOD = ("with_deals", "with_sales", "called")

SOURCES: dict[str, Source] = {
    "deal_rel": Source(
        "deal_rel",
        "deals",
        "deal",
        deal_ctes,
        "in_pipes",
        (
            Column("title", "title", "Сделка", "Deal"),
            _MANAGER,
            Column("pipeline", "pipeline_name", "Воронка", "Pipeline"),
            Column("stage", "stage_name", "Стадия", "Stage"),
            Column("amount", "amount", "Сумма", "Amount", "amount"),
            Column("amount_missing", "amount_missing", "Нет суммы", "No amount", "bool"),
            Column("opportunity", "opportunity", "Сумма в валюте", "Amount in currency", "amount"),
            Column("currency", "currency_id", "Валюта", "Currency"),
            Column("date_create", "date_create", "Создана", "Created", "datetime"),
            Column("close_time", "close_time", "Закрыта", "Closed", "datetime"),
            Column("closedate", "closedate", "Плановая дата", "Planned close", "date"),
        ),
        "/crm/deal/details/{id}/",
        (
            "title",
            "pipeline_name",
            "stage_id",
            "stage_name",
            "source_id",
            "opportunity",
            "currency_id",
        ),
    ),
    "lead_rel": Source(
        "lead_rel",
        "leads",
        "lead",
        lead_ctes,
        "TRUE",
        (
            Column("title", "title", "Лид", "Lead"),
            _MANAGER,
            Column("status", "status_name", "Статус", "Status"),
            Column("source", "source_id", "Источник", "Source"),
            Column("date_create", "date_create", "Создан", "Created", "datetime"),
            Column("close_time", "close_time", "Закрыт", "Closed", "datetime"),
        ),
        "/crm/lead/details/{id}/",
        ("status_id", "status_name", "source_id", "title"),
        reread=True,
    ),
    "company_rel": Source(
        "company_rel",
        "companies",
        "company",
        company_ctes,
        "TRUE",
        (
            Column("title", "title", "Компания", "Company"),
            _MANAGER,
            Column("date_create", "date_create", "Создана", "Created", "datetime"),
            Column("with_deals", "with_deals", "Сделки за период", "Deals in period", "bool"),
            Column("with_sales", "with_sales", "Продажи за период", "Sales in period", "bool"),
            Column("called", "called", "Звонки за период", "Calls in period", "bool"),
            *_CLIENT_FACTS,
        ),
        "/crm/company/details/{id}/",
        _CLIENT_TEXT,
        _CLIENT_PERIOD,
    ),
    "contact_rel": Source(
        "contact_rel",
        "contacts",
        "contact",
        contact_ctes,
        "TRUE",
        (
            Column("title", "title", "Контакт", "Contact"),
            _MANAGER,
            Column("date_create", "date_create", "Создан", "Created", "datetime"),
            Column("with_deals", "with_deals", "Сделки за период", "Deals in period", "bool"),
            Column("with_sales", "with_sales", "Продажи за период", "Sales in period", "bool"),
            Column("called", "called", "Звонки за период", "Calls in period", "bool"),
            *_CLIENT_FACTS,
        ),
        "/crm/contact/details/{id}/",
        _CLIENT_TEXT,
        _CLIENT_PERIOD,
    ),
    "call_rel": Source(
        "call_rel",
        "calls",
        "call",
        call_ctes,
        "TRUE",
        (
            _MANAGER,
            Column("started", "call_start_date", "Начало", "Started", "datetime"),
            # Type and result are codes in the store, shown in words by the page
            # (rop.web.formatting: kinds call_type and call_status).
            Column("call_type", "call_type", "Тип", "Type", "call_type"),
            Column("duration", "call_duration", "Длительность", "Duration", "seconds"),
            Column("failed_code", "call_failed_code", "Результат", "Result", "call_status"),
            Column("phone", "phone_number", "Номер", "Number", "phone"),
            Column("client", "client_name", "Клиент", "Client"),
            Column("crm_entity_type", "crm_entity_type", "Привязка", "Bound to", "crm_entity"),
            Column("crm_entity_id", "crm_entity_id", "ID в CRM", "CRM ID", "count"),
            Column("record", "record", "Запись", "Recording", "record"),
        ),
        None,
        ("phone_number", "client_name", "record"),
        reread=True,
    ),
}

SECTION_SOURCE: dict[str, str] = {
    "deals": "deal_rel",
    "leads": "lead_rel",
    "companies": "company_rel",
    "contacts": "contact_rel",
    "calls": "call_rel",
}

DAYS = days_between  # re-exported for the catalogue
