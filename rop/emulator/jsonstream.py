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
            cut = end == len(self.text) and not isinstance(value, dict | list)
            # A number or literal cut at the buffer's end: read on to be sure.
            if cut and not self.eof and self._more():
                continue
            text = self.text[self.pos : end]
            self.pos = end
            return text, value

    def expect_end(self) -> None:
        if self.next_char() != "":
            raise SnapshotFileError(f"{self.path}: not valid JSON (extra data after the array)")


# A snapshot element's JSON value -> the text SQLite stores in an indexed column
# (INTEGER/REAL affinity turns it into a number); "bad" where the value is not
# one of Bitrix24's plain shapes, so the column is not trusted (tables.py).
_ISO = "'\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}[+-]\\d{2}:\\d{2}'"
_NULLISH = "@V IS NULL OR @V = 'null' OR @V = '\"\"'"
SQL_OF_TYPE = {
    "id": (
        "CASE WHEN regexp_full_match(@V, '\"-?[0-9]+\"') THEN substr(@V, 2, length(@V) - 2) "
        "WHEN regexp_full_match(@V, '-?[0-9]+') THEN @V ELSE 'bad' END"
    ),
    "ref": (
        f"CASE WHEN {_NULLISH} THEN NULL "
        "WHEN regexp_full_match(@V, '\"[0-9]+\"') THEN coalesce("
        "TRY_CAST(substr(@V, 2, length(@V) - 2) AS BIGINT)::VARCHAR, 'bad') "
        "WHEN regexp_full_match(@V, '-?[0-9]+') THEN coalesce(TRY_CAST(@V AS BIGINT)::VARCHAR, 'bad') "
        "ELSE 'bad' END"
    ),
    "moment": (
        f"CASE WHEN {_NULLISH} THEN NULL "
        f"WHEN regexp_full_match(substr(@V, 2, length(@V) - 2), {_ISO}) AND starts_with(@V, '\"') THEN "
        "coalesce(epoch(TRY_CAST(substr(@V, 2, length(@V) - 2) AS TIMESTAMPTZ))::VARCHAR, 'bad') "
        "ELSE 'bad' END"
    ),
    "flag": "CASE WHEN upper(json_extract_string(@V, '$')) = 'Y' THEN '1' ELSE '0' END",
}


def iter_rows(path: Path, columns: list[tuple[str, str]]) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of (id, JSON text, column values...) rows for the store, parsed by
    DuckDB (C++; Python's ``json`` on a multi-GB snapshot takes minutes).

    ``columns``: (field, type) with type a key of ``SQL_OF_TYPE``. Raises
    ``duckdb.Error`` on anything it cannot read (the caller then falls back to
    :func:`iter_records`, whose messages name the problem); an element that is
    not an object gets the id "bad".
    """
    import duckdb  # imported here: only a snapshot load needs it

    def value(field: str, kind: str) -> str:
        text = f"json_extract(json, '$.\"{field}\"')::VARCHAR"
        return "(" + SQL_OF_TYPE[kind].replace("@V", text) + ")"

    id_value = (
        "CASE WHEN json_type(json) <> 'OBJECT' THEN 'bad' ELSE ("
        + SQL_OF_TYPE["id"].replace(
            "@V",
            "coalesce(json_extract(json, '$.\"ID\"')::VARCHAR, "
            "json_extract(json, '$.\"id\"')::VARCHAR, 'x')",
        )
        + ") END"
    )
    select = ", ".join([id_value, "json::VARCHAR", *(value(f, k) for f, k in columns)])
    con = duckdb.connect()
    try:
        con.execute("SET threads = 2")
        con.execute("SET memory_limit = '512MB'")
        con.execute("SET preserve_insertion_order = true")
        cursor = con.execute(
            f"SELECT {select} FROM read_json_objects(?, format = 'array')", [str(path)]
        )
        while chunk := cursor.fetchmany(20_000):
            yield chunk
    finally:
        con.close()
