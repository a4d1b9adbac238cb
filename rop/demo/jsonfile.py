"""Write a JSON array one record at a time, so a million records never sit in memory.

Each record goes on its own line (readable, diffable). The file is written
under a ``.part`` name and renamed when complete, so a crash never leaves a
truncated file that looks finished.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

# Compact separators like Bitrix24's replies; UTF-8 text rather than \u escapes
# keeps Cyrillic files a third of the size.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
encode = _ENCODER.encode


class ArrayWriter:
    """An open JSON array file: ``add`` records, then ``close`` to finish it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._part = path.with_name(path.name + ".part")
        self._file: TextIO = open(self._part, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._file.write("[")
        self._separator = "\n"
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        self.add_raw(encode(record))

    def add_raw(self, text: str) -> None:
        """Add a record already encoded as JSON (for hot paths that format it themselves)."""
        self._file.write(self._separator)
        self._file.write(text)
        self._separator = ",\n"
        self.count += 1

    def close(self) -> None:
        self._file.write("\n]\n")
        self._file.close()
        os.replace(self._part, self.path)

    def abort(self) -> None:
        self._file.close()
        self._part.unlink(missing_ok=True)


def write_json(path: Path, data: Any) -> None:
    """A small file (directories, portal.json) in one go, pretty-printed."""
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    path.write_text(text, encoding="utf-8")
