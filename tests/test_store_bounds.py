"""A server's memory stays bounded: the DuckDB store's limits come from the
settings, and the metrics cache keeps a bounded number of tables."""

from __future__ import annotations

import pytest

from rop.config import SettingsError, load_settings
from rop.metrics import cache
from rop.store import open_store
from rop.web import create_app


def test_the_server_applies_the_memory_limit_and_threads(tmp_path):
    settings = load_settings(db=tmp_path / "s.duckdb", db_memory_limit="300 MiB", db_threads=1)
    store = open_store(settings.db)
    try:
        create_app(settings, store, cache_size=0)
        limit, threads = store.query(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        )[0]
        assert (limit, threads) == ("300.0 MiB", 1)
    finally:
        store.close()


def test_a_bad_memory_limit_names_the_variable(monkeypatch):
    monkeypatch.setenv("ROP_DB_MEMORY_LIMIT", "lots")
    with pytest.raises(SettingsError, match="ROP_DB_MEMORY_LIMIT"):
        load_settings()


def test_the_metrics_cache_drops_its_oldest_tables_past_its_bound(monkeypatch):
    from tests.fixtures.portals import load

    monkeypatch.setattr(cache, "MAX_TABLES", 3)
    monkeypatch.setattr(cache, "_TABLES", cache._TABLES.__class__())
    store = load("tricky")
    materialize = cache.materializer(store, "tricky.bitrix24.ru")
    names = [materialize(f"t{i}", f"SELECT {i} AS x", {}) for i in range(5)]
    left = {r[0] for r in store.query(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [cache.CACHE_DB]
    )}  # fmt: skip
    assert left == {n.split(".")[-1] for n in names[2:]}
    store.close()
