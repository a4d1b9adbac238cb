"""A server's memory stays bounded: the DuckDB store's limits come from the
settings, and the metrics cache keeps a bounded number of tables."""

from __future__ import annotations

import pytest

from rop.config import SettingsError, load_settings
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


def test_a_server_is_bounded_by_default(tmp_path, monkeypatch):
    # Without the setting a server's DuckDB takes 320MB, not DuckDB's own
    # default (80 % of the machine's memory).
    monkeypatch.delenv("ROP_DB_MEMORY_LIMIT", raising=False)
    settings = load_settings(db=tmp_path / "s.duckdb")
    store = open_store(settings.db)
    try:
        create_app(settings, store, cache_size=0)
        assert store.scalar("SELECT current_setting('memory_limit')") == "305.1 MiB"
    finally:
        store.close()


def test_a_bad_memory_limit_names_the_variable(monkeypatch):
    monkeypatch.setenv("ROP_DB_MEMORY_LIMIT", "lots")
    with pytest.raises(SettingsError, match="ROP_DB_MEMORY_LIMIT"):
        load_settings()


def test_a_small_bound_returns_freed_memory_sooner(tmp_path):
    # DuckDB's allocator keeps up to 128 MB freed after a task, beside the limit:
    # under a sync's 160MB that is most of the limit again.
    with open_store(tmp_path / "s.duckdb") as store:
        store.bound("160MB")
        small = store.scalar("SELECT current_setting('allocator_flush_threshold')")
        store.bound("2GB")
        big = store.scalar("SELECT current_setting('allocator_flush_threshold')")
    assert (small, big) == ("20000000B", "134217728B")
