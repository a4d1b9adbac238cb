"""The live portal: its settings, its record tables (tables.py, in SQLite) and changes.

Records stay exactly as the snapshot folder holds them (Bitrix24's own value
types); list methods project and filter them on the way out.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rop.emulator.clock import Clock
from rop.emulator.jsonstream import SnapshotFileError, iter_records
from rop.emulator.roles import check_permissions
from rop.emulator.stagelog import history_row
from rop.emulator.tables import Database, Record, RecordIdError, Table

__all__ = ["KINDS", "FILES", "Portal", "PortalError", "Record", "Table", "load_portal"]

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
    # Optional (older snapshots have none): companies' and contacts' requisites.
    "requisite": "crm.requisite.list.json",
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
    "requisite": "DATE_MODIFY",
}
# Kinds whose modification time stays "" until the first change (the
# requisite's DATE_MODIFY, crm-requisite-fields: "an empty string if the
# requisite has not been changed since creation").
_BLANK_UNTIL_CHANGED = frozenset({"requisite"})
_CREATED_FIELD = {
    "deal": "DATE_CREATE",
    "lead": "DATE_CREATE",
    "company": "DATE_CREATE",
    "contact": "DATE_CREATE",
    "activity": "CREATED",
    "requisite": "DATE_CREATE",
}


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
                record[_MODIFIED_FIELD[kind]] = "" if kind in _BLANK_UNTIL_CHANGED else now
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
                for hid in rows.ids_referring("OWNER_ID", rid):
                    rows.remove(hid)
            self._touch(kind)
            self._notify(kind, "delete", rid, before, None, actor)

    def _touch(self, kind: str) -> None:
        if kind in ("user", "department"):
            self.structure_version += 1

    def get(self, kind: str, rid: int) -> Record | None:
        return self.tables[kind].rows.get(rid)


def _read_list(path: Path) -> list[Record]:
    """A small snapshot file (categories, statuses, currencies) as a list."""
    return [record for _, record in _stream(path)]


def _stream(path: Path) -> Any:
    if not path.exists():
        return
    try:
        yield from iter_records(path)
    except SnapshotFileError as exc:
        raise PortalError(str(exc)) from None


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
    try:
        zone = ZoneInfo(str(info.get("timezone") or "UTC"))
    except (KeyError, ValueError) as exc:
        raise PortalError(f"{info_path}: bad field timezone ({exc})") from None
    db = Database()
    try:
        tables = {
            kind: Table.from_file(kind, root / name, db=db, zone=zone)
            for kind, name in FILES.items()
        }
    except RecordIdError as exc:
        db.close()
        raise PortalError(f"{root}: {exc}") from None
    except SnapshotFileError as exc:
        db.close()
        raise PortalError(str(exc)) from None
    except PortalError:
        db.close()
        raise
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
