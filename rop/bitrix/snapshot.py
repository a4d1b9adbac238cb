"""The portal snapshot folder (CONTRACT.md §1): read it, and load it into a store.

Loading a snapshot straight into the store (no HTTP) serves offline analysis
of a folder taken from a real portal, gives the report's tests a store built
from small hand-made portals, and fills the benchmarks' stores (a 1M-deal
folder is ~5 GB of JSON). The loader streams: each file is parsed record by
record (ijson, a C parser) and written in chunks of ``CHUNK`` records, so its
memory does not grow with the portal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rop.bitrix.records import ALL, Entity, Record, to_rows
from rop.store.db import Store
from rop.store.facts import refresh_facts

# Records parsed and written at a time: a few tens of MB of Python objects
# whatever the portal's size, and few enough statements that the per-write
# cost (staging the batch, one merge) stays small beside the rows.
CHUNK = 20_000


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
    """All the records of one snapshot file (small files; the loader streams)."""
    return [record for batch in iter_records(folder, entity) for record in batch]


def iter_records(folder: str | Path, entity: Entity, chunk: int = CHUNK) -> Iterator[list[Record]]:
    """The records of one snapshot file, ``chunk`` at a time; a missing file means none.

    The file is parsed as it is read, so a file of any size costs one chunk of
    memory. A malformed file raises :class:`SnapshotError` where the parser
    finds the fault, possibly after earlier chunks were handed out: callers
    that must be all or nothing write inside one transaction.
    """
    import ijson  # imported here: only loading a snapshot needs it

    path = Path(folder) / entity.snapshot
    if not path.exists():
        return
    with path.open("rb") as handle:
        first = b""
        while not first:  # the first character that is not blank
            block = handle.read(4096)
            if not block:
                break
            first = block.lstrip()
        if not first:
            raise SnapshotError(f"{path}: not valid JSON (empty file)")
        if not first.startswith(b"["):
            raise SnapshotError(f"{path}: expected a JSON array of records")
        handle.seek(0)
        batch: list[Record] = []
        records = ijson.items(handle, "item", use_float=True)
        while True:
            try:
                record = next(records, None)
            except ijson.JSONError as exc:
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SnapshotError(f"{path}: not valid JSON ({first_line})") from None
            if record is None:
                break
            if not isinstance(record, dict):
                raise SnapshotError(f"{path}: expected a JSON array of records")
            batch.append(record)
            if len(batch) >= chunk:
                yield batch
                batch = []
        if batch:
            yield batch


def load_snapshot(store: Store, folder: str | Path, chunk: int = CHUNK) -> str:
    """Replace the store's copy of the snapshot's portal with the folder's content.

    All or nothing: one transaction, so a bad file (found mid-way, after
    earlier chunks were written) leaves the store as it was. Memory is one
    chunk of records plus the engine's own, whatever the portal's size.
    Returns the portal key.
    """
    info = read_portal_info(folder)
    portal = info.domain
    clock = portal_clock(info, Path(folder) / "portal.json")
    store.use_portal(portal)
    # Every fact is rebuilt after, so the rows need no marks.
    with store.unmarked(), store.transaction():
        for entity in ALL:
            store.execute(f"DELETE FROM {entity.table} WHERE portal = ?", [portal])  # noqa: S608
            for records in iter_records(folder, entity, chunk):
                try:
                    rows = to_rows(entity, portal, records)
                except (KeyError, TypeError, ValueError) as exc:
                    path = Path(folder) / entity.snapshot
                    raise SnapshotError(
                        f"{path}: a record with a bad or missing field {exc}"
                    ) from None
                del records
                if entity.name == "users":
                    for row in rows:
                        row["is_admin"] = row["id"] in info.admins
                store.upsert(entity.table, rows)
                del rows
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
