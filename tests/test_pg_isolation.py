"""Tenant isolation in server mode: three portals in one PostgreSQL database.

Each portal is the hand-made "tricky" portal under its own domain, its CRM
texts tagged with its letter; portal B also has a manager (user 500) and a
deal ("SECRET-B") no other portal has. A web app pinned to portal A
(ROP_PORTAL) is asked, by every route that shows records, for B's records;
then the store itself is queried as the application role with the portal
predicate left out: row-level security answers with A's rows only, or none
when no portal is set.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rop.bitrix.snapshot import load_snapshot
from rop.cli import cli
from rop.config import Settings
from rop.metrics.catalogue import STATIC as FIGURES
from rop.metrics.compile import aggregate_sql, bind, params_for
from rop.metrics.sources import SOURCES
from rop.report.context import context, prepare
from rop.report.filter import ReportFilter
from rop.store import open_store
from rop.store.db import Store
from rop.web import create_app
from tests.conftest import migrated_database
from tests.fixtures.portals import PORTALS
from tests.pg import OWNER, Cluster
from tests.web_client import page_client

LETTERS = ("a", "b", "c")
NOV = "from=2026-11-01&to=2026-11-30"


def key(letter: str) -> str:
    return f"{letter}.bitrix24.ru"


def tagged_portal(folder: Path, letter: str) -> Path:
    """The tricky portal as ``<letter>.bitrix24.ru``, every deal title tagged; B has more."""
    shutil.copytree(PORTALS / "tricky", folder)
    info = json.loads((folder / "portal.json").read_text(encoding="utf-8"))
    info["domain"] = key(letter)
    (folder / "portal.json").write_text(json.dumps(info), encoding="utf-8")
    deals_file = folder / "crm.deal.list.json"
    deals = json.loads(deals_file.read_text(encoding="utf-8"))
    for d in deals:
        d["TITLE"] = f"[{letter.upper()}] {d['TITLE']}"
    if letter == "b":
        secret = dict(deals[0], ID="500", TITLE="SECRET-B", ASSIGNED_BY_ID="500")
        deals.append(secret)
        users_file = folder / "user.get.json"
        users = json.loads(users_file.read_text(encoding="utf-8"))
        users.append(dict(users[-1], ID="500", NAME="Secret", LAST_NAME="Bmanager"))
        users_file.write_text(json.dumps(users, ensure_ascii=False), encoding="utf-8")
    deals_file.write_text(json.dumps(deals, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def db(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = migrated_database(pg_cluster)
    with open_store(url) as store:
        for letter in LETTERS:
            load_snapshot(store, tagged_portal(tmp_path_factory.mktemp(letter) / "p", letter))
    return url


@pytest.fixture(scope="module")
def web_a(db: str) -> Iterator:
    store = open_store(db)
    app = create_app(Settings(db=db, portal=key("a")), store, cache_size=0)
    with page_client(app, raise_server_exceptions=False) as client:
        yield client
    store.close()


def _no_b(text: str) -> None:
    assert "SECRET" not in text and "Bmanager" not in text and "[B]" not in text
    assert "b.bitrix24.ru" not in text and "[C]" not in text


def test_the_database_holds_all_three(pg_cluster: Cluster, db: str) -> None:
    # As the owner (no row-level security) every portal's deals are there.
    owner = db.replace("rop_app@", f"{OWNER}@")
    with open_store(owner) as store:
        counts = dict(store.query("SELECT portal, count(*) FROM deals GROUP BY portal"))
    assert counts == {key("a"): 10, key("b"): 11, key("c"): 10}


def test_report_and_exports_of_a_show_nothing_of_b(web_a) -> None:
    report = web_a.get(f"/report.json?{NOV}")
    assert report.status_code == 200
    assert key("a") in report.text
    _no_b(report.text)
    for path in ("/report.csv", "/report"):
        got = web_a.get(f"{path}?{NOV}")
        assert got.status_code == 200, path
        _no_b(got.text)
    workbook = web_a.get(f"/report.xlsx?{NOV}&stages=1")
    assert workbook.status_code == 200
    _no_b(_xlsx_text(workbook.content))
    # Asking for B's manager by ID: refused as unknown, never B's figures.
    for name in ("manager", "managers"):
        tampered = web_a.get(f"/report.json?{NOV}&{name}=500&portal={key('b')}")
        assert tampered.status_code in (200, 400), name
        _no_b(tampered.text)
    assert web_a.get(f"/report.json?{NOV}&manager=500").status_code == 400
    # B's manager's own page (issue 15) and its JSON twin: not A's to show.
    for path in ("/manager/500", "/manager/500.json"):
        got = web_a.get(f"{path}?{NOV}")
        assert got.status_code in (400, 403, 404), (path, got.status_code)
        _no_b(got.text)


def _xlsx_text(content: bytes) -> str:
    """Every cell of every sheet, as one text."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(content), read_only=True)
    cells = [
        str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
        for v in row if v is not None
    ]  # fmt: skip
    assert cells
    return "\n".join(cells)


def test_drill_downs_of_a_never_list_b_records(web_a) -> None:
    figures = [f.key for f in FIGURES if f.section == "deals"]
    for figure in figures:
        for extra in ("", "&user=500", "&user=4"):
            got = web_a.get(f"/drill.json?{NOV}&figure={figure}{extra}")
            assert got.status_code in (200, 400, 403, 404), (figure, extra, got.text)
            _no_b(got.text)
    listed = web_a.get(f"/drill.json?{NOV}&figure=deals_new").json()
    titles = [r["title"] for r in listed["records"]]
    assert titles and all(t.startswith("[A] ") for t in titles)
    exported = web_a.get(f"/drill.csv?{NOV}&figure=deals_new")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.text.removeprefix("\ufeff")), delimiter=";"))
    assert any("[A] " in cell for row in rows for cell in row)
    _no_b(exported.text)


def test_sync_status_rights_and_health_of_a(web_a) -> None:
    status = web_a.get("/api/sync")
    assert status.status_code == 200
    _no_b(status.text)
    # The rights API answers the local CLI only (a token a DuckDB server writes
    # beside its file); a PostgreSQL server has none to give, so: refused.
    rights = web_a.get(f"/api/rights?portal={key('b')}", headers={"X-Rop-Local-Token": ""})
    assert rights.status_code == 403
    _no_b(rights.text)
    assert web_a.get("/healthz").json() == {"status": "ok"}
    assert web_a.get("/readyz").json() == {"status": "ready"}


def test_sync_status_of_a_shows_nothing_of_bs_runs_or_jobs(pg_cluster: Cluster, db: str) -> None:
    """Server mode: the status reads the queue and sync_runs; B's failed run (its
    message naming B's deal) and B's waiting job never show on A's page or API."""
    import psycopg

    from rop.jobs.defer import deferrer, queue_sync
    from rop.jobs.queue_schema import install_queue
    from tests.pg import APP

    owner = db.replace(f"{APP}@", f"{OWNER}@", 1)
    with psycopg.connect(owner, autocommit=True) as conn:
        install_queue(conn, APP)
        conn.execute(
            "INSERT INTO sync_runs (portal, id, kind, started_at, finished_at, outcome, message) "
            "VALUES (%s, 1, 'full', now(), now(), 'failed', 'SECRET-B went wrong')",
            [key("b")],
        )
    queue = deferrer(db)
    try:
        assert queue_sync(queue, key("b"), full=True)
    finally:
        queue.close()
    store = open_store(db)
    try:
        hook = f"https://{key('a')}/rest/1/token/"
        app = create_app(Settings(db=db, portal=key("a"), webhook=hook), store, cache_size=0)
        with page_client(app, raise_server_exceptions=False) as client:
            status = client.get("/api/sync").json()
            assert status["runs"] == 0 and status["state"] == "idle" and not status["queued"]
            _no_b(json.dumps(status))
            page = client.get(f"/report?{NOV}")
            assert page.status_code == 200 and 'data-state="idle"' in page.text
            _no_b(page.text)
            # Asking A's server to sync B: refused, B's job untouched.
            other = client.post(
                "/api/sync",
                json={"portal": key("b"), "wait": False},
                headers={"origin": "http://127.0.0.1"},
            )
            assert other.status_code == 409, other.text
    finally:
        store.close()
    with psycopg.connect(owner) as conn:
        waiting = conn.execute(
            "SELECT args->>'portal', status::text FROM procrastinate_jobs"
        ).fetchall()
    assert waiting == [(key("b"), "todo")]


def test_rights_of_a_name_no_override_of_b(db: str) -> None:
    def rights(letter: str, *args: str) -> str:
        out = CliRunner().invoke(cli, ["rights", "--db", db, "--portal", key(letter), *args])
        assert out.exit_code == 0, out.output
        return out.output

    before = rights("a", "show")
    rights("b", "allow", "3", "500")
    rights("b", "admin", "500")
    assert "500" in rights("b", "show")
    shown = rights("a", "show")
    assert "500" not in shown and shown == before
    # The web report of A, as viewer 3, still sees only A's scope.
    store = open_store(db)
    try:
        app = create_app(Settings(db=db, portal=key("a"), viewer=3), store, cache_size=0)
        with page_client(app, raise_server_exceptions=False) as as_3:
            own = as_3.get(f"/report.json?{NOV}")
            assert own.status_code == 200
            _no_b(own.text)
            assert 500 not in {r.get("user_id") for r in own.json()["report"]["rows"]}
            assert as_3.get(f"/report.json?{NOV}&manager=500").status_code in (400, 403)
    finally:
        store.close()


def _without_portal(sql: str) -> str:
    """The statement with every ``portal = $portal`` test replaced by TRUE."""
    stripped = re.sub(r"\b(\w+\.)?portal = \$portal\b", "TRUE", sql)
    assert "$portal" not in stripped
    return stripped


def test_a_query_that_forgets_its_portal_reads_only_the_sessions_portal(db: str) -> None:
    from datetime import date

    store: Store
    with open_store(db) as store:
        flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 27))
        prep = prepare(store, flt, key("a"))
        ctx = context(prep, flt.date_from, flt.date_to)
        ctx.materialize = None  # the SQL itself, not cached tables
        figs = [f for f in FIGURES if f.section == "deals"]
        sql = _without_portal(aggregate_sql(SOURCES["deal_rel"], figs, ctx))
        params = bind(sql, params_for(ctx, figs))
        as_a = store.query(sql, params)
        assert as_a  # A's own rows are there
        assert store.scalar("SELECT count(*) FROM deals") == 10  # not 31
        assert not store.query(
            "SELECT id FROM deals WHERE title LIKE 'SECRET%' OR title LIKE '[B]%'"
        )
        # No portal set at all: nothing, whatever the query asks for.
        store.execute("SELECT set_config('app.portal', '', false)")
        assert store.query(sql, params) == []
        assert store.scalar("SELECT count(*) FROM deals") == 0
        assert store.scalar("SELECT count(*) FROM users WHERE id = 500") == 0
        # And writing another portal's rows is refused.
        store.use_portal(key("a"))
        import psycopg

        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            store.upsert("deals", [{"portal": key("b"), "id": 9999, "title": "planted"}])
