"""Application mode end to end over HTTP: install, open as a viewer, tokens at rest."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.app_portal import CLIENT_SECRET, app_rig

pytestmark = pytest.mark.timeout(180)


def test_install_binds_copies_and_opens_the_report(tmp_path):
    with app_rig(tmp_path) as rig:
        state = rig.state()
        placements = {
            p["placement"] if "placement" in p else p.get("PLACEMENT") for p in state["placements"]
        }
        assert {"LEFT_MENU", "CRM_ANALYTICS_MENU"} <= placements, state["placements"]
        events = {b.get("event") or b.get("EVENT") for b in state["bindings"]}
        assert {"ONCRMDEALUPDATE", "ONAPPUNINSTALL", "ONVOXIMPLANTCALLEND"} <= {
            str(e).upper() for e in events
        }
        url = rig.open_as(1)
        assert "vt=" in url
        page = httpx.get(url, timeout=60)
        assert page.status_code == 200, page.text[:500]
        assert "b24jssdk" in page.text
        # Every link the page builds carries the viewer token.
        assert 'name="vt"' in page.text
        # The portal may frame the report; nobody else may.
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors" in csp and rig.emulator in csp, csp


def test_secrets_are_not_in_the_store_file_nor_in_logs(tmp_path, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    with app_rig(tmp_path) as rig:
        frame_token = rig.tokens(1)["access_token"]
        rig.post_frame("/app", 1, AUTH_ID=frame_token)
        rig.app.state.pool.close()
        rig.app.state.store.conn.execute("CHECKPOINT")
        raw = Path(rig.db).read_bytes()
        issued = rig.app.state.appmode.installs(rig.app.state.store).tokens(
            rig.state()["member_id"]
        )
        assert issued is not None
        assert issued.access_token.encode() not in raw
        assert issued.refresh_token and issued.refresh_token.encode() not in raw
        assert rig.state()["application_token"].encode() not in raw
        assert CLIENT_SECRET.encode() not in raw
        logged = caplog.text
        assert logged  # the server did log (httpx, uvicorn, ours)
        for secret in (
            issued.access_token,
            issued.refresh_token,
            frame_token,
            CLIENT_SECRET,
            rig.state()["application_token"],
        ):
            assert secret not in logged
