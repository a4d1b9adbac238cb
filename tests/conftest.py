"""Fixtures shared by the tests that run on both engines (DuckDB and PostgreSQL).

``ENGINES`` parametrizes a store fixture; ``store_target(engine, folder)``
gives a fresh, migrated, empty store to open: a DuckDB file, or a new
database of the session's private PostgreSQL cluster (tests/pg.py) reached
as the application role, so row-level security applies as in production.

Both are copies of an empty store migrated once per test process (a file
copy; ``CREATE DATABASE ... TEMPLATE``): migrating takes 0.3-0.9 s a store,
copying 0.05 s, and hundreds of tests start from one. The migrations from
nothing still run in every process (building the template), and
tests/test_store.py asks for ``fresh=True`` stores that migrate themselves.
"""

from __future__ import annotations

import itertools
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pg import APP, OWNER, Cluster, start_cluster

ENGINES = ["duckdb", "postgres"]
_COUNT = itertools.count()
_CLUSTER: list[Cluster] = []


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    with start_cluster() as cluster:
        _CLUSTER.append(cluster)
        yield cluster
        _CLUSTER.clear()


def migrated_database(cluster: Cluster) -> str:
    """A new database migrated by the owner; returns the application role's URL."""
    from rop.store.postgres import connect_pool, migrate_pg

    name = cluster.new_database()
    pool = connect_pool(cluster.url(name, OWNER), max_size=1)
    try:
        with pool.connection() as conn:
            migrate_pg(conn, name, app_role=APP)
    finally:
        pool.close()
    return cluster.url(name, APP)


@pytest.fixture(scope="session")
def duck_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty DuckDB store migrated by this process, closed: copied, never opened again."""
    from rop.store.db import open_store

    path = tmp_path_factory.mktemp("template") / "empty.duckdb"
    open_store(path).close()  # closing checkpoints: the file alone holds it all
    return path


@pytest.fixture(scope="session")
def pg_template(pg_cluster: Cluster) -> str:
    """A database migrated as for the tests, then closed to connections: copied, never opened."""
    name = migrated_database(pg_cluster).rsplit("/", 1)[1]
    pg_cluster.psql(f"ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
    return name


def _copy_database(cluster: Cluster, template: str) -> str:
    """A new database copied from ``template``; the application role's URL."""
    import psycopg

    for attempt in range(50):
        try:
            return cluster.url(cluster.new_database(template=template), APP)
        except psycopg.errors.ObjectInUse:
            # Only the server's own autovacuum may visit a closed template: wait it out.
            if attempt == 49:
                raise
            time.sleep(0.1)
    raise AssertionError  # unreachable


def store_target(
    engine: str, folder: Path, request: pytest.FixtureRequest, fresh: bool = False
) -> str:
    """Where a new, migrated, empty store of ``engine`` lives: a file path or a
    postgresql:// URL. A copy of the process's template; ``fresh``: a path or a
    database that ``open_store`` or the owner migrates from nothing."""
    if engine == "duckdb":
        path = folder / f"s{next(_COUNT)}.duckdb"
        if not fresh:
            shutil.copyfile(request.getfixturevalue("duck_template"), path)
        return str(path)
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    if fresh:
        return migrated_database(cluster)
    return _copy_database(cluster, request.getfixturevalue("pg_template"))


# A module-scoped (or class-scoped) fixture, or fixtures imported from another
# test module (tests/test_web_browser_polish.py takes test_web_browser's).
_SHARES = re.compile(r"scope=[\"'](?:module|class)[\"']|^from tests\.test_\w+ import", re.M)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``pytest -n 2 --dist loadgroup`` (make test): a module whose tests share a
    module-scoped fixture (a generated portal, a loaded store, a server, a
    browser) goes to one worker whole, so the fixture is built once, not once
    per worker; every other test is sent on its own. Modules with more tests
    are sent first, single tests last, so the workers end close together.

    xdist's own loadgroup reads ``xdist_group`` marks through a node ID that
    pytest 9.2 no longer lets a plugin change, so it splits every group: this
    scheduler decides from the module's source instead (the controller collects
    nothing). It orders tests, never changes what they do."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    root = config.rootpath
    shared: dict[str, bool] = {}

    class ModuleFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module not in shared:
                path = root / module
                text = path.read_text(encoding="utf-8") if path.is_file() else ""
                shared[module] = bool(_SHARES.search(text))
            return module if shared[module] else nodeid

    return ModuleFixtureScheduling(config, log)
