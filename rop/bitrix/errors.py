"""Errors from talking to a Bitrix24 portal, each naming the method and the cause."""

from __future__ import annotations

# What to do about the errors a person can fix in Bitrix24 (error-codes.md).
HINTS = {
    "insufficient_scope": (
        "The webhook lacks a permission this method needs: edit the webhook in Bitrix24 "
        "and tick CRM (crm), Users (user), Company structure (department) and "
        "Telephony (telephony)"
    ),
    "INVALID_CREDENTIALS": (
        "No active webhook has this user ID and code: copy the webhook URL again from "
        "Bitrix24 (Developer resources -> Other -> Incoming webhook)"
    ),
}


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
        hint = HINTS.get(code)
        tail = f". {hint}" if hint else ""
        super().__init__(f"{method}: {label}: {description} ({where}){tail}")


class AuthExpired(BitrixError):
    """The OAuth access token expired (401 expired_token): refresh it and repeat."""
