"""Operations of server mode: structured logs, the REST request log, health, `rop portals`."""

from __future__ import annotations

import json
import logging
import logging.handlers
from pathlib import Path

import pytest
from click.testing import CliRunner

from rop.cli import cli
from rop.config import Settings
from rop.logs import JsonFormatter, configure
from rop.web import create_app
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import PORTALS, load
from tests.web_client import page_client


def test_a_log_line_is_one_json_object_with_its_fields():
    record = logging.makeLogRecord(
        {"name": "rop.access", "levelname": "INFO", "msg": "GET %s", "args": ("/r",)}
    )
    record.portal = "a.bitrix24.ru"
    record.title = 'Сделка "<b>"\n'
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["msg"] == "GET /r" and data["portal"] == "a.bitrix24.ru"
    assert data["title"] == 'Сделка "<b>"\n' and data["level"] == "info"


def test_every_request_is_logged_with_status_and_portal(tmp_path, caplog):
    store = load("tricky", tmp_path / "s.duckdb")
    app = create_app(Settings(db=store.path, portal="tricky.bitrix24.ru"), store, cache_size=0)
    with caplog.at_level(logging.INFO, logger="rop.access"), page_client(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/report.json?from=2026-11-01&to=2026-11-30").status_code == 200
        assert client.get("/nope").status_code == 404
    store.close()
    lines = [r for r in caplog.records if r.name == "rop.access"]
    assert [(r.path, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("/healthz", 200),
        ("/readyz", 200),
        ("/report.json", 200),
        ("/nope", 404),
    ]
    assert all(r.portal == "tricky.bitrix24.ru" for r in lines)  # type: ignore[attr-defined]
    assert all(r.ms >= 0 for r in lines)  # type: ignore[attr-defined]


def test_readyz_says_unavailable_when_the_schema_is_behind(tmp_path):
    store = load("tricky", tmp_path / "s.duckdb")
    store.execute("DELETE FROM schema_migrations WHERE version = 2")
    app = create_app(Settings(db=store.path), store, cache_size=0)
    with page_client(app) as client:
        got = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
    store.close()
    assert got.status_code == 503 and "[2]" in got.json()["problem"]


def test_rest_requests_are_kept_in_a_rotated_log_without_tokens(tmp_path):
    from rop.bitrix.client import RetryPolicy
    from rop.bitrix.sync import run_sync
    from rop.emulator import EmulatorConfig, serve_in_thread
    from rop.emulator import create_app as emulator_app

    rest_log = tmp_path / "logs" / "rest.log"
    configure("text", rest_log, rest_days=1)  # fewer than 3 days is raised to 3
    rest = logging.getLogger("rop.rest")
    handlers = [
        h for h in rest.handlers if isinstance(h, logging.handlers.TimedRotatingFileHandler)
    ]
    try:
        assert handlers and handlers[-1].backupCount == 3 and handlers[-1].when == "MIDNIGHT"
        app = emulator_app(PORTALS / "tricky", EmulatorConfig(rate_limit=False))
        with serve_in_thread(app, host="127.0.0.1", port=0) as base:
            p = app.state.portal
            hook = f"{base}/rest/{p.webhook_user_id}/{p.webhook_token}/"
            with load("tricky", tmp_path / "s.duckdb") as store:
                run_sync(store, hook, retry=RetryPolicy(attempts=2, base_delay=0.01))
        for h in handlers:
            h.flush()
    finally:
        for h in handlers:
            rest.removeHandler(h)
            h.close()
    lines = [json.loads(x) for x in rest_log.read_text(encoding="utf-8").splitlines()]
    assert len(lines) >= 3
    assert {"batch"} <= {x["method"] for x in lines}
    assert all(x["status"] == 200 and x["portal"] == base.split("://")[1] for x in lines)
    assert p.webhook_token not in rest_log.read_text(encoding="utf-8")


def test_rest_log_days_below_three_is_refused():
    from rop.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match="ROP_REST_LOG_DAYS"):
        load_settings(rest_log_days=2)


@pytest.mark.parametrize("engine", ENGINES)
def test_rop_portals_lists_each_portal(engine, tmp_path: Path, request):
    target = store_target(engine, tmp_path, request)
    load("tricky", target).close()
    out = CliRunner().invoke(cli, ["portals", "--db", target, "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["portal"] for r in rows] == ["tricky.bitrix24.ru"]
    assert rows[0]["state"] == "loaded" and rows[0]["deals"] == 10 and rows[0]["leads"] == 4
    table = CliRunner().invoke(cli, ["portals", "--db", target])
    assert "tricky.bitrix24.ru" in table.output and "loaded" in table.output
