"""The SQL each engine's renderer produces, kept as snapshots (as dbt-labs/metricflow does).

A change to the catalogue, the relations or a dialect shows up here as a diff
of reviewed SQL text per engine. Regenerate on purpose with
``ROP_UPDATE_SNAPSHOTS=1 pytest tests/test_dialect.py`` and read the diff.
The engines' outputs differ only where ``rop.store.dialect`` says they do.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from rop.metrics.catalogue import STATIC, figure
from rop.metrics.client_counts import client_counts_sql
from rop.metrics.compile import Context, aggregate_sql, drill_sql, previous_figure
from rop.metrics.rollups import beside_records, rollup_sql, split
from rop.metrics.sources import SOURCES, Options
from rop.store.dialect import DUCKDB, POSTGRES, Dialect, to_pyformat

SNAPSHOTS = Path(__file__).parent / "snapshots" / "sql"
DIALECTS = {"duckdb": DUCKDB, "postgres": POSTGRES}


def _ctx(
    dialect: Dialect, pipelines: bool = False, allowed: bool = False, rollups: bool = False
) -> Context:
    params = {
        "portal": "p.bitrix24.ru",
        "base": "RUB",
        "p_from": datetime(2026, 10, 31, 21),
        "p_to": datetime(2026, 11, 30, 21),
        "tz": "Europe/Moscow",
        "min_s": 0,
        "max_s": None,
        "pipes": [1],
        "d_from": datetime(2026, 11, 1).date(),
        "d_to": datetime(2026, 11, 30).date(),
        "today": datetime(2026, 11, 27).date(),
    }
    return Context(
        params=params,
        opts=Options(pipelines=pipelines, max_call=False, dialect=dialect),
        allowed=frozenset({3, 4}) if allowed else None,
        rollups=rollups,
    )


def _days_ctx(dialect: Dialect) -> Context:
    ctx = _ctx(dialect, pipelines=True)
    params = {
        **ctx.params,
        "q_from": datetime(2026, 9, 30, 21),
        "q_to": datetime(2026, 10, 31, 21),
        "qd_from": datetime(2026, 10, 1).date(),
        "qd_to": datetime(2026, 10, 31).date(),
    }
    opts = replace(ctx.opts, previous=True, client_days=True)
    return replace(ctx, params=params, opts=opts)


def _queries(dialect: Dialect) -> dict[str, str]:
    deals = [f for f in STATIC if f.section == "deals"]
    leads = [f for f in STATIC if f.section == "leads"]
    contacts = [f for f in STATIC if f.section == "contacts"]
    won = figure("deals_won")
    # With the rollups current: the sums over them, the rest ("moved") over the
    # records, in one statement.
    rolled_ctx = _ctx(dialect, pipelines=True, allowed=True, rollups=True)
    rolled, rest = split("deals", deals, rolled_ctx)
    return {
        "deals_section_rollups": beside_records(
            aggregate_sql(SOURCES["deal_rel"], rest, rolled_ctx),
            rollup_sql("deals", rolled, rolled_ctx, offset=len(rest)),
        ),
        "deals_section": aggregate_sql(SOURCES["deal_rel"], deals, _ctx(dialect)),
        "leads_section_scoped": aggregate_sql(
            SOURCES["lead_rel"], leads, _ctx(dialect, allowed=True)
        ),
        "contacts_counts_scoped": client_counts_sql(
            SOURCES["contact_rel"], contacts, _ctx(dialect, allowed=True)
        )
        or "",
        # The flags of both periods from the stored client days (a pipeline subset).
        "contacts_counts_days": client_counts_sql(
            SOURCES["contact_rel"],
            [*contacts, *(previous_figure(SOURCES["contact_rel"], f) for f in contacts)],
            _days_ctx(dialect),
        )
        or "",
        # The same, counted per manager from the stored copies of the clients'
        # managers (the client days' manager_id, the client counts per manager).
        "contacts_counts_stored": client_counts_sql(
            SOURCES["contact_rel"],
            [*contacts, *(previous_figure(SOURCES["contact_rel"], f) for f in contacts)],
            replace(
                _days_ctx(dialect), opts=replace(_days_ctx(dialect).opts, client_managers=True)
            ),
        )
        or "",
        # The default pipelines and call bound: the flagged clients per manager
        # counted from the stored client firsts, no grouping per client.
        "contacts_counts_firsts": client_counts_sql(
            SOURCES["contact_rel"],
            [*contacts, *(previous_figure(SOURCES["contact_rel"], f) for f in contacts)],
            replace(
                _days_ctx(dialect),
                opts=replace(
                    _days_ctx(dialect).opts,
                    pipelines=False,
                    client_managers=True,
                    client_firsts=True,
                ),
            ),
        )
        or "",
        "deals_won_drill_pipelines": drill_sql(
            SOURCES["deal_rel"],
            won,
            _ctx(dialect, pipelines=True),
            "f.manager_id = $row",
            "f.close_time DESC, f.id",
            50,
            0,
        )[0],
        # A page in the default order: picked first, then its texts for its rows
        # only (the deals, restricted to the page's ids). The calls' page is paged
        # on PostgreSQL only (tests/test_drill_texts.py), so not compared here.
        "deals_won_drill_page": drill_sql(
            SOURCES["deal_rel"],
            figure("deals_won"),
            _ctx(dialect),
            "f.manager_id = $row",
            "f.id ASC NULLS LAST, f.id",
            100,
            0,
        )[0],
    }


def _as_sent(engine: str, sql: str) -> str:
    """What goes to the driver: PostgreSQL gets psycopg's placeholders."""
    return to_pyformat(sql) if engine == "postgres" else sql


@pytest.mark.parametrize("engine", sorted(DIALECTS))
def test_rendered_sql_matches_its_snapshot(engine: str) -> None:
    for name, sql in _queries(DIALECTS[engine]).items():
        text = _as_sent(engine, sql).rstrip() + "\n"
        path = SNAPSHOTS / engine / f"{name}.sql"
        if os.environ.get("ROP_UPDATE_SNAPSHOTS") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        expected = path.read_text(encoding="utf-8")
        assert text == expected, "".join(
            difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path))
        )


def test_engines_differ_only_in_the_dialects_spellings() -> None:
    duck, pg = _queries(DUCKDB), _queries(POSTGRES)
    for name in duck:
        changed = {
            line.strip()
            for line in difflib.ndiff(duck[name].splitlines(), pg[name].splitlines())
            if line[:1] in "+-"
        }
        for line in changed:
            assert (
                "list(" in line
                or "array_agg(" in line
                or "list_filter" in line
                or "unnest(b.moves)" in line
                or "unnest(u.moves)" in line
            ), (name, line)


@pytest.mark.parametrize(
    ("sql", "sent"),
    [
        (
            "SELECT * FROM t WHERE a = $a AND b = $b",
            "SELECT * FROM t WHERE a = %(a)s AND b = %(b)s",
        ),
        ("SELECT ? , ?", "SELECT %s , %s"),
        ("x LIKE 'DEAL_STAGE%' AND y = ?", "x LIKE 'DEAL_STAGE%%' AND y = %s"),
        ("SELECT '$not ? a param', \"col?\"", "SELECT '$not ? a param', \"col?\""),
        ("-- the portal's name ?\nSELECT $p", "-- the portal's name ?\nSELECT %(p)s"),
        ("SELECT 'it''s' || $x", "SELECT 'it''s' || %(x)s"),
        ("SELECT 5 % 2, ?", "SELECT 5 %% 2, %s"),
    ],
)
def test_placeholders_are_rewritten_once_outside_literals(sql: str, sent: str) -> None:
    assert to_pyformat(sql) == sent
