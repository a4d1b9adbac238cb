"""Where the emulator keeps a portal's records: an embedded SQLite database.

Each record kind is one table: ``id`` (the record's ID, the rowid, so ID
ranges and keyset pages are B-tree walks), ``body`` (the record's JSON text,
exactly as the snapshot or a change gave it) and a few extracted columns with
indexes (``INDEXED``): the responsible user, the owner of a history row, the
dates incremental syncs filter on, ``OPENED``. The list engine (listing.py)
answers from those indexes what they can answer exactly and decodes bodies
only for the rest, so a 1M-deal portal fits in well under 3 GB (the bodies
live in a temporary file; only SQLite's page cache is in memory).

The database is SQLite's private temporary one (``connect("")``): on disk,
removed by SQLite when the connection closes or the process ends.
A new record kind needs nothing here; a line in ``INDEXED`` makes its
responsible-user and date filters indexed.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from rop.emulator.fields import BASE_FIELDS
from rop.emulator.filters import Condition, moment
from rop.emulator.jsonstream import iter_records, iter_rows

Record = dict[str, Any]

# Column types: REF an integer reference (a user or record ID), MOMENT a date
# as unix seconds, FLAG a Y/N field as 1/0.
REF, MOMENT, FLAG = "ref", "moment", "flag"
_SQL_TYPE = {REF: "INTEGER", MOMENT: "REAL", FLAG: "INTEGER"}
_CRM = {"ASSIGNED_BY_ID": REF, "DATE_MODIFY": MOMENT, "DATE_CREATE": MOMENT, "OPENED": FLAG}
_HISTORY = {"OWNER_ID": REF, "CREATED_TIME": MOMENT}
INDEXED: dict[str, dict[str, str]] = {
    "deal": _CRM,
    "lead": _CRM,
    "company": _CRM,
    "contact": _CRM,
    "deal_history": _HISTORY,
    "lead_history": _HISTORY,
    "call": {"PORTAL_USER_ID": REF, "CALL_START_DATE": MOMENT},
    # TYPE_ID: the sync lists calls only (TYPE_ID 2); unindexed, its counts decode
    # every activity (minutes at 1M under load).
    "activity": {
        "RESPONSIBLE_ID": REF,
        "OWNER_TYPE_ID": REF,
        "OWNER_ID": REF,
        "TYPE_ID": REF,
        "LAST_UPDATED": MOMENT,
        "CREATED": MOMENT,
    },
    "requisite": {"ENTITY_ID": REF, "DATE_MODIFY": MOMENT},
}

# How many records to look at when learning a kind's field names at load.
_FIELD_SAMPLE = 2000
# SQLite's page cache per portal (KiB, negative = size): the working set of
# the indexes plus recent pages; the bodies stay on disk.
_CACHE_KIB = 262_144
_BATCH = 5000
_INT_RE = re.compile(r"^\s*-?\d+\s*$")
_OFFSET_RE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


class RecordIdError(ValueError):
    """A record without a numeric ID."""


def record_id(record: Record) -> int:
    value = record.get("ID", record.get("id"))
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RecordIdError(f"record without a numeric ID: {str(record)[:120]}") from None


class Database:
    """One SQLite connection shared by a portal's tables, behind one lock."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self.lock = threading.RLock()
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            f"cache_size=-{_CACHE_KIB}",
            "temp_store=FILE",
        ):
            self.conn.execute(f"PRAGMA {pragma}")

    def close(self) -> None:
        self.conn.close()


class _Column:
    """An extracted, indexed column and whether it still mirrors the field exactly."""

    __slots__ = ("field", "kind", "name", "exact", "naive")

    def __init__(self, field: str, kind: str) -> None:
        self.field = field
        self.kind = kind
        self.name = f'"f_{field}"'
        # False once a value turns up that the column cannot mirror (a list, a
        # float ID, a date that does not parse): then filters on it walk bodies.
        self.exact = True
        # A date without an offset: its moment depends on the zone it is read in.
        self.naive = False

    def value(self, raw: Any, zone: ZoneInfo) -> Any:
        # Fast paths first (this runs for every record of a 10M-row load):
        # Bitrix24's own shapes, "123" and "2024-12-10T15:17:05+03:00".
        kind = self.kind
        if type(raw) is str:
            if kind == REF and raw.isascii() and raw.isdigit():
                return int(raw)
            if kind == MOMENT and len(raw) == 25 and raw[10] == "T" and raw[19] in "+-":
                try:
                    return datetime.fromisoformat(raw).timestamp()
                except ValueError:
                    pass
        if kind == FLAG:
            return 1 if str(raw or "").upper() == "Y" else 0
        if raw is None or raw == "":
            return None
        if kind == REF:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and _INT_RE.match(raw):
                return int(raw)
            self.exact = False
            return None
        when = moment(raw, zone)
        if when is None:
            self.exact = False
        elif not _OFFSET_RE.search(raw.strip()):
            self.naive = True
        return when


# The record's ID is the rowid: ``@ID`` and ``!ID`` lists are B-tree lookups.
_ID_COLUMN = _Column("ID", REF)
_ID_COLUMN.name = "id"


class Table:
    """Records of one kind in the portal's database, keyed and ordered by ID."""

    def __init__(
        self,
        kind: str,
        records: Iterable[Record] = (),
        *,
        db: Database | None = None,
        zone: ZoneInfo | None = None,
        texts: Iterable[tuple[str, Record]] | None = None,
        chunks: Iterable[list[tuple[Any, ...]]] | None = None,
    ) -> None:
        if not re.fullmatch(r"\w+", kind):
            raise ValueError(f"bad record kind {kind!r}")
        self.kind = kind
        self.db = db or Database()
        self.zone = zone or ZoneInfo("UTC")
        self.name = f'"t_{kind}"'
        self.columns = {f: _Column(f, t) for f, t in INDEXED.get(kind, {}).items()}
        self.fields: set[str] = set(BASE_FIELDS.get(kind, ()))
        self.version = 0  # bumped on every change (caches key on it)
        extra = "".join(f", {c.name}" for c in self.columns.values())
        typed = "".join(f", {c.name} {_SQL_TYPE[c.kind]}" for c in self.columns.values())
        self._insert = (
            f"INSERT OR REPLACE INTO {self.name} (id, body{extra}) "
            f"VALUES (?, ?{', ?' * len(self.columns)})"
        )
        with self.db.lock:
            self.db.conn.execute(f"DROP TABLE IF EXISTS {self.name}")
            self.db.conn.execute(
                f"CREATE TABLE {self.name} (id INTEGER PRIMARY KEY, body TEXT NOT NULL{typed})"
            )
            if chunks is not None:
                self._load_chunks(chunks)
            else:
                source = texts if texts is not None else ((_dump(r), r) for r in records)
                self._load(source)
            for column in self.columns.values():
                self.db.conn.execute(
                    f'CREATE INDEX "i_{kind}_{column.field}" ON {self.name} ({column.name})'
                )
            if chunks is not None:
                self._check_columns()
            self.count = self._scalar(f"SELECT count(*) FROM {self.name}")
        self.rows = Rows(self)

    @classmethod
    def from_file(cls, kind: str, path: Path, *, db: Database, zone: ZoneInfo) -> Table:
        """A table loaded from a snapshot file (CONTRACT.md §1); a missing file is empty.

        DuckDB's reader first (fast); if it refuses the file, Python's reader,
        which either reads it or raises a SnapshotFileError naming the problem.
        """
        if not path.exists():
            return cls(kind, db=db, zone=zone)
        columns = list(INDEXED.get(kind, {}).items())
        try:
            return cls(kind, db=db, zone=zone, chunks=iter_rows(path, columns))
        except (duckdb.Error, sqlite3.Error):
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            return cls(kind, db=db, zone=zone, texts=iter_records(path))

    def _load(self, source: Iterable[tuple[str, Record]]) -> None:
        seen = 0
        batch: list[tuple[Any, ...]] = []
        conn = self.db.conn
        conn.execute("BEGIN")
        for text, record in source:
            if seen < _FIELD_SAMPLE:
                # The full record: a fast source gives only the indexed fields.
                self.fields.update(json.loads(text))
                seen += 1
            batch.append(self._row(record_id(record), text, record))
            if len(batch) >= _BATCH:
                conn.executemany(self._insert, batch)
                batch.clear()
        if batch:
            conn.executemany(self._insert, batch)
        conn.execute("COMMIT")

    def _load_chunks(self, chunks: Iterable[list[tuple[Any, ...]]]) -> None:
        """Rows already shaped by jsonstream.iter_rows: (id, text, column values)."""
        conn = self.db.conn
        conn.execute("BEGIN")
        for chunk in chunks:
            conn.executemany(self._insert, chunk)
        conn.execute("COMMIT")
        sample = f"SELECT body FROM {self.name} ORDER BY id LIMIT {_FIELD_SAMPLE}"
        for (body,) in conn.execute(sample).fetchall():
            self.fields.update(json.loads(body))

    def _check_columns(self) -> None:
        """A column that got "bad" (a value not in Bitrix24's plain shapes) is not
        trusted: filters on it check decoded records instead."""
        conn = self.db.conn
        for column in self.columns.values():
            where = f"{column.name} = 'bad'"
            if conn.execute(f"SELECT 1 FROM {self.name} WHERE {where} LIMIT 1").fetchone():
                column.exact = False
                conn.execute(f"UPDATE {self.name} SET {column.name} = NULL WHERE {where}")

    def _row(self, rid: int, text: str, record: Record) -> tuple[Any, ...]:
        zone = self.zone
        return (rid, text, *(c.value(record.get(c.field), zone) for c in self.columns.values()))

    def _scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        with self.db.lock:
            return self.db.conn.execute(sql, tuple(params)).fetchone()[0]

    # -- changes -------------------------------------------------------------

    def __len__(self) -> int:
        return self.count

    def put(self, rid: int, record: Record) -> None:
        with self.db.lock:
            new = rid not in self.rows
            self.db.conn.execute(self._insert, self._row(rid, _dump(record), record))
            self.count += new
        self.fields.update(record)
        self.version += 1

    def remove(self, rid: int) -> bool:
        with self.db.lock:
            gone = self.db.conn.execute(f"DELETE FROM {self.name} WHERE id = ?", (rid,)).rowcount
            self.count -= gone
        if gone:
            self.version += 1
        return bool(gone)

    def next_id(self) -> int:
        return int(self._scalar(f"SELECT coalesce(max(id), 0) + 1 FROM {self.name}"))

    @property
    def ids(self) -> list[int]:
        with self.db.lock:
            return [r[0] for r in self.db.conn.execute(f"SELECT id FROM {self.name} ORDER BY id")]

    def ids_referring(self, field: str, target: int) -> list[int]:
        """IDs of records whose ``field`` names ``target`` (e.g. history rows of a deal)."""
        column = self.columns.get(field)
        if column is not None and column.exact:
            with self.db.lock:
                sql = f"SELECT id FROM {self.name} WHERE {column.name} = ? ORDER BY id"
                return [r[0] for r in self.db.conn.execute(sql, (target,))]
        out = []
        for rid, record in self.rows.items():
            try:
                if int(record.get(field)) == target:  # type: ignore[arg-type]
                    out.append(rid)
            except (TypeError, ValueError):
                pass
        return out

    # -- queries for the list engine -----------------------------------------

    def column(self, field: str) -> _Column | None:
        column = self.columns.get(field)
        return column if column is not None and column.exact else None

    def condition_sql(self, cond: Condition) -> tuple[str, list[Any]] | None:
        """A filter condition as SQL over an indexed column, or None when the
        column cannot answer it exactly as the Python check would."""
        column = _ID_COLUMN if cond.field == "ID" else self.column(cond.field)
        if column is None or not cond.operands or any(o.empty for o in cond.operands):
            return None
        op = cond.op
        if column.kind == REF and op in ("eq", "in", "ne", "notin"):
            numbers = [o.num for o in cond.operands]
            if any(n is None or n != int(n) for n in numbers):
                return None
            listed = ", ".join(str(int(n)) for n in numbers)  # type: ignore[arg-type]
            if op in ("eq", "in"):
                return f"{column.name} IN ({listed})", []
            return f"({column.name} IS NULL OR {column.name} NOT IN ({listed}))", []
        if column.kind == MOMENT and op in ("gt", "ge", "lt", "le", "between"):
            moments = []
            for operand in cond.operands:
                if operand.num is not None or operand.when is None:
                    return None
                if column.naive and operand.zone.key != self.zone.key:
                    return None
                moments.append(operand.when)
            if op == "between":
                return f"{column.name} BETWEEN ? AND ?", moments
            sign = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[op]
            return f"{column.name} {sign} ?", moments
        return None

    def count_where(self, where: str, params: list[Any]) -> int:
        return int(self._scalar(f"SELECT count(*) FROM {self.name} WHERE {where}", params))

    def select(
        self,
        where: str,
        params: list[Any],
        descending: bool = False,
        limit: int = -1,
        offset: int = 0,
    ) -> Iterator[tuple[int, str]]:
        """(ID, body) in ID order; the caller holds ``db.lock`` while iterating."""
        way = "DESC" if descending else "ASC"
        sql = f"SELECT id, body FROM {self.name} WHERE {where} ORDER BY id {way} LIMIT ? OFFSET ?"
        return self.db.conn.execute(sql, (*params, limit, offset))

    def fetch(self, ids: list[int]) -> list[Record]:
        """Records by ID, in the order asked."""
        found: dict[int, Record] = {}
        with self.db.lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ", ".join("?" * len(part))
                sql = f"SELECT id, body FROM {self.name} WHERE id IN ({marks})"
                for rid, body in self.db.conn.execute(sql, part):
                    found[rid] = json.loads(body)
        return [found[i] for i in ids if i in found]


class Rows:
    """A read-only mapping view ``ID -> record`` (records decoded on each access:
    change them through ``Table.put`` or the portal, never in place)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, rid: Any, default: Any = None) -> Any:
        try:
            key = int(rid)
        except (TypeError, ValueError):
            return default
        table = self.table
        with table.db.lock:
            row = table.db.conn.execute(
                f"SELECT body FROM {table.name} WHERE id = ?", (key,)
            ).fetchone()
        return default if row is None else json.loads(row[0])

    def __getitem__(self, rid: int) -> Record:
        record = self.get(rid)
        if record is None:
            raise KeyError(rid)
        return record

    def __contains__(self, rid: object) -> bool:
        table = self.table
        with table.db.lock:
            sql = f"SELECT 1 FROM {table.name} WHERE id = ?"
            return table.db.conn.execute(sql, (rid,)).fetchone() is not None

    def __len__(self) -> int:
        return len(self.table)

    def items(self) -> Iterator[tuple[int, Record]]:
        # Keyset chunks: never the whole table's bodies at once.
        table, after = self.table, None
        sql = f"SELECT id, body FROM {table.name} WHERE id > ? ORDER BY id LIMIT 1000"
        while True:
            with table.db.lock:
                rows = table.db.conn.execute(sql, (-(2**62) if after is None else after,))
                chunk = rows.fetchall()
            for rid, body in chunk:
                yield rid, json.loads(body)
            if len(chunk) < 1000:
                return
            after = chunk[-1][0]

    def values(self) -> Iterator[Record]:
        for _, record in self.items():
            yield record

    def keys(self) -> list[int]:
        return self.table.ids

    def __iter__(self) -> Iterator[int]:
        return iter(self.table.ids)


def _dump(record: Record) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
