"""Errors from talking to a Bitrix24 portal, each naming the method and the cause."""

from __future__ import annotations


class BitrixError(RuntimeError):
    """Bitrix24 refused a call, or no usable answer came back.

    ``code`` and ``description`` are Bitrix24's own ``error`` and
    ``error_description`` when the portal sent them; ``status`` is the HTTP
    status (0 when no HTTP answer arrived at all).
    """

    def __init__(self, method: str, code: str, description: str, status: int = 0) -> None:
        self.method = method
        self.code = code
        self.description = description
        self.status = status
        where = f"HTTP {status}" if status else "no answer"
        label = code or "error"
        super().__init__(f"{method}: {label}: {description} ({where})")


class AuthExpired(BitrixError):
    """The OAuth access token expired (401 expired_token): refresh it and repeat."""
