"""``Store.interrupt``: what the server's warm-up relies on to give its build
slot to a viewer (rop.web.builds.Yielding)."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from rop.store import open_store

LONG_SQL = "SELECT sum(hash(i)) FROM range(20000000000) t(i)"  # minutes unless stopped


def test_an_interrupt_stops_the_running_statement_of_that_handle_only(tmp_path):
    with open_store(tmp_path / "s.duckdb") as store:
        warm, viewer = store.cursor(), store.cursor()
        timer = threading.Timer(0.3, warm.interrupt)
        timer.start()
        began = time.monotonic()
        with pytest.raises(duckdb.InterruptException):
            warm.query(LONG_SQL)
        assert time.monotonic() - began < 30
        # The handle reads again, and the other handle never noticed.
        assert warm.query("SELECT 1") == [(1,)]
        assert viewer.query("SELECT count(*) FROM range(1000)") == [(1000,)]
        warm.close()
        viewer.close()


def test_an_interrupt_between_statements_is_dropped(tmp_path):
    """The warm-up's thread goes back to the pool with its cursor: an interrupt
    that found no statement must not stop the next user's first one."""
    with open_store(tmp_path / "s.duckdb") as store:
        cur = store.cursor()
        cur.interrupt()
        assert cur.query("SELECT count(*) FROM range(1000000)") == [(1000000,)]
        cur.close()
