"""Settings come from ROP_ variables; a bad value names the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from rop.config import SettingsError, load_settings


def test_env_and_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("ROP_DB", str(tmp_path / "x.duckdb"))
    monkeypatch.setenv("ROP_RATE_PER_SECOND", "5")
    settings = load_settings(port=9000, webhook=None)
    assert settings.db == Path(tmp_path / "x.duckdb")
    assert settings.rate_per_second == 5.0
    assert settings.port == 9000
    assert settings.webhook is None


def test_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("ROP_PORT", "70000")
    with pytest.raises(SettingsError, match="ROP_PORT"):
        load_settings()


def test_default_db_in_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("ROP_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert load_settings().db == tmp_path / "rop-report" / "rop.duckdb"


def test_an_empty_variable_means_unset(monkeypatch, tmp_path):
    # `ROP_DB=` must not become Path("") (the current folder).
    monkeypatch.setenv("ROP_DB", "")
    monkeypatch.setenv("ROP_WEBHOOK", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = load_settings()
    assert settings.db == tmp_path / "rop-report" / "rop.duckdb"
    assert settings.webhook is None


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "Europe/"])
def test_an_unknown_time_zone_is_named(monkeypatch, zone):
    monkeypatch.setenv("ROP_TIMEZONE", zone)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        f"bad setting ROP_TIMEZONE: unknown time zone {zone!r} (an IANA name, e.g. Europe/Moscow)"
    )


def test_a_known_time_zone_passes(monkeypatch):
    monkeypatch.setenv("ROP_TIMEZONE", "Asia/Yekaterinburg")
    assert load_settings().timezone == "Asia/Yekaterinburg"
