"""The portal's time zone: named by users when it fits the portal's dates, else read off them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rop.bitrix.sync import run_sync
from rop.bitrix.timezone import guess_timezone, portal_timezone
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.store.db import open_store
from tests.sync_portal import TOKEN, make_portal

WINTER_MSK = "2026-01-15T10:00:00+03:00"
SUMMER_MSK = "2026-07-15T10:00:00+03:00"
WINTER_BERLIN = "2026-01-15T10:00:00+01:00"
SUMMER_BERLIN = "2026-07-15T10:00:00+02:00"


def test_a_named_zone_wins_only_if_it_gives_the_portals_offsets() -> None:
    assert guess_timezone(["Europe/Moscow"], [WINTER_MSK, SUMMER_MSK]) == "Europe/Moscow"
    # The user lives in Berlin but the portal's clock says +03:00: not the portal's zone.
    assert guess_timezone(["Europe/Berlin"], [WINTER_MSK]) == "Etc/GMT-3"
    # Later candidates are tried in turn; junk names are skipped.
    assert guess_timezone(["", "Mars/Olympus", "Europe/Berlin", "Europe/Minsk"], [WINTER_MSK]) == (
        "Europe/Minsk"
    )
    # A single name (the old call shape) still works.
    assert guess_timezone("Europe/Moscow", [WINTER_MSK]) == "Europe/Moscow"


def test_without_names_the_offset_is_kept_unless_dates_show_daylight_saving() -> None:
    assert guess_timezone([], [WINTER_MSK, SUMMER_MSK]) == "Etc/GMT-3"
    assert guess_timezone(None, ["2026-01-15T10:00:00-05:00"]) == "Etc/GMT+5"
    # +01:00 in winter and +02:00 in summer: a zone with Central European rules.
    zone = guess_timezone([], [WINTER_BERLIN, SUMMER_BERLIN])
    assert zone == "Europe/Berlin"
    # No Etc/ zone has half hours: a region zone with that offset.
    india = guess_timezone([], ["2026-01-15T10:00:00+05:30"])
    assert ZoneInfo(india).utcoffset(datetime(2026, 1, 15)) == timedelta(hours=5, minutes=30)


def test_nothing_to_go_on_is_utc() -> None:
    assert guess_timezone([], []) == "UTC"
    assert guess_timezone([], [None, "", "24.08.2023 13:19:39"]) == "UTC"
    assert guess_timezone(["Europe/Moscow"], []) == "Europe/Moscow"


def test_portal_timezone_reads_the_webhook_user_then_everyone() -> None:
    users: list[dict[str, Any]] = [
        {"ID": "1", "ACTIVE": True, "TIME_ZONE": "", "DATE_REGISTER": SUMMER_BERLIN},
        {"ID": "2", "ACTIVE": True, "TIME_ZONE": "Europe/Paris"},
        {"ID": "3", "ACTIVE": True, "TIME_ZONE": "Europe/Berlin"},
        {"ID": "4", "ACTIVE": True, "TIME_ZONE": "Europe/Berlin"},
        {"ID": "5", "ACTIVE": False, "TIME_ZONE": "Europe/Vienna"},
        {"ID": "6", "ACTIVE": False, "TIME_ZONE": "Europe/Vienna"},
        {"ID": "7", "ACTIVE": False, "TIME_ZONE": "Europe/Vienna"},
    ]
    # Webhook user without a zone: the most common zone of active users.
    assert portal_timezone({"ID": "1"}, users, WINTER_BERLIN) == "Europe/Berlin"
    # user.current may omit TIME_ZONE: the user's own row in user.get counts.
    users[0]["TIME_ZONE"] = "Europe/Rome"
    assert portal_timezone({"ID": "1"}, users, WINTER_BERLIN) == "Europe/Rome"
    # user.current's own value comes first.
    assert portal_timezone({"ID": "1", "TIME_ZONE": "Europe/Madrid"}, users, WINTER_BERLIN) == (
        "Europe/Madrid"
    )
    # Nobody's zone gives the portal's offsets: read them off the dates.
    assert portal_timezone({"ID": "1"}, users, WINTER_MSK) == "Etc/GMT-3"


def _portal(tmp: Path, zone: str, users: dict[str, dict[str, Any]]) -> Path:
    folder = make_portal(tmp, deals=5)
    info = json.loads((folder / "portal.json").read_text(encoding="utf-8"))
    info["timezone"] = zone
    (folder / "portal.json").write_text(json.dumps(info), encoding="utf-8")
    records = json.loads((folder / "user.get.json").read_text(encoding="utf-8"))
    for record in records:
        record.update(users.get(record["ID"], {}))
    (folder / "user.get.json").write_text(json.dumps(records), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("zone", "users", "expected"),
    [
        # Moscow portal, the webhook user chose Moscow: the name, not Etc/GMT-3.
        ("Europe/Moscow", {"1": {"TIME_ZONE": "Europe/Moscow"}}, "Europe/Moscow"),
        # Berlin portal, nobody chose a zone, but users' dates span both seasons.
        (
            "Europe/Berlin",
            {"2": {"DATE_REGISTER": SUMMER_BERLIN}, "3": {"LAST_LOGIN": WINTER_BERLIN}},
            "Europe/Berlin",
        ),
        # Nothing but the clock: the fixed offset, as before.
        ("Europe/Moscow", {}, "Etc/GMT-3"),
    ],
)
def test_sync_stores_the_guess(
    tmp_path: Path, zone: str, users: dict[str, dict[str, Any]], expected: str
) -> None:
    app = create_app(_portal(tmp_path / "portal", zone, users), EmulatorConfig(rate_limit=False))
    with serve_in_thread(app) as base, open_store(tmp_path / "rop.duckdb") as store:
        result = run_sync(store, f"{base}/rest/1/{TOKEN}/")
        row = store.query_dicts("SELECT timezone FROM portals WHERE portal = ?", [result.portal])
    assert row == [{"timezone": expected}]


def test_a_sync_keeps_the_named_zone_the_store_has(tmp_path: Path) -> None:
    """Nothing but the clock to go on, yet the store already names the zone
    (``rop sync --timezone Europe/Moscow`` once): a later sync (the page's
    button passes no zone) must not replace it with Etc/GMT-3 (issue 9)."""
    app = create_app(
        _portal(tmp_path / "portal", "Europe/Moscow", {}), EmulatorConfig(rate_limit=False)
    )
    with serve_in_thread(app) as base, open_store(tmp_path / "rop.duckdb") as store:
        first = run_sync(store, f"{base}/rest/1/{TOKEN}/", timezone="Europe/Moscow")
        run_sync(store, f"{base}/rest/1/{TOKEN}/")
        kept = store.scalar("SELECT timezone FROM portals WHERE portal = ?", [first.portal])
        # A named zone that no longer fits the clock is not kept.
        store.execute(
            "UPDATE portals SET timezone = 'Europe/Berlin' WHERE portal = ?", [first.portal]
        )
        run_sync(store, f"{base}/rest/1/{TOKEN}/")
        refit = store.scalar("SELECT timezone FROM portals WHERE portal = ?", [first.portal])
    assert kept == "Europe/Moscow"
    assert refit == "Etc/GMT-3"
