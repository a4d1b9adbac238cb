"""Application-mode settings and the webhook mode beside it."""

from __future__ import annotations

from click.testing import CliRunner

from rop.cli import cli
from rop.config import load_settings
from rop.web import create_app
from tests.test_web_support import tiny_store
from tests.web_client import page_client

APP = {
    "app_client_id": "local.a.b",
    "app_client_secret": "s3cret",
    "app_public_url": "https://rop.example.com",
}


def test_half_an_application_is_refused_by_name(tmp_path):
    result = CliRunner().invoke(
        cli, ["serve", "--db", str(tmp_path / "x.duckdb")], env={"ROP_APP_CLIENT_ID": "local.a.b"}
    )
    assert result.exit_code == 2
    assert "ROP_APP_CLIENT_SECRET" in result.output and "ROP_APP_PUBLIC_URL" in result.output


def test_webhook_mode_keeps_working_beside_the_app(tmp_path):
    store = tiny_store(tmp_path)
    portal = store.scalar("SELECT portal FROM portals")
    with_hook = load_settings(
        db=str(tmp_path / "t.duckdb"), webhook=f"https://{portal}/rest/1/abc/", **APP
    )
    with page_client(create_app(with_hook, store=store, cache_size=0)) as client:
        assert client.get("/report.json").status_code == 200
        assert client.get("/report.json?vt=forged").status_code == 401
    without = load_settings(db=str(tmp_path / "t.duckdb"), **APP)
    with page_client(create_app(without, store=store, cache_size=0)) as client:
        reply = client.get("/report.json")
        assert reply.status_code == 401
        assert "Битрикс24" in reply.json()["message"]
        assert client.get("/static/app.css").status_code == 200
    store.close()
