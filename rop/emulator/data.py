"""The live in-memory portal: every record kind sorted by ID, with an ID index.

Records stay exactly as the snapshot folder holds them (Bitrix24's own value
types); list methods project and filter them on the way out.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rop.emulator.clock import Clock
from rop.emulator.fields import BASE_FIELDS
from rop.emulator.filters import cached_moment
from rop.emulator.roles import check_permissions
from rop.emulator.stagelog import history_row

Record = dict[str, Any]

# kind -> snapshot file (CONTRACT.md §1)
FILES: dict[str, str] = {
    "deal": "crm.deal.list.json",
    "lead": "crm.lead.list.json",
    "company": "crm.company.list.json",
    "contact": "crm.contact.list.json",
    "deal_history": "crm.stagehistory.list.2.json",
    "lead_history": "crm.stagehistory.list.1.json",
    "call": "voximplant.statistic.get.json",
    "activity": "crm.activity.list.json",
    "user": "user.get.json",
    "department": "department.get.json",
}
KINDS = frozenset(FILES)
# Optional, emulator only: the CRM role of each user (CONTRACT.md §1).
PERMISSIONS_FILE = "crm.permissions.json"
# Stage history rows are typed (ints); the classic kinds send IDs as strings.
_INT_ID_KINDS = frozenset({"deal_history", "lead_history"})
_HISTORY_OF = {"deal": "deal_history", "lead": "lead_history"}
_MODIFIED_FIELD = {
    "deal": "DATE_MODIFY",
    "lead": "DATE_MODIFY",
    "company": "DATE_MODIFY",
    "contact": "DATE_MODIFY",
    "activity": "LAST_UPDATED",
}
_CREATED_FIELD = {
    "deal": "DATE_CREATE",
    "lead": "DATE_CREATE",
    "company": "DATE_CREATE",
    "contact": "DATE_CREATE",
    "activity": "CREATED",
}


# How many records to look at when learning a kind's field names at load.
_FIELD_SAMPLE = 2000


# Called after every change: (kind, action add|update|delete, id, before, after, actor).
# The app host turns them into Bitrix24 events; actor None = no user (a robot).
Listener = Callable[[str, str, int, "Record | None", "Record | None", "int | None"], None]


class PortalError(ValueError):
    """Bad snapshot or bad change request; the message names the problem."""


def record_id(record: Record) -> int:
    value = record.get("ID", record.get("id"))
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PortalError(f"record without a numeric ID: {str(record)[:120]}") from None


class Table:
    """Records of one kind, kept sorted by ID with an ID index (bisect keyset paging)."""

    def __init__(self, kind: str, records: list[Record]) -> None:
        self.kind = kind
        self.rows: dict[int, Record] = {}
        for record in records:
            self.rows[record_id(record)] = record
        self.ids: list[int] = sorted(self.rows)
        self.fields: set[str] = set(BASE_FIELDS.get(kind, ()))
        for record in records[:_FIELD_SAMPLE]:
            self.fields.update(record)
        self.version = 0  # bumped on every change (caches key on it)
        self._indexes: dict[tuple[str, str], tuple[int, list[float], list[int]]] = {}

    def moment_index(self, field: str, zone: ZoneInfo) -> tuple[list[float], list[int]]:
        """(moments, ids) sorted by moment for a date field; rebuilt after changes.

        Stands in for the portal database's index on DATE_MODIFY and the like,
        so an incremental filter does not walk a million rows.
        """
        key = (field, zone.key)
        cached = self._indexes.get(key)
        if cached is not None and cached[0] == self.version:
            return cached[1], cached[2]
        pairs = []
        for rid, record in self.rows.items():
            when = cached_moment(record.get(field), zone)
            if when is not None:
                pairs.append((when, rid))
        pairs.sort()
        moments, ids = [p[0] for p in pairs], [p[1] for p in pairs]
        self._indexes[key] = (self.version, moments, ids)
        return moments, ids

    def __len__(self) -> int:
        return len(self.ids)

    def put(self, rid: int, record: Record) -> None:
        if rid not in self.rows:
            if not self.ids or rid > self.ids[-1]:
                self.ids.append(rid)
            else:
                bisect.insort(self.ids, rid)
        self.rows[rid] = record
        self.fields.update(record)
        self.version += 1

    def remove(self, rid: int) -> bool:
        if self.rows.pop(rid, None) is None:
            return False
        pos = bisect.bisect_left(self.ids, rid)
        del self.ids[pos]
        self.version += 1
        return True

    def next_id(self) -> int:
        return (self.ids[-1] + 1) if self.ids else 1

    def iter_range(
        self, low: int | None, high: int | None, descending: bool = False
    ) -> Iterator[Record]:
        """Records with low <= ID <= high (None: open), in ID order."""
        lo = 0 if low is None else bisect.bisect_left(self.ids, low)
        hi = len(self.ids) if high is None else bisect.bisect_right(self.ids, high)
        ids, rows = self.ids, self.rows
        positions = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        for pos in positions:
            yield rows[ids[pos]]

    def count_range(self, low: int | None, high: int | None) -> int:
        lo = 0 if low is None else bisect.bisect_left(self.ids, low)
        hi = len(self.ids) if high is None else bisect.bisect_right(self.ids, high)
        return max(0, hi - lo)

    def slice_range(
        self, low: int | None, high: int | None, offset: int, limit: int, descending: bool
    ) -> list[Record]:
        lo = 0 if low is None else bisect.bisect_left(self.ids, low)
        hi = len(self.ids) if high is None else bisect.bisect_right(self.ids, high)
        if descending:
            end = hi - offset
            chosen = self.ids[max(lo, end - limit) : max(lo, end)][::-1]
        else:
            begin = lo + offset
            chosen = self.ids[begin : min(hi, begin + limit)]
        return [self.rows[i] for i in chosen]


class Portal:
    """One portal served by the emulator; thread-safe changes for sync tests."""

    def __init__(self, info: dict[str, Any], tables: dict[str, Table], extra: dict[str, Any]):
        self.info = info
        self.domain = str(info.get("domain") or "emulator.bitrix24.local")
        self.timezone = str(info.get("timezone") or "UTC")
        self.base_currency = str(info.get("base_currency") or "RUB")
        self.admins = frozenset(int(a) for a in info.get("admins") or ())
        webhook = info.get("webhook") or {}
        self.webhook_user_id = int(webhook.get("user_id", 1))
        self.webhook_token = str(webhook.get("token", "demo"))
        self.clock = Clock(self.timezone, info.get("now"))
        self.tables = tables
        self.categories: list[Record] = extra.get("categories", [])
        self.statuses: list[Record] = extra.get("statuses", [])
        self.currencies: list[Record] = extra.get("currencies", [])
        # crm.permissions.json, checked (visibility.check_permissions); empty: the default rule.
        self.permissions: dict[str, Any] = extra.get("permissions") or {"default": {}, "users": {}}
        self.lock = threading.RLock()
        self.structure_version = 0  # users/departments changes invalidate scopes
        self._owner_index: dict[str, tuple[int, dict[int, list[int]]]] = {}
        self.listeners: list[Listener] = []

    # -- changes (in-process API, also behind the test-only HTTP API) --------

    def table(self, kind: str) -> Table:
        if kind not in KINDS:
            raise PortalError(f"unknown kind {kind!r}; one of {', '.join(sorted(KINDS))}")
        return self.tables[kind]

    def _notify(
        self,
        kind: str,
        action: str,
        rid: int,
        before: Record | None,
        after: Record | None,
        actor: int | None,
    ) -> None:
        for listener in self.listeners:
            listener(kind, action, rid, before, after, actor)

    def add(
        self, kind: str, record: Record, actor: int | None = None, history: bool = False
    ) -> int:
        """Add a record (ID assigned if absent); sets DATE_CREATE/DATE_MODIFY to now.

        ``actor``: the user making the change (events carry their tokens);
        ``history``: also write the deal's or lead's stage history row, as Bitrix24 does.
        """
        with self.lock:
            table = self.table(kind)
            record = dict(record)
            raw = record.get("ID", record.get("id"))
            rid = table.next_id() if raw in (None, "") else record_id(record)
            if rid in table.rows:
                raise PortalError(f"{kind} {rid} already exists")
            record["ID"] = rid if kind in _INT_ID_KINDS else str(rid)
            now = self.clock.iso()
            if kind in _CREATED_FIELD:
                record.setdefault(_CREATED_FIELD[kind], now)
            if kind in _MODIFIED_FIELD:
                record[_MODIFIED_FIELD[kind]] = now
            table.put(rid, record)
            self._touch(kind)
            if history:
                self._log_stage(kind, None, record)
            self._notify(kind, "add", rid, None, record, actor)
            return rid

    def _log_stage(self, kind: str, before: Record | None, after: Record) -> None:
        row = history_row(kind, before, after, self.clock.iso(), self.statuses)
        if row is not None:
            self.add(_HISTORY_OF[kind], row)

    def update(
        self,
        kind: str,
        rid: int,
        fields: Record,
        actor: int | None = None,
        history: bool = False,
    ) -> None:
        """Change fields of a record; bumps DATE_MODIFY to now (``history``: see ``add``)."""
        with self.lock:
            table = self.table(kind)
            rid = int(rid)
            current = table.rows.get(rid)
            if current is None:
                raise PortalError(f"{kind} {rid} not found")
            record = {**current, **{k: v for k, v in fields.items() if k not in ("ID", "id")}}
            if kind in _MODIFIED_FIELD:
                record[_MODIFIED_FIELD[kind]] = self.clock.iso()
            table.put(rid, record)
            self._touch(kind)
            if history:
                self._log_stage(kind, current, record)
            self._notify(kind, "update", rid, current, record, actor)

    def delete(self, kind: str, rid: int, actor: int | None = None) -> None:
        """Delete a record; a deal's or lead's stage history goes with it (as in Bitrix24)."""
        with self.lock:
            table = self.table(kind)
            rid = int(rid)
            before = table.rows.get(rid)
            if not table.remove(rid):
                raise PortalError(f"{kind} {rid} not found")
            history = _HISTORY_OF.get(kind)
            if history:
                rows = self.tables[history]
                index = self._owners(history)
                for hid in index.pop(rid, []):
                    rows.remove(hid)
                self._owner_index[history] = (rows.version, index)
            self._touch(kind)
            self._notify(kind, "delete", rid, before, None, actor)

    def _owners(self, kind: str) -> dict[int, list[int]]:
        """OWNER_ID -> history row IDs, rebuilt only when the history changed otherwise."""
        table = self.tables[kind]
        cached = self._owner_index.get(kind)
        if cached is not None and cached[0] == table.version:
            return cached[1]
        index: dict[int, list[int]] = {}
        for hid, record in table.rows.items():
            owner = _as_int(record.get("OWNER_ID"))
            if owner is not None:
                index.setdefault(owner, []).append(hid)
        return index

    def _touch(self, kind: str) -> None:
        if kind in ("user", "department"):
            self.structure_version += 1

    def get(self, kind: str, rid: int) -> Record | None:
        return self.tables[kind].rows.get(rid)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _read_list(path: Path) -> list[Record]:
    if not path.exists():
        return []
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PortalError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise PortalError(f"{path}: expected a JSON array of records")
    return data


def load_portal(folder: str | Path) -> Portal:
    """Read a portal snapshot folder (CONTRACT.md §1). Missing files mean none."""
    root = Path(folder)
    info_path = root / "portal.json"
    if not info_path.is_file():
        raise PortalError(f"{info_path}: not found (is this a portal snapshot folder?)")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PortalError(f"{info_path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict) or "domain" not in info:
        raise PortalError(f"{info_path}: expected an object with at least 'domain'")
    tables = {kind: Table(kind, _read_list(root / name)) for kind, name in FILES.items()}
    extra: dict[str, Any] = {
        "categories": _read_list(root / "crm.category.list.json"),
        "statuses": _read_list(root / "crm.status.list.json"),
        "currencies": _read_list(root / "crm.currency.list.json"),
    }
    roles = root / PERMISSIONS_FILE
    if roles.is_file():
        try:
            raw = json.loads(roles.read_text(encoding="utf-8"))
            extra["permissions"] = check_permissions(raw, str(roles))
        except (ValueError, UnicodeDecodeError) as exc:
            raise PortalError(str(exc) if str(roles) in str(exc) else f"{roles}: {exc}") from None
    try:
        return Portal(info, tables, extra)
    except (TypeError, ValueError) as exc:
        raise PortalError(f"{info_path}: bad field ({exc})") from None
