"""Bitrix24's error envelope: ``{"error": CODE, "error_description": TEXT}`` plus an HTTP status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A REST call failed the way Bitrix24 fails it (BITRIX24_API.md §1)."""

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status
        self.extra: dict[str, Any] = {}  # more keys some errors carry ("argument")

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description, **self.extra}


def method_not_found(method: str) -> ApiError:
    return ApiError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)


def no_auth() -> ApiError:
    # No token and no webhook code at all (error-codes.md, system errors).
    return ApiError("NO_AUTH_FOUND", "Wrong authorization data", 401)


def invalid_credentials() -> ApiError:
    # A webhook path whose user ID and code match no active webhook
    # (error-codes.md: INVALID_CREDENTIALS, 401).
    return ApiError("INVALID_CREDENTIALS", "Invalid request credentials", 401)


def invalid_arg(text: str) -> ApiError:
    return ApiError("INVALID_ARG_VALUE", text, 400)


def access_denied() -> ApiError:
    # CRM list/get methods answer an empty code for missing rights.
    return ApiError("", "Access denied.", 400)


def not_found() -> ApiError:
    return ApiError("", "Not found", 400)


def query_limit() -> ApiError:
    return ApiError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)


def operation_time_limit() -> ApiError:
    return ApiError("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit", 429)


def invalid_request(text: str) -> ApiError:
    return ApiError("INVALID_REQUEST", text, 400)
