"""When ``rop serve`` holds the store, ask it to run the sync instead.

DuckDB lets one process write a file. The web server writes
``<db path>.server.json`` (``{"url": "http://127.0.0.1:8000", ...}``) while it
runs; ``rop sync`` finding the store locked posts ``{"full": bool, "portal":
host}`` to ``{url}/api/sync`` and shows the server's answer. A server that
syncs another portal than the webhook's refuses, naming both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from rop.store.holder import LOCAL_TOKEN_HEADER, read_holder, server_file

# The server runs the whole sync before it answers; a big first copy takes long.
FORWARD_TIMEOUT_SECONDS = 6 * 3600.0


class ForwardError(RuntimeError):
    """No server to forward to, or it refused; the message says which."""


def is_lock_error(message: str) -> bool:
    text = message.lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def forward_sync(db_path: str | Path, *, full: bool, portal: str | None = None) -> dict[str, Any]:
    """POST the sync to the server holding ``db_path``; returns its JSON answer.

    ``portal`` is the portal the caller meant to sync (its webhook's host):
    a server that syncs another one refuses instead of syncing its own.
    """
    path = server_file(db_path)
    try:
        holder = read_holder(db_path)
    except ValueError as exc:
        raise ForwardError(str(exc)) from None
    if holder is None:
        raise ForwardError(
            f"the store {db_path} is locked by another process and no server file "
            f"{path} says which: stop that process, or run the sync from `rop serve`"
        )
    url = holder.url
    body: dict[str, Any] = {"full": full}
    if portal:
        body["portal"] = portal
    headers = {LOCAL_TOKEN_HEADER: holder.token} if holder.token else {}
    try:
        response = httpx.post(
            f"{url}/api/sync",
            params={"lang": "en"},  # refusals in the CLI's language
            json=body,
            headers=headers,
            timeout=httpx.Timeout(FORWARD_TIMEOUT_SECONDS, connect=5.0),
        )
    except httpx.HTTPError as exc:
        raise ForwardError(
            f"the store is locked and the server at {url} did not answer: {exc}"
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = {"message": response.text[:200]}
    if response.status_code >= 400:
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict) and response.status_code in (400, 409):
            # The server's own refusal (rop.web.errors): its message says it all.
            message = str(error.get("message"))
            message = message[:1].lower() + message[1:]  # the page capitalises it
            raise ForwardError(f"the server at {url} refused the sync: {message}")
        detail = (
            answer.get("message") or answer.get("error") or answer
            if isinstance(answer, dict)
            else answer
        )
        raise ForwardError(f"the server at {url} refused the sync: {detail}")
    return answer if isinstance(answer, dict) else {"answer": answer}
