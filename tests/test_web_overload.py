"""A report build over the store's memory limit (ROP_DB_MEMORY_LIMIT) is the
server's 503 with Retry-After and a message naming the setting, never a 500:
the request was fine and succeeds when fewer builds run at once."""

from __future__ import annotations

import pytest

from rop.config import Settings
from rop.store import open_store
from rop.web import create_app
from tests.test_web_support import tiny_store
from tests.web_client import page_client


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    store = tiny_store(tmp_path_factory.mktemp("overload"))
    path = store.path
    store.close()
    return path


def client(path, limit: str):
    # A fresh instance: DuckDB refuses to lower its limit below what it holds.
    store = open_store(path)
    app = create_app(Settings(db=path, db_memory_limit=limit, db_threads=1), store, cache_size=0)
    return store, page_client(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("url", "kind"), [("/report.json", "json"), ("/report", "html")])
def test_a_build_over_the_memory_limit_is_503_naming_the_setting(path, url, kind):
    store, c = client(path, "2MB")
    try:
        with c:
            r = c.get(url, params={"period": "this_year", "lang": "en"})
    finally:
        store.close()
    assert r.status_code == 503, r.text[:300]
    assert r.headers["retry-after"].isdigit()
    assert "ROP_DB_MEMORY_LIMIT" in r.text
    if kind == "json":
        assert r.json()["error"]["title"] == "Server busy"
    else:
        assert "Traceback" not in r.text and "OutOfMemory" not in r.text


def test_the_same_report_within_the_limit_is_answered(path):
    store, c = client(path, "256MB")
    try:
        with c:
            r = c.get("/report.json", params={"period": "this_year"})
    finally:
        store.close()
    assert r.status_code == 200
    assert r.json()["report"]["rows"]
