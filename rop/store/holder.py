"""Who holds the store: DuckDB lets one process write a file, so a running
`rop serve` announces itself beside the store, and other commands (a CLI
sync, a report) ask that server instead of failing on the lock.

The file also carries a random token, readable only by the file's owner
(mode 0600): a command that can read it could open the store itself, so the
server lets a request bearing it read as the command line does (any viewer,
or none) and see the rights.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# The header that carries the token from <db>.server.json.
LOCAL_TOKEN_HEADER = "x-rop-local-token"


@dataclass(frozen=True)
class Holder:
    """A running server that holds a store: its base URL and local token."""

    url: str
    token: str | None = None
    pid: int | None = None


def server_file(db_path: str | Path) -> Path:
    """Where a running server announces itself (``{"url", "pid", "token"}``), next to the store."""
    return Path(f"{db_path}.server.json")


def announce(db_path: str | Path, url: str) -> tuple[Path, str]:
    """Write the server file (owner-only) with a fresh token; returns its path and the token."""
    target = server_file(db_path)
    token = secrets.token_urlsafe(32)
    text = json.dumps({"url": url, "pid": os.getpid(), "token": token})
    # Created 0600 from the start: the token must never be readable by others.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(target, 0o600)  # an older file of another mode is rewritten in place
    return target, token


def read_holder(db_path: str | Path) -> Holder | None:
    """The server announced beside ``db_path``; None when there is no (readable) file.

    Raises ValueError when the file is there but is not a server file.
    """
    path = server_file(db_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        data = json.loads(text)
        url = str(data["url"]).rstrip("/")
    except (ValueError, KeyError, TypeError):
        raise ValueError(f'{path}: not a server file (expected {{"url": ...}})') from None
    token = data.get("token")
    pid = data.get("pid")
    return Holder(
        url,
        token if isinstance(token, str) and token else None,
        pid if isinstance(pid, int) else None,
    )
