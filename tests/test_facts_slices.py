"""A whole rebuild of the stored facts goes slice by slice (bounded memory at 1M
deals) and gives exactly the facts of one pass; readers never see half of it."""

from __future__ import annotations

import pytest

from rop.store import facts
from tests.fixtures.portals import load
from tests.test_facts import assert_facts_equal_a_rebuild, stored

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


def test_a_rebuild_cut_short_is_finished_by_the_next_open(tmp_path, monkeypatch):
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
    with open_store(path) as reopened:  # a writable open rebuilds what has no state
        assert facts.facts_ready(reopened, PORTAL)
        assert {f.table: stored(reopened, f, PORTAL) for f in facts.FACTS} == expected


def test_the_syncs_memory_limit_is_a_setting_checked_like_the_others(monkeypatch, tmp_path):
    from rop.config import SettingsError, load_settings
    from rop.store import open_store

    monkeypatch.setenv("ROP_SYNC_MEMORY_LIMIT", "lots")
    with pytest.raises(SettingsError, match="ROP_SYNC_MEMORY_LIMIT"):
        load_settings()
    monkeypatch.setenv("ROP_SYNC_MEMORY_LIMIT", "256MB")
    limit = load_settings().sync_memory_limit
    with open_store(tmp_path / "s.duckdb") as store:
        store.bound(limit)
        assert store.scalar("SELECT current_setting('memory_limit')") in ("256.0 MiB", "244.1 MiB")
