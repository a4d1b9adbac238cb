"""Stored facts follow the sync: after incremental syncs of random changes they equal
a rebuild from scratch, on DuckDB and PostgreSQL (rop/store/facts.py).

The portal is the emulator over real HTTP; the store a real DuckDB file or a
database of the private PostgreSQL cluster (as the application role, so
row-level security applies).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

import rop.bitrix.sync as sync_module
from rop.report.build import build_report
from rop.report.filter import ReportFilter
from rop.report.stages import stage_section
from rop.store import client_facts, client_texts, facts, stage_facts
from rop.store.db import Store, open_store
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load
from tests.sync_portal import make_portal
from tests.test_sync import Emulated, emulate, sync


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=300)


@pytest.fixture(params=ENGINES)
def store(tmp_path: Path, request: pytest.FixtureRequest):
    with open_store(store_target(request.param, tmp_path, request)) as opened:
        yield opened


def stored(store: Store, fact: facts.Fact, portal: str) -> list[tuple]:
    cols = ", ".join(fact.columns)
    return store.query(
        f"SELECT {cols} FROM {fact.table} WHERE portal = ? ORDER BY id",  # noqa: S608
        [portal],
    )


def rebuilt(store: Store, fact: facts.Fact, portal: str) -> list[tuple]:
    """The facts computed from the rows now, by the same SQL, nothing stored."""
    tz, base = store.query(
        "SELECT timezone, base_currency FROM portals WHERE portal = ?", [portal]
    )[0]
    params = {"portal": portal, "tz": tz, "base": base}
    sql = fact.sql(None, store.dialect)
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    return store.query(f"SELECT * FROM ({sql}) f ORDER BY id", used)  # noqa: S608


def stage_tables(store: Store, kind: stage_facts.Kind, portal: str) -> dict[str, list[tuple]]:
    """The stored stage facts of one kind, each table's rows in one order."""
    t = stage_facts.tables(kind)
    out = {}
    for table, cols in (
        (t.visits, stage_facts.VISIT_COLUMNS),
        (t.opened, stage_facts.OPEN_COLUMNS),
        (t.reach, stage_facts.REACH_COLUMNS),
        (t.agg, stage_facts.AGG_COLUMNS),
    ):
        names = ", ".join(cols)
        out[table] = store.query(
            f"SELECT {names} FROM {table} WHERE portal = ? ORDER BY {names}",  # noqa: S608
            [portal],
        )
    return out


def stage_rebuilt(store: Store, kind: stage_facts.Kind, portal: str) -> dict[str, list[tuple]]:
    """The stage facts computed from the rows now, by the same SQL, nothing stored."""
    t = stage_facts.tables(kind)
    order = f"({stage_facts.order_sql(kind)})"
    visits = f"({stage_facts.visits_sql(kind, order)})"
    opened = f"({stage_facts.open_sql(visits)})"
    out = {}
    for table, sql, cols in (
        (t.visits, visits, stage_facts.VISIT_COLUMNS),
        (t.opened, opened, stage_facts.OPEN_COLUMNS),
        (t.reach, f"({stage_facts.reach_sql(visits, order)})", stage_facts.REACH_COLUMNS),
        (t.agg, f"({stage_facts.agg_sql(opened, store.dialect.median)})",
         stage_facts.AGG_COLUMNS),
    ):  # fmt: skip
        names = ", ".join(cols)
        out[table] = store.query(
            f"SELECT {names} FROM {sql} f ORDER BY {names}",  # noqa: S608
            {"portal": portal},
        )
    return out


def clients_stored(store: Store, portal: str) -> list[tuple]:
    cols = ", ".join(client_facts.COLUMNS)
    return store.query(
        f"SELECT {cols} FROM client_facts WHERE portal = ? ORDER BY kind, id",  # noqa: S608
        [portal],
    )


def clients_rebuilt(store: Store, portal: str) -> list[tuple]:
    """The client facts computed from the rows now (the deal and call facts' SQL inline)."""
    tz, base = store.query(
        "SELECT timezone, base_currency FROM portals WHERE portal = ?", [portal]
    )[0]
    deals = f"({facts.deal_sql(None, store.dialect)})"
    calls = f"({facts.call_sql(None, store.dialect)})"
    parts = [
        client_facts.client_sql(kind, deals, calls, store.dialect) for kind in client_facts.KINDS
    ]
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) f ORDER BY kind, id"  # noqa: S608
    params = {"portal": portal, "tz": tz, "base": base}
    return store.query(sql, {k: v for k, v in params.items() if f"${k}" in sql})


def assert_facts_equal_a_rebuild(store: Store, portal: str) -> None:
    assert facts.facts_ready(store, portal)
    for fact in facts.FACTS:
        got, want = stored(store, fact, portal), rebuilt(store, fact, portal)
        assert len(got) == len(want), fact.table
        assert got == want, fact.table
    got_clients, want_clients = clients_stored(store, portal), clients_rebuilt(store, portal)
    assert {r[0] for r in want_clients} == {"company", "contact"}
    assert got_clients == want_clients, "client_facts"
    got_texts, want_texts = texts_stored(store, portal), texts_rebuilt(store, portal)
    assert {r[0] for r in want_texts} == {"company", "contact"}
    assert got_texts == want_texts, "client_texts"
    for kind in stage_facts.KINDS.values():
        got_stages, want_stages = (
            stage_tables(store, kind, portal),
            stage_rebuilt(store, kind, portal),
        )
        for table, rows in want_stages.items():
            assert rows, table  # the portal has some of each
            assert got_stages[table] == rows, table


def texts_stored(store: Store, portal: str) -> list[tuple]:
    cols = ", ".join(client_texts.COLUMNS)
    return store.query(
        f"SELECT {cols} FROM client_texts WHERE portal = ? ORDER BY kind, id",  # noqa: S608
        [portal],
    )


def texts_rebuilt(store: Store, portal: str) -> list[tuple]:
    """The client texts computed from the rows now (every client's)."""
    parts = [f"SELECT * FROM ({client_texts.text_sql(kind)}) t" for kind in client_facts.KINDS]
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) f ORDER BY kind, id"  # noqa: S608
    return store.query(sql, {"portal": portal})


class Spy:
    """Keeps what each sync's refresh did."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs: list[facts.Refreshed] = []
        real = sync_module.refresh_facts

        def spy(*args: Any, **kwargs: Any) -> facts.Refreshed:
            done = real(*args, **kwargs)
            self.runs.append(done)
            return done

        monkeypatch.setattr(sync_module, "refresh_facts", spy)


def _stage(rnd: random.Random, category: int) -> str:
    stage = rnd.choice(["NEW", "PREPARATION", "WON", "LOSE"])
    return ("C1:" if category else "") + stage


def change_portal(emu: Emulated, rnd: random.Random) -> dict[str, int]:
    """Random adds, changes and deletions, re-opened deals and pipeline moves,
    the way Bitrix24 writes them (stage history rows included)."""
    portal = emu.portal
    deals = sorted(portal.tables["deal"].rows)
    leads = sorted(portal.tables["lead"].rows)
    contacts = sorted(portal.tables["contact"].rows)
    calls = sorted(portal.tables["call"].rows)
    done = {"added": 0, "moved": 0, "reopened": 0, "piped": 0, "deleted": 0}
    for _ in range(6):
        category = rnd.randint(0, 1)
        portal.add(
            "deal",
            {"TITLE": "Новая", "CATEGORY_ID": str(category), "STAGE_ID": _stage(rnd, category),
             "OPPORTUNITY": f"{rnd.randint(1, 99)}00.00", "CURRENCY_ID": rnd.choice(["RUB", "USD"]),
             "ASSIGNED_BY_ID": str(rnd.randint(1, 60)), "LEAD_ID": str(rnd.choice(leads))},
            history=True,
        )  # fmt: skip
        done["added"] += 1
    picked = rnd.sample(deals, 40)
    for rid in picked[:12]:  # a stage move (won, lost or on the way)
        row = portal.tables["deal"].rows[rid]
        portal.update("deal", rid, {"STAGE_ID": _stage(rnd, int(row["CATEGORY_ID"]))}, history=True)
        done["moved"] += 1
    rows = portal.tables["deal"].rows
    closed = [r for r in deals if str(rows[r]["STAGE_ID"]).split(":")[-1] in ("WON", "LOSE")]
    for rid in rnd.sample([r for r in closed if r not in picked], 6):  # closed, re-opened
        new = ("C1:" if int(rows[rid]["CATEGORY_ID"]) else "") + "PREPARATION"
        portal.update("deal", rid, {"STAGE_ID": new, "STAGE_SEMANTIC_ID": "P"}, history=True)
        done["reopened"] += 1
    for rid in picked[20:26]:  # moved to the other pipeline
        row = portal.tables["deal"].rows[rid]
        category = 1 - int(row["CATEGORY_ID"])
        fields = {"CATEGORY_ID": str(category), "STAGE_ID": _stage(rnd, category)}
        portal.update("deal", rid, fields, history=True)
        done["piped"] += 1
    for rid in picked[26:32]:  # amounts, currency, responsible (none at all, once)
        fields = {
            "OPPORTUNITY": f"{rnd.randint(0, 50)}0.00",
            "CURRENCY_ID": "USD",
            "ASSIGNED_BY_ID": str(rnd.randint(1, 60)) if rid != picked[26] else None,
        }
        portal.update("deal", rid, fields)  # fmt: skip
    for rid in picked[32:36]:
        portal.delete("deal", rid)  # its stage history goes with it
        done["deleted"] += 1
    # A deal with no source of its own has its lead's: the deals added by an
    # earlier round (no SOURCE_ID) see their leads' sources change.
    linked = [
        int(row["LEAD_ID"]) for r, row in rows.items()
        if not row.get("SOURCE_ID") and row.get("LEAD_ID") and r not in picked
    ]  # fmt: skip
    for rid in {r for r in linked if r in portal.tables["lead"].rows}:
        portal.update("lead", rid, {"SOURCE_ID": rnd.choice(["CALL", "EMAIL"])})
        done["sourced"] = done.get("sourced", 0) + 1
    for rid in rnd.sample(leads, 8):
        portal.update("lead", rid, {"SOURCE_ID": rnd.choice(["CALL", "EMAIL", None])})
    for rid in rnd.sample(leads, 3):
        portal.update("lead", rid, {"STATUS_ID": "JUNK"}, history=True)
    for rid in rnd.sample(leads, 2):
        portal.delete("lead", rid)
    for rid in rnd.sample(contacts, 6):  # a contact's company is its calls' company
        portal.update("contact", rid, {"COMPANY_ID": str(rnd.randint(1, 40))})
    portal.delete("contact", rnd.choice(contacts))
    for rid in rnd.sample(calls, 3):
        portal.delete("call", rid)
    for _ in range(4):
        portal.add(
            "call",
            {"CALL_ID": f"new-{rnd.random()}", "PORTAL_USER_ID": str(rnd.randint(1, 60)),
             "CALL_TYPE": "1", "CALL_DURATION": str(rnd.randint(0, 300)),
             "CRM_ENTITY_TYPE": "CONTACT", "CRM_ENTITY_ID": str(rnd.choice(contacts))},
        )  # fmt: skip
    return done


def test_incremental_syncs_keep_the_facts_equal_to_a_rebuild(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(monkeypatch)
    rnd = random.Random(16)
    with emulate(portal_dir) as emu:
        sync(store, emu)
        assert_facts_equal_a_rebuild(store, emu.key)
        for n in range(2):
            done = change_portal(emu, rnd)
            assert all(done.values()) and (n == 0 or done["sourced"]), done
            sync(store, emu)
            last = spy.runs[-1]
            # Only the marked records were recomputed, not the whole tables.
            assert not last.rebuilt, last
            assert 0 < last.records["deal_facts"] < 100
            assert last.records["call_facts"] > 0
            # The stage facts too: only the deals and leads that changed.
            assert 0 < last.records["deal_stage"] < 100
            assert 0 < last.records["lead_stage"] < 100
            assert not store.query("SELECT * FROM fact_changes")
            assert_facts_equal_a_rebuild(store, emu.key)
        # The report over the stored facts equals the one computed inline.
        flt = ReportFilter(date(2026, 1, 1), date(2026, 4, 30), today=date(2026, 5, 1))
        with_facts = build_report(store, flt, portal=emu.key)
        monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", False)
        inline = build_report(store, flt, portal=emu.key)
    assert with_facts["total"] == inline["total"] and with_facts["rows"] == inline["rows"]
    assert with_facts["total"]["figures"]["deals_new"] > 0
    # The stage section over the stored stage facts and their open aggregates
    # equals the one computed from the visits, for the whole team, a department,
    # one manager and pipelines with thresholds of their own.
    assert not differences(with_facts["stages"], inline["stages"])
    for narrowed in (
        replace(flt, departments=(2,)),
        replace(flt, managers=(7,)),
        replace(flt, stuck_days=3, stuck_days_by=((1, 30),)),
    ):
        monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", True)
        fast = stage_section(store, narrowed, portal=emu.key)
        monkeypatch.setattr("rop.report.context.CACHE_STATIC_STEPS", False)
        assert not differences(fast, stage_section(store, narrowed, portal=emu.key)), narrowed


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two report objects differ: the same keys, lists and values, days to the
    report's last kept digit. A mean of days from the open aggregates (now minus the
    mean start) and one from the records (the mean of now minus each start) may round
    apart when the exact value is half a millionth of a day (METRICS_DECISIONS.md)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float):
        return [] if abs(a - b) <= 1.001e-6 else [f"{path}: {a} != {b}"]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]


def test_a_change_of_zone_or_rates_rebuilds_and_reports_never_read_stale_facts(tmp_path):
    store = load("tricky", tmp_path / "s.duckdb")
    portal = "tricky.bitrix24.ru"
    assert facts.facts_ready(store, portal)
    # The zone moves CLOSEDATE's local midnight: stale until refreshed, and then whole.
    store.execute("UPDATE portals SET timezone = 'Europe/Berlin'")
    assert not facts.facts_ready(store, portal)
    done = facts.refresh_facts(store, portal)
    assert done.rebuilt and facts.facts_ready(store, portal)
    assert_facts_equal_a_rebuild(store, portal)
    # A row written outside the sync marks its record; reports compute in memory
    # until the next refresh, which recomputes that one record.
    store.upsert("deals", [{"portal": portal, "id": 77, "assigned_by_id": 4,
                            "stage_semantic": "S", "opportunity": 5.0}])  # fmt: skip
    assert not facts.facts_ready(store, portal)
    done = facts.refresh_facts(store, portal)
    assert done.records == {
        "deal_facts": 1, "lead_facts": 0, "call_facts": 0, "client_facts": 0, "client_texts": 0,
        "deal_stage": 1, "lead_stage": 0,
    }  # fmt: skip
    assert_facts_equal_a_rebuild(store, portal)
    store.close()


def test_a_store_from_before_the_facts_gets_them_from_ensure_facts(tmp_path):
    # A store written by the previous version (no migration 12): opening it adds
    # the tables, never builds (reports compute in memory); ensure_facts (`rop
    # migrate`, `rop sync`) builds them once; a read-only open then finds them ready.
    path = tmp_path / "old.duckdb"
    store = load("tricky", path)
    portal = "tricky.bitrix24.ru"
    expected = {f.table: stored(store, f, portal) for f in facts.FACTS}
    tables = ("deal_facts", "lead_facts", "call_facts", "fact_changes", "facts_state")
    for table in (*tables, "client_facts"):
        store.execute(f"DROP TABLE {table}")
    # Migration 16 adds to the facts of migration 12: neither had run.
    store.execute("DELETE FROM schema_migrations WHERE version IN (12, 16)")
    store.close()
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
    with open_store(path) as reopened:
        assert not facts.facts_ready(reopened, portal)
        assert all(not stored(reopened, f, portal) for f in facts.FACTS)
        in_memory = build_report(reopened, flt)
        assert facts.ensure_facts(reopened) == [portal]
        assert {f.table: stored(reopened, f, portal) for f in facts.FACTS} == expected
    with open_store(path, read_only=True) as ro:
        assert facts.facts_ready(ro, portal)
        from_facts = build_report(ro, flt)
        assert from_facts["total"]["figures"]["deals_won"] > 0
        assert from_facts["total"] == in_memory["total"]


def test_the_by_id_sync_refreshes_the_facts_it_changes(tmp_path: Path, portal_dir: Path) -> None:
    from rop.bitrix.changes import Changes
    from tests.test_sync_ids import by_ids

    with emulate(portal_dir) as emu, open_store(tmp_path / "s.duckdb") as store:
        sync(store, emu)
        portal = emu.portal
        portal.update("deal", 5, {"STAGE_ID": "WON", "OPPORTUNITY": "7.00"}, history=True)
        portal.delete("deal", 8)
        before = stored(store, facts.DEAL, emu.key)
        changes = Changes()
        changes.change("deals", 5)
        changes.delete("deals", 8)
        by_ids(store, emu, changes)
        assert_facts_equal_a_rebuild(store, emu.key)
        after = {r[0]: r for r in stored(store, facts.DEAL, emu.key)}
        assert 8 not in after and after[5][3] == "S"
        assert len(after) == len(before) - 1


def test_a_store_from_before_the_stage_facts_gets_them_from_ensure_facts(tmp_path):
    # Written by the previous version (facts version 1, no migration 15): opening it
    # adds the stage tables; ensure_facts (`rop migrate`, `rop sync`) builds every
    # fact once.
    path = tmp_path / "old.duckdb"
    store = load("tricky", path)
    portal = "tricky.bitrix24.ru"
    expected = {k.entity: stage_tables(store, k, portal) for k in stage_facts.KINDS.values()}
    for kind in stage_facts.KINDS.values():
        for table in vars(stage_facts.tables(kind)).values():
            store.execute(f"DROP TABLE {table}")
    store.execute("DELETE FROM schema_migrations WHERE version = 15")
    store.execute("UPDATE facts_state SET version = 1")
    assert not facts.facts_ready(store, portal)  # reports compute in memory meanwhile
    store.close()
    with open_store(path) as reopened:
        assert not facts.facts_ready(reopened, portal)
        assert facts.ensure_facts(reopened) == [portal]
        got = {k.entity: stage_tables(reopened, k, portal) for k in stage_facts.KINDS.values()}
        assert got == expected
        assert_facts_equal_a_rebuild(reopened, portal)
    with open_store(path, read_only=True) as ro:
        assert facts.facts_ready(ro, portal)


def test_a_stage_move_without_a_pipeline_refreshes_its_open_aggregates(tmp_path):
    # A history row may lack its pipeline (CATEGORY_ID): the deal's open visit is then
    # in pipeline NULL, and the refresh recomputes that (NULL, stage) pair too.
    store = load("tricky", tmp_path / "s.duckdb")
    portal = "tricky.bitrix24.ru"
    for owner, when in ((1, datetime(2026, 11, 20, 9)), (4, datetime(2026, 11, 21, 9))):
        store.upsert("deal_stage_history", [{
            "portal": portal, "id": 9000 + owner, "type_id": 2, "owner_id": owner,
            "created_time": when, "category_id": None, "stage_semantic": "P", "stage_id": "NEW",
        }])  # fmt: skip
        done = facts.refresh_facts(store, portal)
        assert done.records["deal_stage"] == 1
        assert_facts_equal_a_rebuild(store, portal)
    agg = store.query(
        "SELECT n FROM deal_stage_open_agg WHERE portal = ? AND pipe IS NULL AND stage = 'NEW' "
        "AND manager_id IS NULL",
        [portal],
    )
    assert agg == [(2,)]
    store.close()


def test_a_large_change_rebuilding_the_deal_facts_still_refreshes_the_stage_facts(
    tmp_path: Path, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change past REBUILD_SHARE rebuilds the deal and lead facts whole, slice
    by slice, which clears their marks; the stage facts read the same marks and
    must still follow the changed deals (taken before the rebuild)."""
    spy = Spy(monkeypatch)
    with emulate(portal_dir) as emu, open_store(tmp_path / "s.duckdb") as store:
        sync(store, emu)
        monkeypatch.setattr(facts, "REBUILD_SHARE", 0.0)
        change_portal(emu, random.Random(7))
        sync(store, emu)
        last = spy.runs[-1]
        assert last.records["deal_facts"] is None  # rebuilt whole, in slices
        assert last.records["deal_stage"] != 0, last
        assert_facts_equal_a_rebuild(store, emu.key)


def test_a_whole_rebuild_recomputes_no_record_twice(
    store: Store, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marks a whole rebuild covers go with it, stage facts' included, on
    both engines: the refresh's last transaction recomputes no record again (a
    first copy of 1M deals would redo every deal there, in one transaction)."""
    again: list[tuple[str, str]] = []
    real_write, real_stage = facts._write, facts.refresh_stage_facts

    def write(s: Store, fact: facts.Fact, params: dict, ids: str | None) -> None:
        if ids is not None:
            again.append((fact.table, ids))
        real_write(s, fact, params, ids)

    def stage(s: Store, kind: stage_facts.Kind, params: dict, ids: str | None) -> None:
        if ids is not None:
            again.append((kind.entity, ids))
        real_stage(s, kind, params, ids)

    monkeypatch.setattr(facts, "_write", write)
    monkeypatch.setattr(facts, "refresh_stage_facts", stage)
    spy = Spy(monkeypatch)
    with emulate(portal_dir) as emu:
        sync(store, emu)  # a first copy: every record marked, everything rebuilt whole
        assert spy.runs[-1].rebuilt
        assert again == []
        assert_facts_equal_a_rebuild(store, emu.key)
