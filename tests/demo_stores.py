"""Generated demo portals, and DuckDB stores loaded from them, built once per test process.

Several modules test the same demo portal (same seed and size): generating it
and loading it into a store took ~5 s a time. ``demo_store_copy`` hands each
caller its own copy of the loaded store file (a file copy: the caller may
write to it) and the portal's folder, which nobody writes to (the emulator
reads it into memory).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

_BUILT: dict[tuple[int, int, int], tuple[Path, Path, str]] = {}


def _built(factory: pytest.TempPathFactory, seed: int, deals: int, months: int):
    key = (seed, deals, months)
    if key not in _BUILT:
        from rop.bitrix.snapshot import load_snapshot
        from rop.demo.generator import generate
        from rop.store import open_store

        root = factory.mktemp(f"demo-{seed}-{deals}-{months}")
        folder = root / "portal"
        generate(folder, seed=seed, deals=deals, months=months)
        with open_store(root / "loaded.duckdb") as store:
            portal = load_snapshot(store, folder)
        _BUILT[key] = (folder, root / "loaded.duckdb", portal)
    return _BUILT[key]


def demo_store_copy(
    factory: pytest.TempPathFactory, dest: Path, seed: int, deals: int, months: int = 12
) -> tuple[Path, str]:
    """``dest``: a copy of a store holding the demo portal; returns the portal's
    (read-only) snapshot folder and its key."""
    folder, loaded, portal = _built(factory, seed, deals, months)
    shutil.copyfile(loaded, dest)
    return folder, portal
