"""The portal snapshot folder (CONTRACT.md §1): read it, and load it into a store.

Loading a snapshot straight into the store (no HTTP) serves offline analysis
of a folder taken from a real portal, and gives the report's tests a store
built from small hand-made portals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rop.bitrix.records import ALL, Entity, Record, to_rows
from rop.store.db import Store
from rop.store.facts import refresh_facts


class SnapshotError(ValueError):
    """The snapshot folder is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class PortalInfo:
    domain: str
    timezone: str
    base_currency: str
    admins: tuple[int, ...] = ()
    webhook_user_id: int = 1
    webhook_token: str = "demo"
    now: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_portal_info(folder: str | Path) -> PortalInfo:
    path = Path(folder) / "portal.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SnapshotError(f"{path}: not found (is this a portal snapshot folder?)") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: not valid JSON ({exc})") from None
    try:
        webhook = data.get("webhook") or {}
        return PortalInfo(
            domain=str(data["domain"]),
            timezone=str(data.get("timezone") or "UTC"),
            base_currency=str(data.get("base_currency") or "RUB"),
            admins=tuple(int(a) for a in data.get("admins") or ()),
            webhook_user_id=int(webhook.get("user_id", 1)),
            webhook_token=str(webhook.get("token", "demo")),
            now=data.get("now"),
            extra={k: v for k, v in data.items() if k not in {"domain", "timezone"}},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"{path}: bad or missing field {exc}") from None


def portal_clock(info: PortalInfo, path: str | Path = "portal.json") -> datetime:
    """The portal's clock the snapshot was taken at (naive UTC, as the store keeps it).

    ``now`` of portal.json (CONTRACT.md §1), read as the emulator reads it (no
    offset: the portal's local time); without one, the snapshot is "as of
    now", as the emulator serving it would say.
    """
    if not info.now:
        return datetime.now(UTC).replace(tzinfo=None)
    try:
        moment = datetime.fromisoformat(str(info.now))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(info.timezone))
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise SnapshotError(f"{path}: bad field 'now' ({exc})") from None
    return moment.astimezone(UTC).replace(tzinfo=None)


def read_records(folder: str | Path, entity: Entity) -> list[Record]:
    """The records of one snapshot file; a missing file means none."""
    path = Path(folder) / entity.snapshot
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise SnapshotError(f"{path}: expected a JSON array of records")
    return data


def load_snapshot(store: Store, folder: str | Path) -> str:
    """Replace the store's copy of the snapshot's portal with the folder's content.

    All or nothing: a bad file leaves the store as it was. Returns the portal key.
    """
    info = read_portal_info(folder)
    portal = info.domain
    clock = portal_clock(info, Path(folder) / "portal.json")
    store.use_portal(portal)
    batches = [(entity, to_rows(entity, portal, read_records(folder, entity))) for entity in ALL]
    # Every fact is rebuilt after, so the rows need no marks.
    with store.unmarked(), store.transaction():
        for entity, rows in batches:
            store.execute(f"DELETE FROM {entity.table} WHERE portal = ?", [portal])  # noqa: S608
            if entity.name == "users":
                for row in rows:
                    row["is_admin"] = row["id"] in info.admins
            store.upsert(entity.table, rows)
        store.upsert(
            "portals",
            [
                {
                    "portal": portal,
                    "url": f"https://{portal}",
                    "timezone": info.timezone,
                    "base_currency": info.base_currency,
                    "webhook_user_id": info.webhook_user_id,
                    # When the copy was written (the caches' mark of new data) ...
                    "updated_at": datetime.now(UTC).replace(tzinfo=None),
                    # ... and the portal's time it describes: the report's "today".
                    "clock": clock,
                }
            ],
        )
    refresh_facts(store, portal, full=True)
    return portal
