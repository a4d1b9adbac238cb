"""Server mode's promise, end to end through the CLI: `rop sync` then `rop report`
on a postgresql:// store give the very JSON they give on a DuckDB file.

The same emulated portal (real HTTP) is synced into a DuckDB file and into a
PostgreSQL database migrated by `rop migrate` as the owner role and written
and read as the application role (row-level security on), then every
section's figures, the department subtotals, the previous period and a few
drill-downs are compared whole.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from rop.cli import cli
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from tests.fixtures.portals import PORTALS
from tests.pg import APP, OWNER, Cluster


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def pg_store(cluster: Cluster) -> str:
    """A new database migrated by `rop migrate` as the owner; the app role's URL."""
    name = cluster.new_database()
    out = run("migrate", "--db", cluster.url(name, OWNER), "--app-role", APP)
    assert "migrations applied" in out
    return cluster.url(name, APP)


def demo_portal(folder: Path) -> Path:
    from rop.demo.generator import generate

    generate(str(folder), seed=7, deals=400, months=6)
    return folder


def outputs(db: str, hook: str, period: list[str]) -> dict[str, object]:
    run("sync", "--webhook", hook, "--db", db)
    got: dict[str, object] = {}
    report = json.loads(run("report", "--db", db, *period, "--format", "json"))
    report.pop("data_as_of")  # when each sync ran
    got["report"] = report
    by_source = json.loads(run("report", "--db", db, *period, "--by", "source", "--format", "json"))
    by_source.pop("data_as_of")
    got["by_source"] = by_source
    # Every figure's records: each compiles its own SQL.
    for figure in [c["key"] for c in report["columns"]]:
        got[figure] = json.loads(
            run("drill", "--db", db, *period, "--figure", figure, "--format", "json")
        )
    got["rights"] = run("rights", "--db", db, "show")
    return got


def diff(a: object, b: object, path: str = "") -> list[str]:
    """Where two JSON values differ (the first few paths), for a readable failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in a.keys() | b.keys() for d in diff(a.get(k), b.get(k), f"{path}.{k}")][:5]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff(x, y, f"{path}[{i}]")
        ][:5]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


# Every hand-made portal, in the month of its clock, and a generated demo portal.
HAND_MADE = {
    "tricky": ["--from", "2026-11-01", "--to", "2026-11-30"],
    "stages": ["--from", "2026-11-01", "--to", "2026-11-30"],
    "quality": ["--from", "2026-11-01", "--to", "2026-11-30"],
    "blanks": ["--from", "2026-10-01", "--to", "2026-10-31"],
}


@pytest.mark.parametrize("portal", [*HAND_MADE, "demo"])
def test_sync_and_report_json_match_duckdb(portal, tmp_path, pg_cluster):
    if portal in HAND_MADE:
        folder = PORTALS / portal
        period = HAND_MADE[portal]
    else:
        folder = demo_portal(tmp_path / "demo")
        today = date.today()
        period = ["--from", str(today - timedelta(days=90)), "--to", str(today)]
    app = create_app(folder, EmulatorConfig(rate_limit=False))
    with serve_in_thread(app, host="127.0.0.1", port=0) as base:
        p = app.state.portal
        hook = f"{base}/rest/{p.webhook_user_id}/{p.webhook_token}/"
        on_duckdb = outputs(str(tmp_path / "rop.duckdb"), hook, period)
        on_postgres = outputs(pg_store(pg_cluster), hook, period)
    assert on_duckdb["report"]["total"]["figures"]["deals_new"] > 0  # type: ignore[index]
    for key in on_duckdb:
        assert on_postgres[key] == on_duckdb[key], (key, diff(on_duckdb[key], on_postgres[key]))


def test_migrate_twice_changes_nothing_and_the_app_role_cannot_migrate(pg_cluster):
    name = pg_cluster.new_database()
    owner = pg_cluster.url(name, OWNER)
    run("migrate", "--db", owner, "--app-role", APP)
    assert "none needed" in run("migrate", "--db", owner, "--app-role", APP)
    result = CliRunner().invoke(cli, ["migrate", "--db", pg_cluster.url(name, APP)])
    assert result.exit_code == 2
    assert "permission denied" in result.output or "must be owner" in result.output


def test_a_store_never_migrated_names_rop_migrate(pg_cluster):
    name = pg_cluster.new_database()
    result = CliRunner().invoke(
        cli, ["report", "--db", pg_cluster.url(name, APP), "--format", "json"]
    )
    assert result.exit_code == 2
    assert "rop migrate" in result.output
    assert "Traceback" not in result.output
