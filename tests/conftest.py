"""Fixtures shared by the tests that run on both engines (DuckDB and PostgreSQL).

``ENGINES`` parametrizes a store fixture; ``store_target(engine, folder)``
gives a fresh, migrated, empty store to open: a DuckDB file, or a new
database of the session's private PostgreSQL cluster (tests/pg.py) reached
as the application role, so row-level security applies as in production.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

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


def store_target(engine: str, folder: Path, request: pytest.FixtureRequest) -> str:
    """Where a fresh store of ``engine`` lives: a file path or a postgresql:// URL."""
    if engine == "duckdb":
        return str(folder / f"s{next(_COUNT)}.duckdb")
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    return migrated_database(cluster)
