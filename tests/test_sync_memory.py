"""A sync's memory: the copy under a share of the store's bound, the facts'
refresh under all of it, glibc's malloc kept from hoarding freed batches.

Real parts: the emulator over loopback HTTP, a DuckDB file, a fresh Python
process for the allocator."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rop.bitrix import sync as sync_module
from rop.store.db import open_store
from rop.store.facts import facts_ready
from tests.sync_portal import make_portal
from tests.test_sync import assert_store_equals_portal, emulate, sync


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_portal(tmp_path_factory.mktemp("portal"), deals=300)


def _limit(store: Any) -> str:
    return str(store.scalar("SELECT current_setting('memory_limit')"))


def test_the_copy_runs_under_its_share_and_the_refresh_under_the_whole_bound(
    tmp_path: Path, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_in_copy: set[str] = set()
    seen_in_refresh: list[str] = []
    connections: list[Any] = []
    refresh = sync_module.refresh_facts

    def refreshing(store: Any, portal: str, **kwargs: Any) -> Any:
        seen_in_refresh.append(_limit(store))
        connections.append(store.conn)
        return refresh(store, portal, **kwargs)

    monkeypatch.setattr(sync_module, "refresh_facts", refreshing)
    with open_store(tmp_path / "s.duckdb") as store, emulate(portal_dir) as emu:
        store.bound("160MB")
        copying = store.conn
        spy = store.cursor()  # the progress callback runs beside the writer thread
        result = sync(
            store,
            emu,
            alone=True,
            progress=lambda entity, done, total: seen_in_copy.add(_limit(spy)),
        )
        assert result.kind == "full"
        # 0.7 x 160 MB in the copy; 160 MB (152.5 MiB) for the facts' rebuild and
        # after, on a connection opened after the copy.
        assert seen_in_copy == {"106.8 MiB"}
        assert seen_in_refresh == ["152.5 MiB"]
        assert connections[0] is store.conn is not copying
        assert _limit(store) == "152.5 MiB"
        assert_store_equals_portal(store, emu, portal_dir)
        assert facts_ready(store, emu.key)
        spy.close()


def test_a_server_sync_keeps_its_bound_and_connection(
    tmp_path: Path, portal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server's bound is its readers' too, its handle theirs (run_sync's default).
    seen: set[str] = set()
    with open_store(tmp_path / "s.duckdb") as store, emulate(portal_dir) as emu:
        store.bound("160MB")
        before = store.conn
        spy = store.cursor()
        sync(store, emu, progress=lambda entity, done, total: seen.add(_limit(spy)))
        assert seen == {"152.5 MiB"} and store.conn is before
        spy.close()


def test_a_reopened_store_keeps_its_rows_and_bound(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.duckdb") as store:
        store.bound("160MB", 1)
        store.execute("CREATE TABLE t AS SELECT 1 AS x")
        store.reopen()
        assert store.query("SELECT x FROM t") == [(1,)]
        settings = store.query(
            "SELECT current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('TimeZone')"
        )
        assert settings == [("152.5 MiB", 1, "UTC")]


def test_a_failed_copy_gives_the_bound_back(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.duckdb") as store:
        store.bound("160MB")
        with pytest.raises(RuntimeError, match="cut"), store.narrowed(0.5):
            assert _limit(store) == "76.2 MiB"
            raise RuntimeError("cut")
        assert _limit(store) == "152.5 MiB"


def test_an_unbounded_store_is_left_alone(tmp_path: Path) -> None:
    # A store nobody bounded keeps DuckDB's own limit: a share of it is no bound.
    with open_store(tmp_path / "s.duckdb") as store:
        before = _limit(store)
        with store.narrowed(0.5):
            assert _limit(store) == before
        assert _limit(store) == before


def test_a_bound_returns_large_freed_blocks_at_once(tmp_path: Path) -> None:
    # DuckDB keeps a bulk deallocation below 512 MB (its default) in its allocator's
    # reserve, outside the limit: under 160MB that was every hash table and sort.
    with open_store(tmp_path / "s.duckdb") as store:
        store.bound("160MB")
        got = store.scalar("SELECT current_setting('allocator_bulk_deallocation_flush_threshold')")
    assert got == "19.0 MiB"


ALLOCATOR_PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from rop.bitrix.sync import tune_malloc

    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        ).split()]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    if sys.argv[1] == "tuned":
        tune_malloc()
    # A batch's 8 MB response body, freed: glibc then raises its mmap threshold
    # to 8 MB, so the next batch's 4 MB body comes from the heap and stays there.
    libc.free(libc.malloc(8 << 20))
    before = libc.mallinfo2().hblks
    body = libc.malloc(4 << 20)
    print(libc.mallinfo2().hblks - before)
    libc.free(body)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_batches_go_back_to_the_system() -> None:
    def mmapped(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", ALLOCATOR_PROBE, mode], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip())

    # Untuned, the second block sits in the heap (kept after free); tuned, it is
    # its own mapping (returned at free).
    assert (mmapped("plain"), mmapped("tuned")) == (0, 1)
