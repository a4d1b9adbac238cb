"""Stored facts from another FACTS_VERSION: no open rebuilds them (rop/store/facts.py).

`rop serve` on such a store answers from the records (the same figures as the
stored facts give), never rebuilding in its open or a request; `rop migrate`
and the next `rop sync` bring the facts current. To show that a lagging
store's reports never read its stored facts, the test also spoils them.
Real parts: a DuckDB file, the web app through its test client, the CLI, the
emulator over HTTP.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rop.cli import cli
from rop.config import Settings
from rop.emulator import EmulatorConfig, serve_in_thread
from rop.emulator import create_app as emulator_app
from rop.report.build import build_report
from rop.report.filter import ReportFilter
from rop.store import facts
from rop.store.db import Store, open_store
from rop.web import create_app
from tests.fixtures.portals import load
from tests.sync_portal import TOKEN, make_portal
from tests.test_facts import assert_facts_equal_a_rebuild
from tests.web_client import page_client

PORTAL = "tricky.bitrix24.ru"
FILTERS = [
    ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27)),
    ReportFilter(date(2026, 1, 1), date(2026, 11, 27), today=date(2026, 11, 27)),
]
PERIODS = [{"period": "custom", "from": "2026-11-01", "to": "2026-11-30"},
           {"period": "custom", "from": "2026-01-01", "to": "2026-11-27"}]  # fmt: skip


def reports(store: Store, portal: str) -> list[dict]:
    """The reports, but for when the data was copied (a sync moves it on)."""
    built = [build_report(store, flt, portal=portal) for flt in FILTERS]
    return [{k: v for k, v in r.items() if k != "data_as_of"} for r in built]


def pages(store: Store) -> list[Any]:
    web = page_client(create_app(Settings(db=store.path), store))
    return [web.get("/report.json", params=p).json()["report"] for p in PERIODS]


def make_lag(store: Store, portal: str) -> None:
    """Facts stamped by an older version, and wrong, as no reader may use them."""
    store.execute(
        "UPDATE facts_state SET version = ? WHERE portal = ?", [facts.FACTS_VERSION - 1, portal]
    )
    store.execute("UPDATE deal_facts SET amount = amount + 1000, close_time = NULL")
    store.execute("DELETE FROM call_facts")
    store.execute("DELETE FROM lead_facts")


def version(store: Store, portal: str) -> int:
    return store.scalar("SELECT version FROM facts_state WHERE portal = ?", [portal])


def test_serve_answers_a_lagging_store_from_the_records_and_migrate_brings_it_current(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    with load("tricky", path) as store:
        want_reports, want_pages = reports(store, PORTAL), pages(store)
        assert want_reports[0]["total"]["figures"]["deals_won"] > 0
        make_lag(store, PORTAL)
    # What `rop serve` does: a writable open, then the app over it.
    with open_store(path) as served:
        assert version(served, PORTAL) == facts.FACTS_VERSION - 1  # not rebuilt by the open
        assert facts.lagging(served) == [PORTAL] and not facts.facts_ready(served, PORTAL)
        assert pages(served) == want_pages
        assert reports(served, PORTAL) == want_reports
        assert version(served, PORTAL) == facts.FACTS_VERSION - 1  # nor by a request
    result = CliRunner().invoke(cli, ["migrate", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert f"stored facts rebuilt for: {PORTAL}" in result.output
    with open_store(path) as current:
        assert facts.lagging(current) == []
        assert_facts_equal_a_rebuild(current, PORTAL)
        assert reports(current, PORTAL) == want_reports
        assert pages(current) == want_pages
    again = CliRunner().invoke(cli, ["migrate", "--db", str(path)])
    assert again.exit_code == 0 and "rebuilt" not in again.output


def test_serve_says_the_facts_lag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rop.web

    path = tmp_path / "old.duckdb"
    with load("tricky", path) as store:
        make_lag(store, PORTAL)
    monkeypatch.setattr(rop.web, "serve", lambda app, host, port: None)
    result = CliRunner().invoke(cli, ["serve", "--db", str(path), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert f"the stored facts of {PORTAL} are from another version" in result.output
    with open_store(path) as after:
        assert version(after, PORTAL) == facts.FACTS_VERSION - 1


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Any:
    portal = make_portal(tmp_path_factory.mktemp("portal"), deals=150)
    app = emulator_app(portal, EmulatorConfig(rate_limit=False, simulate_processing=False))
    with serve_in_thread(app, host="127.0.0.1", port=0) as base:
        yield f"{base}/rest/1/{TOKEN}/", base.split("://", 1)[1]


def test_the_next_sync_brings_lagging_facts_current(tmp_path: Path, emulator: Any) -> None:
    webhook, portal = emulator
    path = tmp_path / "s.duckdb"
    first = CliRunner().invoke(cli, ["sync", "--webhook", webhook, "--db", str(path)])
    assert first.exit_code == 0, first.output
    with open_store(path) as store:
        want = reports(store, portal)
        make_lag(store, portal)
        assert reports(store, portal) == want  # from the records meanwhile
    result = CliRunner().invoke(cli, ["sync", "--webhook", webhook, "--db", str(path)])
    assert result.exit_code == 0, result.output
    with open_store(path) as store:
        assert version(store, portal) == facts.FACTS_VERSION
        assert_facts_equal_a_rebuild(store, portal)
        assert reports(store, portal) == want


def test_migrate_brings_a_lagging_postgresql_store_current(pg_cluster: Any) -> None:
    # Server mode: the web and the workers open as the application role and never
    # rebuild; `rop migrate` as the owner does, after the migrations.
    from tests.pg import APP, OWNER

    name = pg_cluster.new_database()
    owner, app = pg_cluster.url(name, OWNER), pg_cluster.url(name, APP)
    made = CliRunner().invoke(cli, ["migrate", "--db", owner, "--app-role", APP])
    assert made.exit_code == 0, made.output
    with load("tricky", app) as store:
        want = reports(store, PORTAL)
        make_lag(store, PORTAL)
    with open_store(app) as served:
        served.use_portal(PORTAL)  # row-level security: the portal's rows only
        assert version(served, PORTAL) == facts.FACTS_VERSION - 1  # not by the open
        assert reports(served, PORTAL) == want
    result = CliRunner().invoke(cli, ["migrate", "--db", owner, "--app-role", APP])
    assert result.exit_code == 0, result.output
    assert f"stored facts rebuilt for: {PORTAL}" in result.output
    with open_store(app) as current:
        current.use_portal(PORTAL)
        assert_facts_equal_a_rebuild(current, PORTAL)
        assert reports(current, PORTAL) == want
