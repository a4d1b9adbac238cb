"""Who holds the store: DuckDB lets one process write a file, so a running
`rop serve` announces itself beside the store, and other commands (a CLI
sync, a report) ask that server instead of failing on the lock."""

from __future__ import annotations

from pathlib import Path


def server_file(db_path: str | Path) -> Path:
    """Where a running server announces itself (``{"url", "pid"}``), next to the store file."""
    return Path(f"{db_path}.server.json")
