"""Read a snapshot file (a JSON array of records) one record at a time.

A 1M-deal snapshot is several GB of JSON; ``json.load`` would hold every
record as Python objects at once (that is what kept the emulator at ~17 GB).
This reader decodes one element at a time from a sliding text buffer and also
hands back the element's own JSON text, so the store can keep it as is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 4 * 1024 * 1024
_SPACE = " \t\r\n"


class SnapshotFileError(ValueError):
    """The file is not a JSON array of objects; the message names the file."""


def iter_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(element text, decoded element) for each element of the array in ``path``."""
    decoder = json.JSONDecoder()
    with path.open("r", encoding="utf-8") as handle:
        reader = _Buffer(handle, path)
        if reader.next_char() != "[":
            if reader.next_char() == "":
                raise SnapshotFileError(f"{path}: not valid JSON (empty file)")
            raise SnapshotFileError(f"{path}: expected a JSON array of records")
        reader.pos += 1
        if reader.next_char() == "]":
            reader.pos += 1
            reader.expect_end()
            return
        while True:
            text, value = reader.decode(decoder)
            if not isinstance(value, dict):
                raise SnapshotFileError(f"{path}: expected a JSON array of records")
            yield text, value
            char = reader.next_char()
            reader.pos += 1
            if char == "]":
                reader.expect_end()
                return
            if char != ",":
                raise SnapshotFileError(f"{path}: not valid JSON (expected ',' or ']')")


class _Buffer:
    def __init__(self, handle: Any, path: Path) -> None:
        self.handle = handle
        self.path = path
        self.text = ""
        self.pos = 0
        self.eof = False

    def _more(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.handle.read(_CHUNK)
        except UnicodeDecodeError as exc:
            raise SnapshotFileError(f"{self.path}: not valid JSON ({exc})") from None
        if not chunk:
            self.eof = True
            return False
        self.text = self.text[self.pos :] + chunk
        self.pos = 0
        return True

    def next_char(self) -> str:
        """The next non-blank character (not consumed); "" at the end of the file."""
        while True:
            text, pos = self.text, self.pos
            while pos < len(text) and text[pos] in _SPACE:
                pos += 1
            self.pos = pos
            if pos < len(text):
                return text[pos]
            if not self._more():
                return ""

    def decode(self, decoder: json.JSONDecoder) -> tuple[str, Any]:
        self.next_char()
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                # Most likely the element runs past the buffer: read on, then retry.
                if self._more():
                    continue
                raise SnapshotFileError(f"{self.path}: not valid JSON ({exc})") from None
            if end == len(self.text) and not self.eof and not isinstance(value, dict | list):
                # A number or literal cut at the buffer's end: read on to be sure.
                if self._more():
                    continue
            text = self.text[self.pos : end]
            self.pos = end
            return text, value

    def expect_end(self) -> None:
        if self.next_char() != "":
            raise SnapshotFileError(f"{self.path}: not valid JSON (extra data after the array)")
