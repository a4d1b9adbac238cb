"""The report over a store filled by the real sync (emulator over loopback HTTP)
equals the report over the same portal loaded from its snapshot folder."""

from __future__ import annotations

from datetime import date

from rop.bitrix.client import RetryPolicy
from rop.bitrix.sync import run_sync
from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from rop.report.build import build_report, drill
from rop.report.filter import ReportFilter
from rop.store import open_store
from tests.fixtures.portals import PORTALS, load

NOV = ReportFilter(
    date(2026, 11, 1), date(2026, 11, 30), key_stages=("C1:PREP",), today=date(2026, 11, 27)
)


def test_synced_store_reports_like_the_snapshot(tmp_path):
    app = create_app(PORTALS / "tricky", EmulatorConfig(rate_limit=False))
    with serve_in_thread(app, host="127.0.0.1", port=0) as base:
        portal = app.state.portal
        hook = f"{base}/rest/{portal.webhook_user_id}/{portal.webhook_token}/"
        with open_store(tmp_path / "synced.duckdb") as synced:
            run_sync(synced, hook, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
            got = build_report(synced, ReportFilter(**{**NOV.__dict__, "viewer": 3}))
            via_sync = build_report(synced, NOV)
            won = drill(synced, NOV, "deals_won", user_id=4)
    expected = build_report(load("tricky"), NOV)
    # The sync names the zone from the offset the portal's dates carry (no DST in Moscow).
    assert via_sync["period"] == {**expected["period"], "timezone": "Etc/GMT-3"}
    assert via_sync["currency"] == expected["currency"] == "RUB"
    assert via_sync["total"] == expected["total"]
    assert via_sync["departments"] == expected["departments"]
    strip = ("profile_url",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in via_sync["rows"]] == [
        {k: v for k, v in r.items() if k not in strip} for r in expected["rows"]
    ]
    assert via_sync["previous"]["total"] == expected["previous"]["total"]
    assert [r["id"] for r in won["records"]] == [1, 2, 3]
    assert won["records"][0]["url"].endswith("/crm/deal/details/1/")
    # Rights work on synced data too: the head of one sub-department (user 3).
    assert {r["user_id"] for r in got["rows"]} == {4, 7}
    assert via_sync["data_as_of"] is not None
