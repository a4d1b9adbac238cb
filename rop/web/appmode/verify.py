"""Is this request really from the portal it names? (BITRIX24_APP.md §1.5)

A frame's AUTH_ID is shown to the authorization server (``app.info``), and
only to one we trust (``ROP_APP_AUTH_SERVERS``): a forged request could name
its own. The answer must name our client_id and the same member_id and
domain the request claims. The portal's application_token, saved at
install, is compared too.
"""

from __future__ import annotations

from rop.bitrix.app_platform import AppInfo, Viewer, app_info, profile
from rop.bitrix.client import BitrixClient, RetryPolicy
from rop.bitrix.errors import BitrixError
from rop.bitrix.installs import Install, Installs
from rop.web.appmode.payload import Frame
from rop.web.appmode.state import AppMode


class Refused(Exception):
    """A request that changes nothing: status (401/403) and a reason key (refusal.py)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def verify_token(
    mode: AppMode, server_endpoint: str, auth: str, member_id: str, domain: str
) -> AppInfo:
    if not mode.trusted_auth_server(server_endpoint):
        raise Refused(403, "untrusted_auth_server")
    try:
        info = await app_info(server_endpoint, auth)
    except BitrixError as error:
        if error.code == "expired_token":
            raise Refused(401, "expired") from None
        if error.code in ("CONNECT", ""):
            raise Refused(502, "auth_server_down") from None
        raise Refused(401, "auth_refused") from None
    if info.client_id != mode.client_id:
        raise Refused(403, "wrong_app")
    if info.member_id != member_id or info.domain.lower() != domain.lower():
        raise Refused(403, "wrong_portal")
    return info


async def verify_frame(mode: AppMode, frame: Frame) -> AppInfo:
    return await verify_token(
        mode, frame.server_endpoint, frame.auth_id, frame.member_id, frame.domain
    )


def check_application_token(installs: Installs, install: Install, given: str) -> None:
    """The frame's APPLICATION_TOKEN must be the portal's, once we hold one."""
    if installs.token_matches(install.member_id, given):
        return
    if _holds_token(installs, install):
        raise Refused(403, "wrong_token")
    if given:
        # None stored yet (an install page without it): the first verified
        # frame's token, already vouched for by app.info, becomes the portal's.
        installs.set_application_token(install.member_id, given)


def _holds_token(installs: Installs, install: Install) -> bool:
    return bool(
        installs.store.scalar(
            "SELECT application_token IS NOT NULL FROM app_portals WHERE member_id = ?",
            [install.member_id],
        )
    )


async def viewer_of(client_endpoint: str, auth: str) -> Viewer:
    """``profile`` with the viewer's own frame token, on the portal we recorded."""

    async def same(_refresh: bool) -> str:
        return auth

    client = BitrixClient(client_endpoint, token_provider=same, retry=RetryPolicy(attempts=2))
    try:
        return await profile(client)
    except BitrixError as error:
        if error.code == "expired_token":
            raise Refused(401, "expired") from None
        raise Refused(401, "auth_refused") from None
    finally:
        await client.aclose()
