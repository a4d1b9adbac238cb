"""The viewer's identity inside the portal's frame, as a short-lived signed token.

Chrome and Safari block third-party cookies in frames, so the identity cannot
ride in a cookie: every URL the page builds carries ``vt=<token>``
(rop/web/urls.py appends it), and fetches send the same value in the
``X-Rop-Viewer`` header. The token is signed (itsdangerous, HMAC-SHA1 with a
key derived from the settings) and time-stamped; it names the portal
(member_id) and the user, nothing secret, and is refused after
``ROP_APP_VIEWER_TOKEN_MINUTES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from rop.store.vault import derive_key

PARAM = "vt"
HEADER = "x-rop-viewer"


@dataclass(frozen=True)
class ViewerClaim:
    member_id: str
    user_id: int
    admin: bool


class ViewerTokenError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "expired" | "invalid"


class ViewerTokens:
    def __init__(self, secrets: Sequence[str], max_age_seconds: int) -> None:
        keys = [derive_key(s.strip(), "rop-viewer").hex() for s in secrets if s.strip()]
        # itsdangerous signs with the last key and accepts any: newest last.
        self._serializer = URLSafeTimedSerializer(list(reversed(keys)), salt="rop-viewer")
        self.max_age = max_age_seconds

    def issue(self, claim: ViewerClaim) -> str:
        return str(
            self._serializer.dumps([claim.member_id, claim.user_id, 1 if claim.admin else 0])
        )

    def read(self, token: str) -> ViewerClaim:
        try:
            member_id, user_id, admin = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired:
            raise ViewerTokenError("expired") from None
        except (BadSignature, ValueError, TypeError):
            raise ViewerTokenError("invalid") from None
        if not isinstance(member_id, str) or not isinstance(user_id, int):
            raise ViewerTokenError("invalid")
        return ViewerClaim(member_id, user_id, bool(admin))
