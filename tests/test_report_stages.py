"""Stage analytics pinned on the hand-made portal `stages` with exact numbers,
and every stage figure equal to its drill-down on it and on a demo portal.

The portal (tests/fixtures/portals/stages, Europe/Moscow) is read for
November 2026 with "today" 2026-11-27, so "now" is 28 Nov 00:00 local. Each
deal's title says which rule it pins (S1 skips a stage, S3 and S4 move
backwards, S5 changes pipeline, S6 is re-opened after a loss, S7 has no
history, S8 and S9 move at local midnight).
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta

import pytest

from rop.bitrix.snapshot import load_snapshot
from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter, ReportInputError
from rop.store import open_store
from tests.fixtures.portals import load

NOV = ReportFilter(
    date(2026, 11, 1), date(2026, 11, 30), sections=("deals", "leads"), today=date(2026, 11, 27)
)
H = 1 / 24


@pytest.fixture(scope="module")
def store():
    s = load("stages")
    yield s
    s.close()


@pytest.fixture(scope="module")
def report(store):
    return build_report(store, NOV)


def pipe(report, pid, kind="deals"):
    return next(p for p in report["stages"][kind]["pipelines"] if p["id"] == pid)


def cells(p):
    return {(c["from"], c["to"]): c["count"] for c in p["matrix"]["cells"]}


def ids(store, key, flt=NOV, **kw):
    return sorted(r["id"] for r in drill(store, flt, key, **kw)["records"])


def test_matrix_rows_start_columns_end(store, report):
    p = pipe(report, 0)
    assert cells(p) == {
        ("+new", "NEW"): 1,  # S11
        ("+new", "PREPARATION"): 1,  # S3: new, forward, then back
        ("+new", "WON"): 1,  # S2
        ("NEW", "EXECUTING"): 1,  # S1 skipped PREPARATION
        ("NEW", "PREPARATION"): 2,  # S8, S9
        ("NEW", "+out"): 1,  # S5 left for pipeline 1
        ("PREPARATION", "PREPARATION"): 1,  # S7, MOVED_TIME only
        ("EXECUTING", "PREPARATION"): 1,  # S4 moved back
        ("LOSE", "WON"): 1,  # S6 re-opened after a loss
    }
    # S10 was won before the period and not touched in it: in no row.
    assert 10 not in {r for c in p["matrix"]["cells"] for r in ids(store, c["figure"])}
    directions = {(c["from"], c["to"]): c["direction"] for c in p["matrix"]["cells"]}
    assert directions[("EXECUTING", "PREPARATION")] == "backward"
    assert directions[("NEW", "EXECUTING")] == "forward"
    assert directions[("PREPARATION", "PREPARATION")] == "stay"
    assert directions[("LOSE", "WON")] == "won"
    assert directions[("NEW", "+out")] == "out"
    assert p["matrix"]["row_totals"] == {"+new": 3, "NEW": 4, "PREPARATION": 1, "EXECUTING": 1,
                                         "LOSE": 1}  # fmt: skip


def test_pipeline_change_leaves_one_matrix_and_enters_the_other(store, report):
    assert ids(store, "deal_move:0|NEW|+out") == [5]
    assert cells(pipe(report, 1)) == {("+in", "C1:PREP"): 1}
    assert ids(store, "deal_move:1|+in|C1:PREP") == [5]


def test_local_midnight_edges(store):
    # S8 moved at 00:00 on 1 Nov: the move is in the period, so it starts in NEW.
    assert 8 in ids(store, "deal_move:0|NEW|PREPARATION")
    # S9 moved at 00:00 on 20 Nov: a period ending on the 19th ends before it.
    to19 = ReportFilter(date(2026, 11, 1), date(2026, 11, 19), today=date(2026, 11, 27))
    assert ids(store, "deal_move:0|NEW|NEW", to19) == [9]
    to20 = ReportFilter(date(2026, 11, 1), date(2026, 11, 20), today=date(2026, 11, 27))
    assert ids(store, "deal_move:0|NEW|PREPARATION", to20) == [8, 9]


def test_time_in_stage_mean_median_open_and_bottleneck(store, report):
    t = {x["stage"]: x for x in pipe(report, 0)["time"]}
    # Visits of NEW that ended in November: S1 40 d, S2 3 d, S3 1 d, S5 42 d,
    # S8 one minute, S9 35 d 14 h.
    new = [40, 3, 1, 42, 1 / 1440, 35 + 14 * H]
    assert t["NEW"]["count"] == 6
    assert t["NEW"]["mean_days"] == pytest.approx(sum(new) / 6)
    assert t["NEW"]["median_days"] == pytest.approx(statistics.median(new))
    assert t["EXECUTING"]["mean_days"] == pytest.approx(15.0)  # 2, 2, 41
    assert t["EXECUTING"]["median_days"] == pytest.approx(2.0)
    assert t["PREPARATION"]["mean_days"] == pytest.approx(10.0)  # S6 re-opened: 15 -> 25 Nov
    # Still there now (28 Nov 00:00): S3 21d14h, S4 7d14h, S7 38d14h, S8 27 d, S9 8 d.
    still = [21 + 14 * H, 7 + 14 * H, 38 + 14 * H, 27, 8]
    assert t["PREPARATION"]["open_count"] == 5
    assert t["PREPARATION"]["open_mean_days"] == pytest.approx(sum(still) / 5)
    assert [x["stage"] for x in pipe(report, 0)["time"] if x["bottleneck"]] == ["NEW"]
    by = {m["user_id"]: m for m in t["EXECUTING"]["managers"]}
    assert by[5]["count"] == 2 and by[5]["mean_days"] == pytest.approx(2.0)  # S2, S3
    assert by[4]["count"] == 1 and by[4]["mean_days"] == pytest.approx(41.0)  # S4
    d = drill(store, NOV, "deal_time:0|NEW")
    assert sorted(r["id"] for r in d["records"]) == [1, 2, 3, 5, 8, 9]
    s7 = drill(store, NOV, "deal_time_open:0|PREPARATION")
    days = next(r for r in s7["records"] if r["id"] == 7)[s7["value_column"]]
    assert days == pytest.approx(38 + 14 * H)


def test_funnel_reached_at_least_semantics(store, report):
    f = {x["stage"]: x for x in pipe(report, 0)["funnel"]}
    # Created in November: S2 (won, skipped PREPARATION), S3 (reached EXECUTING,
    # went back: counted once, at EXECUTING), S11 (still NEW).
    assert (f["NEW"]["reached"], f["NEW"]["went_on"]) == (3, 2)
    assert (f["PREPARATION"]["reached"], f["PREPARATION"]["went_on"]) == (2, 2)
    assert (f["EXECUTING"]["reached"], f["EXECUTING"]["went_on"]) == (2, 1)
    assert f["EXECUTING"]["share"] == pytest.approx(0.5)
    assert f["WON"]["reached"] == 1
    d = drill(store, NOV, "deal_reach:0|PREPARATION")
    assert sorted(r["id"] for r in d["records"]) == [2, 3]
    assert d["value"] == pytest.approx(1.0)


def test_stuck_deals_per_manager_and_threshold(store, report):
    stuck = pipe(report, 0)["stuck"]
    # S1 17d14h, S3 21d14h, S7 38d14h, S8 27 d; S4 (7d14h), S9 (8 d) moved recently.
    assert stuck["count"] == 4
    assert stuck["managers"] == [{"user_id": 4, "count": 3}, {"user_id": 5, "count": 1}]
    recs = drill(store, NOV, "deal_stuck:0")["records"]
    assert sorted(r["id"] for r in recs) == [1, 3, 7, 8]
    assert next(r for r in recs if r["id"] == 8)["open_days"] == pytest.approx(27.0)
    n30 = ReportFilter(NOV.date_from, NOV.date_to, today=NOV.today, stuck_days=30)
    assert ids(store, "deal_stuck:0", n30) == [7]


def test_viewer_rights_narrow_the_stage_figures(store):
    # Manager 5 sees only their own deals (S2, S3).
    from rop.report.scope import viewer_scope

    if not viewer_scope(store, "stages.bitrix24.ru", 5).everyone:
        mine = ReportFilter(NOV.date_from, NOV.date_to, today=NOV.today, viewer=5)
        r = build_report(store, mine)
        assert cells(pipe(r, 0)) == {("+new", "PREPARATION"): 1, ("+new", "WON"): 1}
        assert ids(store, "deal_stuck:0", mine) == [3]


def test_bad_stage_keys_are_refused():
    from rop.metrics.catalogue import figure

    for key in ("deal_move:0|NEW", "deal_move:x|NEW|WON", "deal_time:0|", "lead_nope:0|NEW"):
        with pytest.raises(ReportInputError):
            figure(key)


def _agree(store, flt, stages) -> int:
    """Every cell, stage time and funnel step equals its drill-down list."""
    checked = 0
    for kind in ("deals", "leads"):
        for p in stages.get(kind, {}).get("pipelines", []):
            for c in p["matrix"]["cells"]:
                d = drill(store, flt, c["figure"])
                assert len(d["records"]) == c["count"] == d["value"], c["figure"]
                checked += 1
            for rowk, total in p["matrix"]["row_totals"].items():
                assert total == sum(x["count"] for x in p["matrix"]["cells"] if x["from"] == rowk)
            for t in p["time"]:
                for key, n, mean, med in (
                    (t["figure"], t["count"], t["mean_days"], t["median_days"]),
                    (t["open_figure"], t["open_count"], t["open_mean_days"],
                     t["open_median_days"]),
                ):  # fmt: skip
                    d = drill(store, flt, key)
                    values = [r[d["value_column"]] for r in d["records"]]
                    assert len(values) == n, key
                    if n:
                        assert statistics.fmean(values) == pytest.approx(mean), key
                        assert statistics.median(values) == pytest.approx(med), key
                    checked += 1
            for s in p["funnel"]:
                recs = drill(store, flt, s["figure"])["records"]
                assert len(recs) == s["reached"], s["figure"]
                if s["went_on"] is not None:
                    assert sum(1 for r in recs if r["counted"]) == s["went_on"], s["figure"]
                checked += 1
            assert len(drill(store, flt, p["stuck"]["figure"])["records"]) == p["stuck"]["count"]
    return checked


def test_stage_figures_equal_their_drill_downs_on_the_fixture(store, report):
    assert _agree(store, NOV, report["stages"]) > 20


def test_stage_figures_equal_their_drill_downs_on_a_demo_portal(tmp_path):
    generator = pytest.importorskip("rop.demo.generator")
    generator.generate(tmp_path / "demo", seed=3, deals=1500)
    store = open_store(tmp_path / "d.duckdb")
    load_snapshot(store, tmp_path / "demo")
    last = store.scalar("SELECT max(date_create) FROM deals")
    assert isinstance(last, datetime)
    end = last.date()
    flt = ReportFilter(end - timedelta(days=60), end, sections=("deals", "leads"), today=end)
    r = build_report(store, flt)
    # Deals at the start of the period (in progress, or closed and moved in it) plus
    # the new ones are exactly the matrix's rows.
    assert _agree(store, flt, r["stages"]) > 50
    store.close()


def test_xlsx_has_the_stage_sheets(report):
    import io

    from openpyxl import load_workbook

    from rop.report.export import report_to_xlsx

    book = load_workbook(io.BytesIO(report_to_xlsx(report, lang="ru")))
    matrix = book["Стадии — матрица"]
    lines = {(row[1], row[2]): row[3] for row in matrix.iter_rows(min_row=2, values_only=True)}
    assert lines[("Новая", "Подготовка документов")] == 2
    assert lines[("Сделка провалена", "Сделка успешна")] == 1
    times = book["Стадии — время"]
    new = next(r for r in times.iter_rows(min_row=2, values_only=True) if r[1] == "Новая")
    assert new[2] == 6 and new[8] == "да" and new[12] == "deal_time:0|NEW"
    assert "Статусы — матрица" in book.sheetnames


def test_cli_report_and_drill_take_stage_keys(tmp_path):
    from click.testing import CliRunner

    from rop.cli import cli

    db = tmp_path / "s.duckdb"
    load("stages", db).close()
    common = ["--db", str(db), "--from", "2026-11-01", "--to", "2026-11-30"]
    out = CliRunner().invoke(cli, ["drill", *common, "--figure", "deal_move:0|NEW|+out"])
    assert out.exit_code == 0, out.output
    assert '"id": 5' in out.output
    bad = CliRunner().invoke(cli, ["drill", *common, "--figure", "deal_move:0|NEW"])
    assert bad.exit_code == 2 and "deal_move:<pipeline>|<from>|<to>" in bad.output
    table = CliRunner().invoke(cli, ["report", *common, "--section", "deals", "--no-compare"])
    assert table.exit_code == 0 and "Движение по стадиям — Сделки: Общая" in table.output


def test_lead_statuses_get_the_same_views(store, report):
    p = pipe(report, 0, "leads")
    # L1 NEW -> IN_PROCESS -> CONVERTED, L2 JUNK by MOVED_TIME only, L3 still NEW;
    # L4 converted in October (no history, untouched): in no row.
    assert cells(p) == {("+new", "NEW"): 1, ("+new", "CONVERTED"): 1, ("+new", "JUNK"): 1}
    f = {x["stage"]: (x["reached"], x["went_on"]) for x in p["funnel"]}
    # L2 is known only as junk: created, so it reached the first status.
    assert f == {"NEW": (3, 1), "IN_PROCESS": (1, 1), "CONVERTED": (1, None)}
    t = {x["stage"]: x for x in p["time"]}
    assert t["IN_PROCESS"]["mean_days"] == pytest.approx(2.0) and t["IN_PROCESS"]["bottleneck"]
    assert t["NEW"]["open_mean_days"] == pytest.approx(7 + 14 * H)  # L3 since 20 Nov 10:00
    assert ids(store, "lead_move:0|+new|JUNK") == [2]


def test_cached_steps_and_inline_sql_agree(store, report, monkeypatch):
    import rop.report.context as context_module

    monkeypatch.setattr(context_module, "CACHE_STATIC_STEPS", False)
    assert build_report(store, NOV)["stages"] == report["stages"]


def test_stuck_threshold_per_pipeline(store):
    # Pipeline 0 stuck after 20 days, pipeline 1 after 13, the rest (leads) 14.
    # Pipeline 0: S3 21d14h, S7 38d14h, S8 27 d (S1 17d14h is not, at 20);
    # pipeline 1: S5 in C1:PREP since 14 Nov 10:00, 13d14h (not stuck at 14).
    flt = ReportFilter(
        NOV.date_from, NOV.date_to, sections=("deals", "leads"), today=NOV.today,
        stuck_days_by=((0, 20), (1, 13)),
    )  # fmt: skip
    r = build_report(store, flt)
    assert pipe(r, 0)["stuck"]["count"] == 3 and pipe(r, 0)["stuck"]["days"] == 20
    assert pipe(r, 1)["stuck"]["count"] == 1 and pipe(r, 1)["stuck"]["days"] == 13
    assert ids(store, "deal_stuck:0", flt) == [3, 7, 8]
    assert ids(store, "deal_stuck:1", flt) == [5]
    # Without its own threshold pipeline 1 takes the default: S5 is not stuck.
    assert pipe(build_report(store, NOV), 1)["stuck"]["count"] == 0
    assert ids(store, "deal_stuck:1") == []
    # Leads have no pipeline: pipeline 0's 20 days is not theirs.
    assert pipe(r, 0, "leads")["stuck"]["days"] == 14
    assert r["filter"]["stuck_days_by_pipeline"] == {"0": 20, "1": 13}


def test_stuck_threshold_per_pipeline_on_the_command_line(tmp_path):
    import json

    from click.testing import CliRunner

    from rop.cli import cli

    db = tmp_path / "s.duckdb"
    load("stages", db).close()
    common = ["--db", str(db), "--from", "2026-11-01", "--to", "2026-11-30", "--today",
              "2026-11-27"]  # fmt: skip
    out = CliRunner().invoke(
        cli, ["drill", *common, "--figure", "deal_stuck:1", "--pipeline-stuck-days", "1=13",
              "--format", "json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert [r["id"] for r in json.loads(out.output)["records"]] == [5]
    for bad, says in (
        ("1:13", "--pipeline-stuck-days: expected PIPELINE=DAYS (e.g. 1=30), got '1:13'"),
        ("9=13", "unknown pipeline 9"),
        ("1=-3", "stuck_days.1"),
    ):
        out = CliRunner().invoke(
            cli, ["drill", *common, "--figure", "deal_stuck:1", "--pipeline-stuck-days", bad]
        )
        assert out.exit_code == 2 and says in out.output, out.output
    twice = ["--pipeline-stuck-days", "1=13", "--pipeline-stuck-days", "1=20"]
    out = CliRunner().invoke(cli, ["drill", *common, "--figure", "deal_stuck:1", *twice])
    assert out.exit_code == 2 and "pipeline 1 is given twice" in out.output, out.output


def test_postgresql_gives_the_same_stage_section(store, tmp_path, request):
    # The range reads, the start/end join and the per-pipeline thresholds (bound
    # arrays) are plain SQL: PostgreSQL gives the very same "stages" object.
    from tests.conftest import store_target

    flt = ReportFilter(
        NOV.date_from, NOV.date_to, sections=("deals", "leads"), today=NOV.today,
        stuck_days_by=((0, 20), (1, 13)),
    )  # fmt: skip
    pg = load("stages", store_target("postgres", tmp_path, request))
    try:
        assert build_report(pg, flt)["stages"] == build_report(store, flt)["stages"]
        assert ids(pg, "deal_stuck:1", flt) == [5]
        assert ids(pg, "deal_move:0|NEW|+out") == [5]
    finally:
        pg.close()


def test_matrix_rows_are_the_deals_at_the_start_on_a_demo_portal(tmp_path):
    """Each row's sum, recomputed in Python from the raw stage history: the deals whose
    stage at the period's start was that one (in progress, or closed and moved in the
    period), and the deals with no stage yet at the start (row "+new")."""
    from collections import Counter

    from rop.report.context import prepare
    from rop.report.periods import utc_bounds

    generator = pytest.importorskip("rop.demo.generator")
    generator.generate(tmp_path / "demo", seed=4, deals=1200)
    store = open_store(tmp_path / "d.duckdb")
    load_snapshot(store, tmp_path / "demo")
    end = store.scalar("SELECT max(date_create) FROM deals").date()
    flt = ReportFilter(end - timedelta(days=45), end, sections=("deals",), today=end)
    p_from, p_to = utc_bounds(flt.date_from, flt.date_to, prepare(store, flt, None).tz)
    sem = dict(store.query("SELECT status_id, semantics FROM statuses"))
    rows: dict[int, list] = {}
    for owner, at, rid, stage, pipe, s in store.query(
        "SELECT owner_id, created_time, id, stage_id, category_id, stage_semantic "
        "FROM deal_stage_history WHERE type_id IN (1, 2, 3, 5)"
    ):
        rows.setdefault(owner, []).append((at, rid, stage, pipe, s or sem.get(stage) or "P"))
    want: Counter = Counter()
    for did, stage, pipe, s, moved, created in store.query(
        "SELECT id, stage_id, category_id, stage_semantic, moved_time, date_create FROM deals "
        "WHERE assigned_by_id IS NOT NULL"
    ):
        own = s or sem.get(stage) or "P"
        visits = sorted(rows.get(did) or [(moved or created, 0, stage, pipe, own)])
        before = [v for v in visits if v[0] < p_from]
        alive_end = [v for v in visits if v[0] < p_to]
        if not alive_end:
            continue  # created after the period
        moved_in = any(p_from <= v[0] < p_to for v in visits)
        if not before:
            want[(alive_end[-1][3], "+new")] += 1
            continue
        start = before[-1]
        if start[4] == "P" or moved_in:
            want[(start[3], start[2])] += 1
    got: Counter = Counter()
    for p in build_report(store, flt)["stages"]["deals"]["pipelines"]:
        for row_key, total in p["matrix"]["row_totals"].items():
            if row_key != "+in":
                got[(p["id"], row_key)] += total
    assert sum(want.values()) > 200
    assert got == +want
    store.close()
