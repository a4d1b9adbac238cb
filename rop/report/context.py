"""From a filter to the bound values and the narrowed scope that queries run with."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rop.metrics.cache import materializer
from rop.metrics.compile import Context, relation
from rop.metrics.errors import AccessDenied, ReportInputError
from rop.metrics.sources import SOURCES, Options
from rop.metrics.stages import STAGE_SOURCES
from rop.report.filter import ReportFilter
from rop.report.periods import utc_bounds, zone
from rop.report.portal import PortalRow, select_portal
from rop.report.scope import (
    Scope,
    choosable_departments,
    is_known_user,
    subtree,
    users_of,
    viewer_scope,
)
from rop.store import client_facts
from rop.store.db import Store
from rop.store.facts import BY_STEP, facts_ready, stored_sql
from rop.store.rollups import rollups_ready
from rop.store.stage_facts import stored_steps

# A period of up to this many days is short: the report computes both periods of
# the companies' and contacts' sections in one query from the period's deals and
# calls (few: one join of every client is most of the cost, rop.report.build);
# a longer one reads each client's flags from the stored client facts instead
# (rop.store.client_facts: at 1M deals, a year to date's flags cost about half as
# much CPU, a month's about 1.5x as much; docs/BENCHMARKS.md round 5).
PAIR_DAYS = 92


def short_period(date_from: date, date_to: date) -> bool:
    return (date_to - date_from).days + 1 <= PAIR_DAYS


# Reuse close times and base amounts between queries while the data is unchanged;
# tests switch it off to check that the cached and the inline SQL agree.
CACHE_STATIC_STEPS = True
# Sums and counts from the stored rollups where they answer exactly
# (rop.metrics.rollups); tests switch it off to compare with the records.
USE_ROLLUPS = True
# The client sections' flags from the stored client days (rop.store.client_days,
# kept with the rollups); tests and bench/bench_clients.py switch it off to
# compare with the flags from the period's deals and calls.
USE_CLIENT_DAYS = True
# The client sections' counts per manager from the stored copies of the clients'
# managers (rop.store.manager_clients, the client days' manager_id); bench
# scripts switch it off to time the counts that read the clients.
USE_CLIENT_MANAGERS = True
# The client sections' flagged clients per manager from the stored client firsts
# (rop.store.client_firsts) for the default pipelines and call bound; bench
# scripts switch it off to time the client days' grouping per client.
USE_CLIENT_FIRSTS = True


@dataclass(frozen=True)
class Prepared:
    """A validated filter on one portal: its zone, today, the scope and names of columns."""

    store: Store
    portal: PortalRow
    flt: ReportFilter
    tz: ZoneInfo
    today: date
    scope: Scope  # the viewer's scope narrowed by the filter's departments and managers
    names: dict[str, str]  # figure key -> label for key stages/statuses
    # reuses the static steps of the relations (rop.metrics.cache); None: inline SQL
    materialize: Callable[[str, str, dict[str, Any]], str] | None = None
    # the static steps read from the store's fact tables (current ones only)
    stored: dict[str, str] | None = None
    # the store's rollups of those facts are current (rop.store.rollups)
    rollups: bool = False


def prepare(store: Store, flt: ReportFilter, portal: str | None) -> Prepared:
    """Check the filter against the store; every problem is one ReportInputError."""
    flt.validate()
    row = select_portal(store, portal)
    key = row.key
    tz = zone(row.timezone)
    known_pipes = {
        r[0] for r in store.query_remembered("SELECT id FROM pipelines WHERE portal = ?", [key])
    }
    known_pipes.add(0)  # the default pipeline exists even when crm.category.list omits it
    for p in (*flt.pipelines, *(p for p, _ in flt.stuck_days_by)):
        if p not in known_pipes:
            raise ReportInputError(
                "unknown_pipeline", pipeline=p, choices=", ".join(map(str, sorted(known_pipes)))
            )
    names: dict[str, str] = {}
    stages = {
        sid: (name, cat, entity)
        for sid, name, cat, entity in store.query_remembered(
            "SELECT status_id, name, category_id, entity_id FROM statuses "
            "WHERE portal = ? AND entity_id LIKE 'DEAL_STAGE%'",
            [key],
        )
    }
    labels = stage_labels(
        ((sid, name, cat if cat is not None else _pipe_of(entity))
         for sid, (name, cat, entity) in stages.items()),
        dict(store.query_remembered("SELECT id, name FROM pipelines WHERE portal = ?", [key])),
    )  # fmt: skip
    for s in flt.key_stages:
        if s not in stages:
            raise ReportInputError("unknown_stage", stage=s)
        name, cat, entity = stages[s]
        pipe = cat if cat is not None else _pipe_of(entity)
        if flt.pipelines and pipe not in flt.pipelines:
            raise ReportInputError("stage_outside_pipelines", stage=s)
        names["deal_stage:" + s] = labels.get(s) or s
    statuses = dict(
        store.query_remembered(
            "SELECT status_id, name FROM statuses WHERE portal = ? AND entity_id = 'STATUS'",
            [key],
        )
    )
    for s in flt.key_statuses:
        if s not in statuses:
            raise ReportInputError("unknown_status", status=s)
        names["lead_status:" + s] = statuses[s] or s
    scope = viewer_scope(store, key, flt.viewer)
    chosen: set[int] | None = None
    if flt.departments:
        for d in flt.departments:
            check_department(store, key, flt.viewer, scope, d)
        chosen = users_of(store, key, subtree(store, key, set(flt.departments)))
    for m in flt.managers:
        check_user(store, key, scope, m)
    if flt.managers:
        chosen = set(flt.managers) if chosen is None else chosen & set(flt.managers)
    scope = scope.narrowed(frozenset(chosen) if chosen is not None else None)
    today = flt.today or row.today()
    materialize = materializer(store, key) if CACHE_STATIC_STEPS else None
    # The stored facts when they match the data; else the same SQL in memory.
    stored = (
        {
            **{step: stored_sql(fact) for step, fact in BY_STEP.items()},
            **stored_steps(),
            **client_facts.stored_steps(),
        }
        if CACHE_STATIC_STEPS and facts_ready(store, key)
        else None
    )
    rollups = stored is not None and USE_ROLLUPS and rollups_ready(store, key)
    return Prepared(store, row, flt, tz, today, scope, names, materialize, stored, rollups)


def check_department(
    store: Store, portal: str, viewer: int | None, scope: Scope, department: int
) -> None:
    """A department the store knows and the viewer may choose (a filter, a drill-down)."""
    known = store.scalar(
        "SELECT count(*) FROM departments WHERE portal = ? AND id = ?", [portal, department]
    )
    allowed = choosable_departments(store, portal, viewer, scope)
    if allowed is not None and department not in allowed:
        # Refused before "unknown": a viewer learns nothing outside their scope.
        raise AccessDenied(department=department)
    if not known:
        raise ReportInputError("unknown_department", department=department)


def check_user(store: Store, portal: str, scope: Scope, user: int) -> None:
    """A user the viewer sees and the store knows (by user.get or by their records)."""
    if not scope.sees(user):
        raise AccessDenied(user)
    if not is_known_user(store, portal, user):
        raise ReportInputError("unknown_user", user=user, portal=portal)


def filter_names(prep: Prepared) -> dict[tuple[str, object], str]:
    """Names of pipelines, stages, statuses, departments and users, for the filter's sentence."""
    return store_names(prep.store, prep.portal.key)


def describe_filter(
    store: Store, flt: ReportFilter, lang: str = "ru", portal: str | None = None
) -> str:
    """``flt`` as one sentence in ``lang``, naming what it chose by the store's names."""
    return flt.describe(lang, store_names(store, select_portal(store, portal).key))


def store_names(store: Store, key: str) -> dict[tuple[str, object], str]:
    """(kind, ID) -> name of the portal's pipelines, stages, statuses, departments, users.

    Remembered until the next write where the store allows it (rop.store.memo);
    each caller gets its own copy."""
    return dict(store.remember(("store_names", key), lambda: _store_names(store, key)))


def _store_names(store: Store, key: str) -> dict[tuple[str, object], str]:
    out: dict[tuple[str, object], str] = {}
    for kind, sql in (
        ("pipeline", "SELECT id, name FROM pipelines WHERE portal = ?"),
        ("stage", "SELECT status_id, name FROM statuses WHERE portal = ? "
         "AND entity_id LIKE 'DEAL_STAGE%'"),
        ("status", "SELECT status_id, name FROM statuses WHERE portal = ? "
         "AND entity_id = 'STATUS'"),
        ("department", "SELECT id, name FROM departments WHERE portal = ?"),
        ("user", "SELECT id, trim(coalesce(name, '') || ' ' || coalesce(last_name, '')) "
         "FROM users WHERE portal = ?"),
    ):  # fmt: skip
        for ident, name in store.query(sql, [key]):
            if name:
                out[(kind, ident)] = name
    pipes = {ident: name for (kind, ident), name in out.items() if kind == "pipeline"}
    rows = store.query(
        "SELECT status_id, name, category_id, entity_id FROM statuses "
        "WHERE portal = ? AND entity_id LIKE 'DEAL_STAGE%'",
        [key],
    )
    labels = stage_labels(
        (
            (sid, name, cat if cat is not None else _pipe_of(entity))
            for sid, name, cat, entity in rows
        ),
        pipes,
    )
    out.update({("stage", sid): label for sid, label in labels.items()})
    return out


def stage_labels(
    stages: Iterable[tuple[str, str | None, int]], pipelines: dict[Any, str]
) -> dict[str, str]:
    """Stage ID -> the name a column or a sentence shows. Two pipelines often
    both have a stage "Новая": such a name gets its pipeline, "Новая (Опт)",
    so two key-stage columns never read the same."""
    rows = [(sid, name or sid, pipe) for sid, name, pipe in stages]
    pipes_of: dict[str, set[int]] = {}
    for _sid, name, pipe in rows:
        pipes_of.setdefault(name.strip().casefold(), set()).add(pipe)
    out = {}
    for sid, name, pipe in rows:
        shared = len(pipes_of[name.strip().casefold()]) > 1
        out[sid] = f"{name} ({pipelines.get(pipe) or pipe})" if shared else name
    return out


def _pipe_of(entity: str) -> int:
    # DEAL_STAGE is pipeline 0, DEAL_STAGE_<n> pipeline n.
    tail = entity[len("DEAL_STAGE") :].lstrip("_")
    return int(tail) if tail.isdigit() else 0


def now_utc(prep: Prepared) -> datetime:
    """ "Now" as naive UTC, as the store keeps moments: the end of ``flt.today``
    when the filter fixes today (tests, a report as of a day), else the clock's
    hour: two readers (the page and its JSON twin, the CLI through the server)
    then agree to the digit, and days in a stage need no finer clock."""
    if prep.flt.today is not None:
        return utc_bounds(prep.flt.today, prep.flt.today, prep.tz)[1]
    # The portal's clock at the last copy, as "today" (issue 17): the same data
    # gives the same figures whatever day it is read; the machine's is a last resort.
    clock = prep.portal.clock or prep.portal.updated_at or datetime.now(UTC).replace(tzinfo=None)
    return clock.replace(minute=0, second=0, microsecond=0)


def context(prep: Prepared, date_from: date, date_to: date) -> Context:
    """The bound values of one period (the report runs this twice: now and before)."""
    flt = prep.flt
    p_from, p_to = utc_bounds(date_from, date_to, prep.tz)
    params = {
        "portal": prep.portal.key,
        "base": prep.portal.base_currency,
        "p_from": p_from,
        "p_to": p_to,
        "d_from": date_from,
        "d_to": date_to,
        "today": prep.today,
        # CLOSEDATE is a local day: SQL turns its local midnight into UTC.
        "tz": prep.portal.timezone,
        "min_s": flt.min_call_seconds,
        "max_s": flt.max_call_seconds,
        "pipes": list(flt.pipelines),
        # Stage analytics: "now" for a record still in its stage, and the stuck threshold.
        "now": now_utc(prep),
        "stuck_days": float(flt.stuck_days),
        "stuck_pipes": [p for p, _ in flt.stuck_days_by],
        "stuck_limits": [float(d) for _, d in flt.stuck_days_by],
    }
    scope = prep.scope
    granted = frozenset(scope.granted.full) if scope.granted else frozenset()
    opts = Options(
        pipelines=bool(flt.pipelines),
        max_call=flt.max_call_seconds is not None,
        granted=granted,
        dialect=prep.store.dialect,
        # The stored client facts, for a long period (see PAIR_DAYS), are about
        # every pipeline, any call duration and deals and calls seen whole
        # (rop.store.client_facts); else the flags come from the deal and call
        # facts of the period.
        client_facts=bool(prep.stored)
        and not short_period(date_from, date_to)
        and not flt.pipelines
        and flt.min_call_seconds == 0
        and flt.max_call_seconds is None
        and not granted & {"deal", "call"},
        # Any filter: a list's client texts are the same for every one.
        client_texts=bool(prep.stored),
    )
    # The client sections' counts per manager from the stored client days
    # (rop.store.client_days, built with the rollups) where the client facts do
    # not answer: a short period, or a pipeline subset or call bound over a long one.
    opts = replace(
        opts,
        client_days=prep.rollups
        and USE_CLIENT_DAYS
        and not opts.client_facts
        and flt.max_call_seconds is None
        and not granted & {"deal", "call"},
        # Built with the client days: the clients counted per manager.
        client_managers=prep.rollups and USE_CLIENT_DAYS and USE_CLIENT_MANAGERS,
    )
    # The default pipelines and call bound, over any period (a long one too,
    # where the client facts would be joined to the clients): the flagged clients
    # per manager counted from the stored client firsts (rop.store.client_firsts).
    opts = replace(
        opts,
        client_firsts=opts.client_managers
        and USE_CLIENT_FIRSTS
        and not flt.pipelines
        and flt.min_call_seconds == 0
        and flt.max_call_seconds is None
        and not granted & {"deal", "call"},
    )
    return Context(
        params=params,
        opts=opts,
        allowed=None if scope.everyone else scope.users,
        excluded=scope.excluded if scope.everyone else frozenset(),
        group=flt.by,
        materialize=prep.materialize,
        stored=prep.stored or {},
        grant_viewer=scope.granted.viewer if scope.granted else None,
        grant_full=scope.granted.full if scope.granted else {},
        rollups=prep.rollups,
    )


def warm_sources() -> list[str]:
    """The relations :func:`warm_cache` warms, in its order: a server warms them one
    at a time, each when no viewer's report waits for a build (rop.web.app)."""
    return [*SOURCES, *STAGE_SOURCES]


def warm_cache(
    store: Store, portal: str | None = None, sources: Iterable[str] | None = None
) -> None:
    """Compute the static steps of every section now (rop.metrics.cache).

    A report right after a load or a sync otherwise pays for them (1-2 s at
    1M deals); a server can call this in the background as a sync run ends.
    Nothing is computed twice: a report after it reuses the tables. Of the
    list texts (``*_text``) only those a drill-down reads whole are warmed (the
    clients' while the stored facts lag the data); the others, the calls' too,
    have a paged form: a page names its own rows
    (rop.metrics.compile.relation). ``sources``: only these relations (names of
    :func:`warm_sources`).
    """
    row = select_portal(store, portal)
    key = row.key
    today = row.today()
    prep = prepare(store, ReportFilter(today, today), key)
    if prep.materialize is None:
        return
    ctx = context(prep, today, today)
    every = {**SOURCES, **STAGE_SOURCES}
    for source in [every[name] for name in (warm_sources() if sources is None else sources)]:
        # Materializes each *_base step on the way, and the texts read whole.
        texts = [c for c in source.ctes(ctx.opts) if c.name == f"{source.entity}_text"]
        relation(source, ctx, names=bool(texts) and texts[0].paged is None)
