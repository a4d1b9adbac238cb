"""A whole rebuild of the stored facts goes slice by slice (bounded memory at 1M
deals) and gives exactly the facts of one pass; readers never see half of it."""

from __future__ import annotations

import pytest

from rop.store import facts, stage_facts
from tests.fixtures.portals import load
from tests.test_facts import assert_facts_equal_a_rebuild, stage_tables, stored

PORTAL = "tricky.bitrix24.ru"


def test_a_whole_rebuild_in_small_slices_equals_one_pass(tmp_path, monkeypatch):
    store = load("tricky", tmp_path / "s.duckdb")
    before = {f.table: stored(store, f, PORTAL) for f in facts.FACTS}
    monkeypatch.setattr(facts, "SLICE", 3)
    slices = []
    real = facts._slices

    def spy(store, fact, portal):
        found = real(store, fact, portal)
        slices.append((fact.table, len(found)))
        return found

    monkeypatch.setattr(facts, "_slices", spy)
    done = facts.refresh_facts(store, PORTAL, full=True)
    assert done.rebuilt
    assert all(n > 1 for _, n in slices) and len(slices) == 3, slices
    assert {f.table: stored(store, f, PORTAL) for f in facts.FACTS} == before
    assert_facts_equal_a_rebuild(store, PORTAL)
    store.close()


def test_readers_compute_in_memory_while_the_slices_are_written(tmp_path, monkeypatch):
    store = load("tricky", tmp_path / "s.duckdb")
    monkeypatch.setattr(facts, "SLICE", 3)
    seen = []
    real = facts._slices

    def spy(store, fact, portal):
        seen.append(facts.facts_ready(store, portal))
        return real(store, fact, portal)

    monkeypatch.setattr(facts, "_slices", spy)
    facts.refresh_facts(store, PORTAL, full=True)
    assert seen == [False, False, False]
    assert facts.facts_ready(store, PORTAL)
    store.close()


def test_a_rebuild_cut_short_is_finished_by_ensure_facts(tmp_path, monkeypatch):
    from rop.store import open_store

    path = tmp_path / "s.duckdb"
    store = load("tricky", path)
    expected = {f.table: stored(store, f, PORTAL) for f in facts.FACTS}
    monkeypatch.setattr(facts, "SLICE", 3)

    def boom(store, fact, portal):
        raise RuntimeError("killed")

    monkeypatch.setattr(facts, "_slices", boom)
    with pytest.raises(RuntimeError):
        facts.refresh_facts(store, PORTAL, full=True)
    assert not facts.facts_ready(store, PORTAL)
    store.close()
    monkeypatch.undo()
    with open_store(path) as reopened:
        # No open rebuilds (readers compute in memory); `rop migrate` or the next
        # sync does (ensure_facts: whatever has no state).
        assert not facts.facts_ready(reopened, PORTAL)
        assert facts.ensure_facts(reopened) == [PORTAL]
        assert facts.facts_ready(reopened, PORTAL)
        assert {f.table: stored(reopened, f, PORTAL) for f in facts.FACTS} == expected


def test_the_syncs_memory_limit_is_a_setting_checked_like_the_others(monkeypatch, tmp_path):
    from rop.config import SettingsError, load_settings
    from rop.store import open_store

    monkeypatch.delenv("ROP_SYNC_MEMORY_LIMIT", raising=False)
    assert load_settings().sync_memory_limit == "160MB"  # bounded unless told otherwise
    monkeypatch.setenv("ROP_SYNC_MEMORY_LIMIT", "")
    assert load_settings().sync_memory_limit == "160MB"  # empty: the default, as for every setting
    monkeypatch.setenv("ROP_SYNC_MEMORY_LIMIT", "lots")
    with pytest.raises(SettingsError, match="ROP_SYNC_MEMORY_LIMIT"):
        load_settings()
    monkeypatch.setenv("ROP_SYNC_MEMORY_LIMIT", "256MB")
    limit = load_settings().sync_memory_limit
    with open_store(tmp_path / "s.duckdb") as store:
        store.bound(limit)
        assert store.scalar("SELECT current_setting('memory_limit')") in ("256.0 MiB", "244.1 MiB")


# -- the stage facts: sliced on DuckDB, each table still written in its sort order --
_SORTED = {"visits": ("k", "k"), "opened": ("entered", "entered"), "reach": ("created", "created")}


def physical(store, kind) -> dict[str, list[tuple]]:
    """Each stage table's (sort key, id) in the order its rows lie in the file."""
    t = stage_facts.tables(kind)
    return {
        name: store.query(
            f"SELECT {key}, id FROM {getattr(t, name)} WHERE portal = ? ORDER BY rowid",  # noqa: S608
            [PORTAL],
        )
        for name, (key, _) in _SORTED.items()
    }


def in_key_order(rows: list[tuple]) -> bool:
    # ORDER BY key, id with DuckDB's NULLS LAST.
    keyed = [(r[0] is None, r[0] or 0, r[1]) for r in rows]
    return keyed == sorted(keyed)


def all_stage_rows(store) -> dict[str, list[tuple]]:
    out = {}
    for kind in stage_facts.KINDS.values():
        out.update(stage_tables(store, kind, PORTAL))
    return out


def test_the_stage_facts_rebuild_in_slices_and_bands_equals_one_transaction(tmp_path, monkeypatch):
    store = load("tricky", tmp_path / "s.duckdb")
    params = facts._params(store, PORTAL)
    # The one-transaction rebuild (what PostgreSQL runs, and DuckDB before).
    with store.transaction():
        for kind in stage_facts.KINDS.values():
            facts._refresh_stages(store, kind, params, None)
    one = all_stage_rows(store)
    monkeypatch.setattr(facts, "SLICE", 2)
    monkeypatch.setattr(facts, "STAGE_SLICE", 3)
    slices, bands = [], []
    real_slices, real_bands = stage_facts.id_slices, stage_facts._bands

    def spy_slices(*args):
        found = real_slices(*args)
        slices.append(len(found))
        return found

    def spy_bands(*args):
        found = real_bands(*args)
        bands.append(len(found))
        return found

    monkeypatch.setattr(stage_facts, "id_slices", spy_slices)
    monkeypatch.setattr(stage_facts, "_bands", spy_bands)
    done = facts.refresh_facts(store, PORTAL, full=True)
    assert done.records["deal_stage"] is None and done.records["lead_stage"] is None
    # Several slices of records per kind, several bands per sorted table.
    assert len(slices) == 2 and all(n > 1 for n in slices), slices
    # (visits, open visits, furthest stages) per kind; the portal has few open visits.
    assert len(bands) == 6 and all(n > 2 for n in bands[0::3] + bands[2::3]), bands
    assert all_stage_rows(store) == one  # no visit lost, none twice, same values
    assert_facts_equal_a_rebuild(store, PORTAL)
    for kind in stage_facts.KINDS.values():
        for name, rows in physical(store, kind).items():
            assert rows and in_key_order(rows), (kind.entity, name)
    # The work table is gone.
    assert not store.query("SELECT table_name FROM information_schema.tables "
                           "WHERE table_name LIKE '_rop_rebuild%'")  # fmt: skip
    store.close()


def test_a_sorted_table_check_sees_a_band_out_of_order(tmp_path, monkeypatch):
    # The order check above can fail: bands written last-first break it.
    store = load("tricky", tmp_path / "s.duckdb")
    monkeypatch.setattr(facts, "SLICE", 3)
    real_bands = stage_facts._bands
    monkeypatch.setattr(stage_facts, "_bands", lambda *a: real_bands(*a)[::-1])
    facts.refresh_facts(store, PORTAL, full=True)
    orders = [in_key_order(rows) for k in stage_facts.KINDS.values()
              for rows in physical(store, k).values()]  # fmt: skip
    assert not all(orders)
    store.close()


def test_a_stage_rebuild_cut_short_is_finished_by_ensure_facts(tmp_path, monkeypatch):
    from rop.store import open_store

    path = tmp_path / "s.duckdb"
    store = load("tricky", path)
    expected = all_stage_rows(store)
    monkeypatch.setattr(facts, "SLICE", 3)
    monkeypatch.setattr(facts, "STAGE_SLICE", 3)
    calls = []
    real_bands = stage_facts._bands

    def boom(*args):
        calls.append(1)
        if len(calls) == 2:  # the visits written, the open visits not
            raise RuntimeError("killed")
        return real_bands(*args)

    monkeypatch.setattr(stage_facts, "_bands", boom)
    with pytest.raises(RuntimeError):
        facts.refresh_facts(store, PORTAL, full=True)
    assert not facts.facts_ready(store, PORTAL)
    store.close()
    monkeypatch.undo()
    with open_store(path) as reopened:
        assert not facts.facts_ready(reopened, PORTAL)  # no open rebuilds
        assert facts.ensure_facts(reopened) == [PORTAL]
        assert facts.facts_ready(reopened, PORTAL)
        assert all_stage_rows(reopened) == expected
        assert_facts_equal_a_rebuild(reopened, PORTAL)


def test_a_rebuild_step_that_fails_is_named_in_the_error(tmp_path, monkeypatch):
    """DuckDB's out-of-memory message names no table: the rebuild adds its step, so an
    operator (and the next engineer) knows which part of a big rebuild did not fit."""
    from rop.store import client_texts
    from rop.store.db import StoreOverloaded

    store = load("tricky", tmp_path / "s.duckdb")
    real = client_texts.write

    def overloaded(store, params, kind, ids):
        if kind == "contact":
            raise StoreOverloaded("the store s.duckdb ran out of its memory limit for this query")
        return real(store, params, kind, ids)

    monkeypatch.setattr(client_texts, "write", overloaded)
    with pytest.raises(
        StoreOverloaded, match=r"memory limit.*\[rebuilding client_texts of contact\]"
    ):
        facts.refresh_facts(store, PORTAL, full=True)
    assert not facts.facts_ready(store, PORTAL)  # readers compute in memory; nothing half-visible
    store.close()
