"""When ``rop serve`` holds the store, ask it to run the sync instead.

DuckDB lets one process write a file. The web server writes
``<db path>.server.json`` (``{"url": "http://127.0.0.1:8000"}``) while it runs;
``rop sync`` finding the store locked posts ``{"full": bool}`` to
``{url}/api/sync`` with the file's ``token`` and shows the server's answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from rop.store.holder import server_file

# The server runs the whole sync before it answers; a big first copy takes long.
FORWARD_TIMEOUT_SECONDS = 6 * 3600.0


class ForwardError(RuntimeError):
    """No server to forward to, or it refused; the message says which."""


def is_lock_error(message: str) -> bool:
    text = message.lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def forward_sync(db_path: str | Path, *, full: bool) -> dict[str, Any]:
    """POST the sync to the server holding ``db_path``; returns its JSON answer."""
    path = server_file(db_path)
    try:
        announced = json.loads(path.read_text(encoding="utf-8"))
        url = str(announced["url"]).rstrip("/")
        # The server takes a sync only from its own pages or the holder of this
        # token (its cross-site guard); the file is readable by its owner only.
        token = str(announced.get("token") or "")
    except FileNotFoundError:
        raise ForwardError(
            f"the store {db_path} is locked by another process and no server file "
            f"{path} says which: stop that process, or run the sync from `rop serve`"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ForwardError(f'{path}: not a server file (expected {{"url": ...}})') from None
    except PermissionError:
        raise ForwardError(
            f"the store is locked by a server, but its file {path} is not readable: "
            "run the sync as the user who runs `rop serve`"
        ) from None
    try:
        response = httpx.post(
            f"{url}/api/sync",
            json={"full": full},
            headers={"x-rop-token": token},
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
        detail = (
            answer.get("message") or answer.get("error") or answer
            if isinstance(answer, dict)
            else answer
        )
        raise ForwardError(f"the server at {url} refused the sync: {detail}")
    return answer if isinstance(answer, dict) else {"answer": answer}
