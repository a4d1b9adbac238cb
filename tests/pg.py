"""A private PostgreSQL cluster for the tests that run on both engines.

The cluster lives in a temporary folder, listens on a free port of 127.0.0.1
and on a unix socket in that folder, and is stopped when the session ends
(even when a test fails). PostgreSQL refuses to run as root: under root the
server runs as the unprivileged ``nobody`` user (``runuser``).

Without PostgreSQL's binaries the tests that need it skip, naming the reason;
under ``CI=true`` they fail instead, so CI cannot pass without them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

OWNER = "rop_owner"  # owns the tables; runs `rop migrate`
APP = "rop_app"  # what the application connects as: not the owner, so RLS applies


def pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl: $PG_BIN, PATH, or Debian's newest version."""
    given = os.environ.get("PG_BIN")
    if given:
        return Path(given)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def unavailable(reason: str) -> None:
    """Skip outside CI; in CI a missing PostgreSQL is a failure, not a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running cluster: URLs for the owner and the application role per database."""

    port: int
    socket_dir: Path
    bin: Path
    run_as: list[str]

    def url(self, db: str, role: str = APP) -> str:
        return f"postgresql://{role}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "postgres", role: str = "postgres") -> list[tuple]:
        """Run one statement as ``role`` (the superuser by default)."""
        import psycopg

        with psycopg.connect(self.url(db, role), autocommit=True) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def new_database(self, template: str | None = None) -> str:
        """A fresh database owned by the owner role; the app role may connect.

        ``template``: a database to copy (schema, grants, row-level security and
        statistics; nobody may be connected to it), instead of an empty one.
        """
        name = "rop_" + uuid.uuid4().hex[:12]
        copy = f" TEMPLATE {template}" if template else ""
        self.psql(f"CREATE DATABASE {name} OWNER {OWNER}{copy}")
        self.psql(f"GRANT CONNECT, TEMPORARY ON DATABASE {name} TO {APP}")
        return name


def _as_server_user(root: Path) -> list[str]:
    """The command prefix that drops root to ``nobody`` (empty when not root)."""
    if os.geteuid() != 0:
        return []
    shutil.chown(root, "nobody", "nogroup")
    return ["runuser", "-u", "nobody", "--"]


@contextlib.contextmanager
def start_cluster(keep: Path | None = None, options: str = "") -> Iterator[Cluster]:
    """A running private cluster; ``keep``: its folder, kept (and reused) afterwards.

    Benchmarks keep a loaded cluster in a folder of their own (loading a
    million deals takes minutes); tests always start afresh.
    """
    bin_dir = pg_bin()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        unavailable("no PostgreSQL binaries (apt-get install postgresql, or set PG_BIN)")
        raise AssertionError  # unreachable: skip/fail raise
    # /tmp, not pytest's tmp_path: the folder must be reachable by `nobody`
    # and a unix socket path must stay under ~100 characters.
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        root = keep
    else:
        root = Path(tempfile.mkdtemp(prefix="rop-pg-"))
    os.chmod(root, 0o755)
    run_as = _as_server_user(root)
    data, sock = root / "data", root / "sock"
    port = _free_port()
    fresh = not (data / "PG_VERSION").exists()
    if fresh:
        subprocess.run(
            [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres"]
            + ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
            check=True,
            capture_output=True,
        )
        subprocess.run([*run_as, "mkdir", str(sock)], check=True)
    options = (
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 " + options
    )
    subprocess.run(
        [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options]
        + ["-l", str(root / "server.log"), "-w", "-t", "60", "start"],
        check=True,
        capture_output=True,
    )
    cluster = Cluster(port, sock, bin_dir, run_as)
    try:
        if fresh:
            cluster.psql(f"CREATE ROLE {OWNER} LOGIN")
            cluster.psql(f"CREATE ROLE {APP} LOGIN")
        yield cluster
    finally:
        stop = "fast" if keep is not None else "immediate"  # a kept cluster stops clean
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", stop, "-w", "stop"],
            capture_output=True,
        )
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
