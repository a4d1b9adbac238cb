"""Stage analytics: movement matrix, time in stage, stage funnel and stuck records.

All four views read the stage facts of rop.metrics.stage_facts: the stage
history cut into *visits* (a record entered a stage at ``entered`` and left
it at ``left_at``, the next history row; NULL while it is still there), the
open visits and the furthest stage per record, each computed once per data
version and sorted so a period reads a range of it, not all of it.

The period relations built on them (one row per record and pipeline, or per
record, pipeline and stage) are ordinary sources: a figure is a condition on
them, so every cell of the matrix, every stage time and every funnel step is
a :class:`~rop.metrics.figure.Figure` whose drill-down is compiled from the
same definition (rop.metrics.compile). Figures are parameterised by their key
(``deal_move:<pipeline>|<from>|<to>`` and so on, see
:func:`stage_figure`); the parts of a key are bound values, never SQL.

Deals and leads are built by the same code; a lead has no pipeline, so its
pipeline is 0 everywhere.
"""

# SQL here is assembled from fragments defined in code only; every value is a
# bound parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
from collections.abc import Callable

from rop.metrics.figure import Column, Figure
from rop.metrics.sources import Cte, Options, Source, deal_ctes, in_period, lead_ctes
from rop.metrics.stage_facts import (
    DEAL,
    KINDS,
    LEAD,
    Kind,
    open_base,
    reach_base,
    stage_order,
    visit_base,
    visits_helper,
)
from rop.store.dialect import days_between, epoch_seconds

# Row and column markers of the matrix that are not stages.
NEW = "+new"  # no stage at the start: created (or first seen) in the period
CAME_IN = "+in"  # came from another pipeline during the period
LEFT = "+out"  # left for another pipeline during the period
MARKERS = (NEW, CAME_IN, LEFT)


def _pipes(opts: Options, alias: str = "") -> str:
    return f"{alias}pipe IN (SELECT unnest($pipes))" if opts.pipelines else "TRUE"


def _stuck_after(k: Kind) -> tuple[str, str]:
    """(the threshold's expression, the join it needs) for an open visit ``o``.

    A deal's pipeline may have its own (``$stuck_pipes``/``$stuck_limits``, the
    filter's overrides); lead statuses have no pipeline and take the default.
    """
    if k is LEAD:
        return "$stuck_days", ""
    return "coalesce(n.days, $stuck_days)", (
        "\nLEFT JOIN (SELECT unnest(CAST($stuck_pipes AS BIGINT[])) AS pipe,\n"
        "    unnest(CAST($stuck_limits AS DOUBLE PRECISION[])) AS days) n ON n.pipe = o.pipe"
    )


def _moved_sql(k: Kind) -> str:
    """The matrix rows of records that moved in or after the period (see :func:`_move_rel`)."""
    v = f"{k.entity}_visit_base"
    cols = "id, manager_id, pipe, stage, semantic, entered"
    return f"""WITH e AS (
SELECT {cols} FROM {v}
WHERE k >= $p_from AND entered < $p_to AND (left_at IS NULL OR left_at >= $p_to)),
s AS (SELECT {cols} FROM {v} WHERE k >= $p_from AND entered < $p_from),
ends AS (
SELECT e.id, e.manager_id, s.pipe AS s_pipe, s.stage AS s_stage, s.semantic AS s_semantic,
    s.entered AS s_entered, e.pipe AS e_pipe, e.stage AS e_stage, e.semantic AS e_semantic,
    e.entered AS e_entered
FROM e LEFT JOIN s ON s.id = e.id)
SELECT id, manager_id, s_pipe AS pipe, s_stage AS from_stage,
    CASE WHEN e_pipe = s_pipe THEN e_stage ELSE '{LEFT}' END AS to_stage,
    CASE WHEN e_pipe = s_pipe THEN e_semantic END AS to_semantic,
    s_entered AS from_entered, e_entered AS to_entered
FROM ends WHERE s_stage IS NOT NULL AND (s_semantic = 'P' OR s_entered <> e_entered)
UNION ALL
SELECT id, manager_id, e_pipe, CASE WHEN s_stage IS NULL THEN '{NEW}' ELSE '{CAME_IN}' END,
    e_stage, e_semantic, s_entered, e_entered
FROM ends WHERE s_stage IS NULL OR s_pipe <> e_pipe"""


def _move_rel(k: Kind, opts: Options) -> Cte:
    """One row per record and pipeline: its stage at the period's start and at its end.

    Records in progress at the start, created in the period, or that moved in
    it; a record closed before the period and untouched in it is not there.
    A record that changed pipeline has a row in each: it leaves the first
    (column "+out") and enters the second (row "+in").

    Records untouched since before the period and in progress are the
    diagonal, read straight from their open visit (most records; no grouping).
    The others moved in or after the period, so each has a visit alive at the
    period's end among the visits with ``k >= $p_from`` (a range of the sorted
    visits: the end visit ``e``), and, if it existed at the start, the one
    alive then (``s``, at most one; it ended in or after the period, so it is in
    the same range). ``e`` joined to ``s`` by record is the start and the end;
    a drill-down of one cell narrows ``s`` by its stage before the join.
    """
    return Cte(
        f"{k.entity}_move_rel",
        f"""SELECT * FROM (
SELECT id, manager_id, pipe, stage AS from_stage, stage AS to_stage, semantic AS to_semantic,
    entered AS from_entered, entered AS to_entered
FROM {k.entity}_open_base WHERE entered < $p_from
UNION ALL
SELECT * FROM ({_moved_sql(k)}) x
) m WHERE {_pipes(opts)}""",
    )


def _moved_rel(k: Kind, opts: Options) -> Cte:
    """The matrix without its diagonal of untouched records (the stage section counts
    those from the open aggregates, rop.report.stages)."""
    return Cte(f"{k.entity}_moved_rel", f"SELECT * FROM ({_moved_sql(k)}) m WHERE {_pipes(opts)}")


def _done_sql(k: Kind, opts: Options) -> str:
    """A row per record and stage it left in the period: its visits there summed.

    Most records visited a stage once (``again`` false): their one visit is the
    row, with no grouping; the others' visits are summed.
    """
    v = f"{k.entity}_visit_base"
    where = (
        f"k >= $p_from AND k < $p_to AND left_at IS NOT NULL AND semantic = 'P' AND {_pipes(opts)}"
    )
    rest = (
        "CAST(NULL AS DOUBLE PRECISION) AS open_days, CAST(NULL AS TIMESTAMP) AS open_since, "
        "FALSE AS is_open, TRUE AS is_done, CAST(NULL AS DOUBLE PRECISION) AS stuck_after"
    )
    days = days_between("left_at", "entered")
    return f"""SELECT id, manager_id, pipe, stage, {days} AS done_days, {rest}
FROM {v} WHERE {where} AND NOT again
UNION ALL
SELECT id, max(manager_id) AS manager_id, pipe, stage, sum({days}) AS done_days, {rest}
FROM {v} WHERE {where} AND again
GROUP BY id, pipe, stage"""


def _open_sql(k: Kind, opts: Options, where: str = "TRUE") -> str:
    after, join = _stuck_after(k)
    return f"""SELECT o.id, o.manager_id, o.pipe, o.stage, CAST(NULL AS DOUBLE PRECISION) AS done_days,
    {days_between("$now", "o.entered")} AS open_days, o.entered AS open_since,
    TRUE AS is_open, FALSE AS is_done, {after} AS stuck_after
FROM {k.entity}_open_base o{join}
WHERE {_pipes(opts, "o.")} AND {where}"""


def _stay_rel(k: Kind, opts: Options) -> Cte:
    """Time in in-progress stages: a row per record and stage it left in the period
    (its visits there summed, ``done_days``), and a row per record for the stage it
    is in now (``open_days``, up to ``$now``; ``open_since`` is its last movement,
    so the same row tells a stuck record against ``stuck_after``, its pipeline's
    threshold: ``$stuck_days`` unless the filter gives the pipeline its own). The
    two kinds of row are told apart by ``is_done``/``is_open``; each figure reads
    one kind, one row per record.
    A visit that ended in the period has ``k`` (= ``left_at``) in it: a range.
    """
    return Cte(f"{k.entity}_stay_rel", f"{_done_sql(k, opts)}\nUNION ALL\n{_open_sql(k, opts)}")


def _done_rel(k: Kind, opts: Options) -> Cte:
    """The stay relation's rows of visits that ended in the period only."""
    return Cte(f"{k.entity}_done_rel", _done_sql(k, opts))


def _recent_rel(k: Kind, opts: Options) -> Cte:
    """The stay relation's open rows that began at or after ``$recent_from``: the few
    the stage section subtracts from the open aggregates (rop.report.stages)."""
    return Cte(f"{k.entity}_recent_rel", _open_sql(k, opts, "o.entered >= $recent_from"))


def _reach_rel(k: Kind, opts: Options) -> Cte:
    """One row per record created in the period and pipeline: the furthest stage it reached."""
    return Cte(
        f"{k.entity}_reach_rel",
        f"SELECT id, manager_id, pipe, reach, reach_stage FROM {k.entity}_reach_base "
        f"WHERE {in_period('created')} AND {_pipes(opts)}",
    )


def _ctes(k: Kind, rel: Callable[[Kind, Options], Cte]) -> Callable[[Options], list[Cte]]:
    """The report's own names step (``deal_text``/``lead_text``, cached once for both)
    with its helpers, the stage facts the relation reads and the period relation."""

    def build(opts: Options) -> list[Cte]:
        report = deal_ctes(opts) if k is DEAL else lead_ctes(opts)
        text = [c for c in report if c.name.endswith(("_dir", "_text"))]
        # Only the facts this relation reads: each cached one is computed when
        # first named, so the funnel does not build the visits and back.
        if rel is _reach_rel:
            facts = [reach_base(k)]
        elif rel in (_done_rel, _moved_rel):
            facts = [visit_base(k)]
        elif rel is _recent_rel:
            facts = [open_base(k)]
        else:
            facts = [visit_base(k), open_base(k)]
        order = [stage_order(k), stage_order(k, "order_base"), visits_helper(k)]
        return [*text, *order, *facts, rel(k, opts)]

    return build


_MANAGER = Column("manager", "manager_name", "Менеджер", "Manager")
_TITLE = {"deal": ("Сделка", "Deal"), "lead": ("Лид", "Lead")}


def _name(k: Kind, expr: str) -> str:
    # A stage's name for a list (the marker itself when it is not a stage).
    return (
        f"coalesce((SELECT max(o.name) FROM {k.entity}_order_base o "
        f"WHERE o.status_id = {expr}), {expr})"
    )


def _sources(k: Kind) -> dict[str, Source]:
    title = Column("title", "title", *_TITLE[k.entity])
    card = f"/crm/{k.entity}/details/{{id}}/"
    ent = k.entity
    return {
        f"{k.entity}_move_rel": Source(
            f"{k.entity}_move_rel", k.section, ent, _ctes(k, _move_rel), "TRUE",
            (title, _MANAGER,
             Column("from_stage", _name(k, "from_stage"), "Было", "From"),
             Column("to_stage", _name(k, "to_stage"), "Стало", "To"),
             Column("from_entered", "from_entered", "В стадии с", "In stage since", "datetime"),
             Column("to_entered", "to_entered", "Последнее движение", "Last movement",
                    "datetime")),
            card, ("title",),
        ),
        f"{k.entity}_stay_rel": Source(
            f"{k.entity}_stay_rel", k.section, ent, _ctes(k, _stay_rel), "TRUE",
            (title, _MANAGER,
             Column("stage", _name(k, "stage"), "Стадия", "Stage"),
             Column("open_since", "open_since", "В стадии с", "In stage since", "datetime"),
             Column("open_days", "open_days", "Дней без движения", "Days without movement",
                    "days")),
            card, ("title",),
        ),
        f"{k.entity}_reach_rel": Source(
            f"{k.entity}_reach_rel", k.section, ent, _ctes(k, _reach_rel), "TRUE",
            (title, _MANAGER,
             Column("reach", _name(k, "reach_stage"), "Дальняя стадия", "Furthest stage")),
            card, ("title",),
        ),
    }  # fmt: skip


STAGE_SOURCES: dict[str, Source] = {**_sources(DEAL), **_sources(LEAD)}


def _section_sources(k: Kind) -> dict[str, Source]:
    # Parts of the relations above that only the stage section counts (no lists):
    # the matrix without its diagonal, the ended visits, the recent open visits.
    return {
        f"{k.entity}_{part}_rel": Source(
            f"{k.entity}_{part}_rel", k.section, k.entity, _ctes(k, rel), "TRUE", (), None
        )
        for part, rel in (("moved", _moved_rel), ("done", _done_rel), ("recent", _recent_rel))
    }


# Read by rop.report.stages while the store's stage facts are current.
SECTION_SOURCES: dict[str, Source] = {**_section_sources(DEAL), **_section_sources(LEAD)}


def open_agg_sql(k: Kind, opts: Options, who: str) -> str:
    """The stored open aggregates (rop.store.stage_facts) of the managers ``who`` lets
    through, per pipeline, stage and manager (``m``; NULL: every manager), with the open
    times of :func:`_stay_rel` taken from them: ``$now`` minus the mean and the median
    of when the visits began."""
    now = epoch_seconds("$now")
    return f"""SELECT pipe, stage, manager_id AS m, n AS n_open,
    CASE WHEN n > 0 THEN ({now} - entered_sum / n) / 86400.0 END AS mean_open,
    ({now} - entered_median) / 86400.0 AS med_open
FROM {k.entity}_open_agg WHERE {_pipes(opts)} AND {who}"""


# Figure key prefixes: <entity>_<view>:<pipeline>|<stage>[|<stage>]
VIEWS = ("move", "time", "time_open", "reach", "stuck")
SEP = "|"


def _param(key: str, part: str) -> str:
    # Parameter names come from code, never from data: a digest of the key.
    return "s_" + hashlib.sha1(f"{key}/{part}".encode()).hexdigest()[:10]


def _sort_of(k: Kind, p: str) -> str:
    return f"(SELECT max(o.sort) FROM {k.entity}_order_base o WHERE o.status_id = ${p})"


_DAYS_LABEL = ("Дней в стадии", "Days in stage")


def parse_key(key: str) -> tuple[Kind, str, int, tuple[str, ...]] | None:
    """``<entity>_<view>:<pipeline>|<parts>`` -> (kind, view, pipeline, parts); None if not one."""
    head, colon, rest = key.partition(":")
    if not colon:
        return None
    entity, _, view = head.partition("_")
    if entity not in KINDS or view not in VIEWS:
        return None
    pieces = rest.split(SEP)
    try:
        pipe = int(pieces[0])
    except ValueError:
        return None
    if pipe < 0:
        return None
    parts = tuple(pieces[1:])
    want = {"move": 2, "time": 1, "time_open": 1, "reach": 1, "stuck": 0}[view]
    if len(parts) != want or any(not p for p in parts):
        return None
    return KINDS[entity], view, pipe, parts


def key_of(entity: str, view: str, pipe: int, *parts: str) -> str:
    return f"{entity}_{view}:{pipe}" + "".join(SEP + p for p in parts)


def stage_figure(key: str) -> Figure | None:
    """The figure of a stage-view key, or None when ``key`` is not one."""
    parsed = parse_key(key)
    if parsed is None:
        return None
    k, view, pipe, parts = parsed
    pp = _param(key, "pipe")
    params: list[tuple[str, object]] = [(pp, pipe)]
    on_pipe = f"pipe = ${pp}"
    src = f"{k.entity}_move_rel"
    word = "сделки" if k is DEAL else "лиды"
    if view == "move":
        pf, pt = _param(key, "from"), _param(key, "to")
        params += [(pf, parts[0]), (pt, parts[1])]
        cond = f"{on_pipe} AND from_stage = ${pf} AND to_stage = ${pt}"
        label = f"{parts[0]} → {parts[1]}"
        return Figure(
            key, k.section, src, "count", "count", cond, label, label,
            f"{word.capitalize()}, которые были в «{parts[0]}» в начале периода и в «{parts[1]}» "
            "в конце (или сейчас).",
            f"Records in “{parts[0]}” at the period's start and in “{parts[1]}” at its end "
            "(or now).",
            params=tuple(params),
        )  # fmt: skip
    if view in ("time", "time_open"):
        ps = _param(key, "stage")
        params.append((ps, parts[0]))
        done = view == "time"
        value = "done_days" if done else "open_days"
        cond = f"{on_pipe} AND stage = ${ps} AND {'is_done' if done else 'is_open'}"
        return Figure(
            key, k.section, f"{k.entity}_stay_rel", "mean", "days", cond,
            f"Время в «{parts[0]}»" if done else f"Сейчас в «{parts[0]}»",
            f"Time in “{parts[0]}”" if done else f"Now in “{parts[0]}”",
            "Среднее время в стадии по визитам, закончившимся в периоде (сумма визитов записи)."
            if done else "Записи, которые сейчас в стадии: время до сейчас.",
            "Mean time in the stage over the visits that ended in the period (a record's "
            "visits summed)." if done else "Records in the stage now: time up to now.",
            value=value, value_label=_DAYS_LABEL, params=tuple(params),
        )  # fmt: skip
    if view == "reach":
        ps = _param(key, "stage")
        params.append((ps, parts[0]))
        sort = _sort_of(k, ps)
        return Figure(
            key, k.section, f"{k.entity}_reach_rel", "share", "share",
            f"{on_pipe} AND reach >= {sort}",
            f"Дошли до «{parts[0]}» и дальше", f"Reached “{parts[0]}” and went on",
            "Созданные в периоде, дошедшие хотя бы до этой стадии (пропуск стадии считается "
            "проходом); в числителе — дошедшие до следующей.",
            "Created in the period, reached at least this stage (a skipped stage counts as "
            "passed); the numerator: reached the next one.",
            numerator=f"reach > {sort}", params=tuple(params),
        )  # fmt: skip
    # stuck
    return Figure(
        key, k.section, f"{k.entity}_stay_rel", "count", "count",
        f"{on_pipe} AND is_open AND open_days > stuck_after",
        "Зависшие", "Stuck",
        "В работе сейчас, без движения по стадиям дольше N дней (N — порог воронки).",
        "In progress now, no stage movement for more than N days (the pipeline's N).",
        params=tuple(params),
    )  # fmt: skip
