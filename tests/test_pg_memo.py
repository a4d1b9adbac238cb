"""PostgreSQL remembers a report's small lookups per portal and data version
(rop.store.memo.Versions, rop.store.pg_versions): the fixed cost of a report,
never a stale figure, whoever wrote (another process, another handle, a worker).

Every test runs on the session's private cluster (tests/pg.py) as the
application role, so row-level security applies as in production.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace as dc_replace
from datetime import date
from pathlib import Path

import pytest

from rop.bitrix.snapshot import load_snapshot
from rop.config import Settings
from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from rop.store import open_store
from rop.store.postgres import PgStore, portal_tables, shared_portal_tables
from rop.web import create_app
from tests.conftest import migrated_database
from tests.fixtures.portals import PORTALS
from tests.pg import APP, OWNER, Cluster
from tests.web_client import page_client

FLT = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
PORTAL = "tricky.bitrix24.ru"
OTHER = "other.bitrix24.ru"


def _other_portal(folder: Path) -> Path:
    """The tricky portal again under another domain."""
    shutil.copytree(PORTALS / "tricky", folder)
    info = json.loads((folder / "portal.json").read_text(encoding="utf-8"))
    info["domain"] = OTHER
    (folder / "portal.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


@pytest.fixture
def db(pg_cluster: Cluster, tmp_path: Path) -> str:
    """A fresh database with the tricky portal (the application role's URL)."""
    url = migrated_database(pg_cluster)
    with open_store(url) as store:
        load_snapshot(store, PORTALS / "tricky")
    return url


@pytest.fixture
def store(db: str) -> Iterator[PgStore]:
    opened = open_store(db)
    assert isinstance(opened, PgStore)
    yield opened
    opened.close()


def _statements(store: PgStore, fn) -> list[str]:
    """The statements ``fn`` runs through ``store`` (the version's own aside)."""
    seen: list[str] = []
    fetch = store._fetch

    def counting(sql, params):
        seen.append(sql)
        return fetch(sql, params)

    store._fetch = counting  # type: ignore[method-assign]
    try:
        fn()
    finally:
        del store._fetch
    return seen


def _figures(sql: str) -> bool:
    """A figure query (grouped), not a lookup."""
    return "GROUP BY" in sql


def _version(store: PgStore, portal: str = PORTAL) -> int:
    return int(
        store.scalar(
            "SELECT coalesce(sum(version), 0) FROM rop_data_versions WHERE scope IN (?, '')",
            [portal],
        )
    )


def _in_another_process(url: str, code: str) -> None:
    """Run ``code`` with ``s`` a store on ``url`` serving the tricky portal, in a new process."""
    script = (
        "import sys\n"
        "from rop.store import open_store\n"
        "s = open_store(sys.argv[1])\n"
        f"s.use_portal({PORTAL!r})\n"
        f"{code}\n"
        "s.close()\n"
    )
    subprocess.run([sys.executable, "-c", script, url], check=True)


def _manager(report: dict, user_id: int) -> dict:
    return next(r for r in report["rows"] if r["user_id"] == user_id)


def test_a_warm_report_runs_its_figure_queries_and_no_lookup(store: PgStore) -> None:
    cold = _statements(store, lambda: build_report(store, FLT, stages=False))
    build_report(store, FLT, stages=False)  # the cache tables' existence: asked once
    warm = _statements(store, lambda: build_report(store, FLT, stages=False))
    # Lookups (directories, the facts' state, the fingerprint): about thirty
    # before; the figure queries (grouped per manager) stay.
    lookups = [s for s in cold if not _figures(s)]
    assert len(lookups) >= 20, lookups
    assert len(warm) <= len(cold) - 20
    assert build_report(store, FLT, stages=False) == build_report(store, FLT, stages=False)


def test_what_another_process_writes_shows_in_the_next_report(db: str, store: PgStore) -> None:
    before = build_report(store, FLT, stages=False)
    build_report(store, FLT, stages=False)  # remembered now
    assert _manager(before, 4)["name"] == "Ирина Петрова"
    in_progress = before["total"]["figures"]["deals_in_progress"]
    # A manager renamed (the users' directory, the filter's names) and a deal
    # won without refreshing the stored facts (their marks must say they lag).
    _in_another_process(
        db,
        "s.execute(\"UPDATE users SET name = 'Boris' WHERE portal = ? AND id = 4\", "
        f"[{PORTAL!r}])\n"
        "d = s.scalar(\"SELECT min(id) FROM deals WHERE stage_semantic = 'P' "
        'AND assigned_by_id IS NOT NULL")\n'
        "row = s.query_dicts('SELECT * FROM deals WHERE id = ?', [d])[0]\n"
        "row.update(stage_id='WON', stage_semantic='S')\n"
        "s.upsert('deals', [row])",
    )
    after = build_report(store, FLT, stages=False)
    assert _manager(after, 4)["name"] == "Boris Петрова"
    assert after["total"]["figures"]["deals_in_progress"] == in_progress - 1
    assert drill(store, FLT, "deals_in_progress")["value"] == in_progress - 1
    # The portal's own row (a shared table): its zone, read by every report.
    _in_another_process(
        db,
        "s.execute(\"UPDATE portals SET timezone = 'Asia/Vladivostok' WHERE portal = ?\", "
        f"[{PORTAL!r}])",
    )
    assert build_report(store, FLT, stages=False)["period"]["timezone"] == "Asia/Vladivostok"


def test_a_rights_change_in_another_process_shows_at_once(db: str, store: PgStore) -> None:
    as_irina = dc_replace(FLT, viewer=4)  # a manager: sees herself only
    assert {r["user_id"] for r in build_report(store, as_irina, stages=False)["rows"]} == {4}
    build_report(store, as_irina, stages=False)
    _in_another_process(
        db,
        f"from rop.report.scope import set_override\nset_override(s, {PORTAL!r}, 4, 7, True)",
    )
    rows = build_report(store, as_irina, stages=False)["rows"]
    assert {r["user_id"] for r in rows} == {4, 7}


def test_the_web_sees_another_process_write_on_its_next_request(db: str) -> None:
    served = open_store(db)
    app = create_app(Settings(db=db, portal=PORTAL), served, cache_size=0)
    with page_client(app) as client:
        url = "/report.json?from=2026-11-01&to=2026-11-30"
        first = client.get(url).json()
        assert client.get(url).json()["report"]["rows"] == first["report"]["rows"]
        _in_another_process(
            db,
            "s.execute(\"UPDATE users SET last_name = 'Renamed' WHERE portal = ? AND id = 4\", "
            f"[{PORTAL!r}])",
        )
        names = {r["user_id"]: r["name"] for r in client.get(url).json()["report"]["rows"]}
        assert names[4] == "Ирина Renamed"
    served.close()


def test_a_write_counts_when_it_commits_and_not_if_rolled_back(db: str, store: PgStore) -> None:
    writer = open_store(db)
    writer.use_portal(PORTAL)
    build_report(store, FLT, stages=False)
    start = _version(store)
    with writer.transaction():
        writer.execute("UPDATE users SET name = 'Inside' WHERE portal = ? AND id = 4", [PORTAL])
        # Not committed: another handle sees neither the row nor a new version.
        assert _version(store) == start
        assert _manager(build_report(store, FLT, stages=False), 4)["name"] == "Ирина Петрова"
        # Nothing is remembered inside the writer's own transaction either.
        inside = writer.remember("n", lambda: writer.scalar("SELECT name FROM users WHERE id = 4"))
        assert inside == "Inside"
    assert _version(store) == start + 1
    assert _manager(build_report(store, FLT, stages=False), 4)["name"] == "Inside Петрова"
    with pytest.raises(RuntimeError), writer.transaction():
        writer.execute("UPDATE users SET name = 'Undone' WHERE portal = ? AND id = 4", [PORTAL])
        raise RuntimeError("stop")
    assert _version(store) == start + 1
    assert writer.remember("n", lambda: writer.scalar("SELECT name FROM users WHERE id = 4")) == (
        "Inside"
    )
    writer.close()


def test_a_handle_that_wrote_reads_the_version_again(store: PgStore) -> None:
    store.use_portal(PORTAL)
    n = store.remember("deals", lambda: store.scalar("SELECT count(*) FROM deals"))
    assert store.remember("deals", lambda: -1) == n
    store.scalar(
        "INSERT INTO deals (portal, id, assigned_by_id) VALUES (?, 999001, 1) RETURNING id",
        [PORTAL],
    )
    assert store.remember("deals", lambda: store.scalar("SELECT count(*) FROM deals")) == n + 1


def test_every_table_with_a_portal_moves_the_version(db: str, pg_cluster: Cluster) -> None:
    owner = db.replace(f"{APP}@", f"{OWNER}@")
    with open_store(owner) as admin:
        portal_only = portal_tables(admin.conn)
        shared = shared_portal_tables(admin.conn)
    assert "scope_overrides" in portal_only and "portals" in shared
    with open_store(db) as store:
        store.use_portal(PORTAL)
        for table in portal_only:
            start = _version(store)
            # A statement-level trigger: a write statement counts, rows or not.
            store.execute(f"DELETE FROM {table} WHERE portal = ? AND false", [PORTAL])  # noqa: S608
            assert _version(store) == start + 1, table
        start = _version(store)
        store.execute("UPDATE portals SET url = url WHERE portal = ?", [PORTAL])
        assert _version(store) == start + 1


def test_one_portal_write_keeps_the_others_remembered(
    db: str, store: PgStore, tmp_path: Path
) -> None:
    with open_store(db) as loader:
        load_snapshot(loader, _other_portal(tmp_path / "other"))
    mine, theirs = _version(store, PORTAL), _version(store, OTHER)
    with open_store(db) as other:
        other.use_portal(OTHER)
        other.execute("UPDATE users SET name = 'X' WHERE portal = ? AND id = 4", [OTHER])
    assert (_version(store, PORTAL), _version(store, OTHER)) == (mine, theirs + 1)
    # The owner is not held to one portal by row-level security: every portal counts.
    with open_store(db.replace(f"{APP}@", f"{OWNER}@")) as owner:
        owner.use_portal(OTHER)
        owner.execute("UPDATE users SET name = 'Y' WHERE portal = ? AND id = 4", [PORTAL])
    assert (_version(store, PORTAL), _version(store, OTHER)) == (mine + 1, theirs + 2)
    assert _manager(build_report(store, FLT, portal=PORTAL, stages=False), 4)["name"] == (
        "Y Петрова"
    )
    # A portal added: every handle's list of portals moves (the global count).
    assert _version(store, "new.bitrix24.ru") == _version(store, "") > 0


def test_the_application_role_cannot_move_a_version(store: PgStore) -> None:
    import psycopg

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        store.conn.execute("UPDATE rop_data_versions SET version = 0")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        store.conn.execute("DELETE FROM rop_data_marks")


def test_without_the_triggers_nothing_is_remembered(db: str) -> None:
    # A database migrated by an older rop: no versions until `rop migrate`.
    with open_store(db.replace(f"{APP}@", f"{OWNER}@")) as owner:
        owner.execute("DROP TRIGGER rop_data_version ON users")
    with open_store(db) as store:
        assert isinstance(store, PgStore) and store.versions is None
        build_report(store, FLT, stages=False)
        warm = _statements(store, lambda: build_report(store, FLT, stages=False))
        assert len([s for s in warm if not _figures(s)]) >= 20
        store.execute("UPDATE users SET name = 'Z' WHERE portal = ? AND id = 4", [PORTAL])
        assert _manager(build_report(store, FLT, stages=False), 4)["name"] == "Z Петрова"


def test_a_rights_change_elsewhere_reaches_a_cached_web_report(db: str) -> None:
    # The web keeps built reports by the data's version: on PostgreSQL every
    # committed write moves it, a rights change by another process too.
    served = open_store(db)
    app = create_app(Settings(db=db, portal=PORTAL, viewer=4), served)
    with page_client(app) as client:
        url = "/report.json?from=2026-11-01&to=2026-11-30"
        assert {r["user_id"] for r in client.get(url).json()["report"]["rows"]} == {4}
        _in_another_process(
            db,
            f"from rop.report.scope import set_override\nset_override(s, {PORTAL!r}, 4, 7, True)",
        )
        assert {r["user_id"] for r in client.get(url).json()["report"]["rows"]} == {4, 7}
    served.close()
