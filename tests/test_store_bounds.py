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


def test_a_bad_memory_limit_names_the_variable(monkeypatch):
    monkeypatch.setenv("ROP_DB_MEMORY_LIMIT", "lots")
    with pytest.raises(SettingsError, match="ROP_DB_MEMORY_LIMIT"):
        load_settings()
