"""A set of named records to re-read: what events say changed or went away.

Bitrix24's events only name a record (``data[FIELDS][ID]``); the by-ID sync
(:mod:`rop.bitrix.sync_ids`) fetches it. A burst of events for one portal
merges into one :class:`Changes`: each ID once, and a deletion wins over an
update (a record deleted after it was edited is gone either way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The entities an event can name, by our entity name (rop.bitrix.records).
OWNERS: tuple[str, ...] = ("deals", "leads", "companies", "contacts", "activities")


@dataclass
class Changes:
    """Records of one portal to re-read (``changed``) or drop (``deleted``), per entity.

    ``calls`` holds voximplant ``CALL_ID`` strings (ONVOXIMPLANTCALLEND names a
    call by it, not by the statistic row's ID).
    """

    changed: dict[str, set[int]] = field(default_factory=dict)
    deleted: dict[str, set[int]] = field(default_factory=dict)
    calls: set[str] = field(default_factory=set)

    def change(self, entity: str, record_id: int) -> None:
        if entity not in OWNERS:
            raise ValueError(f"no by-ID sync for {entity!r}")
        if record_id in self.deleted.get(entity, ()):
            return  # deleted already: an update cannot bring it back
        self.changed.setdefault(entity, set()).add(record_id)

    def delete(self, entity: str, record_id: int) -> None:
        if entity not in OWNERS:
            raise ValueError(f"no by-ID sync for {entity!r}")
        self.changed.get(entity, set()).discard(record_id)
        self.deleted.setdefault(entity, set()).add(record_id)

    def call(self, call_id: str) -> None:
        self.calls.add(call_id)

    def merge(self, other: Changes) -> None:
        for entity, ids in other.deleted.items():
            for i in ids:
                self.delete(entity, i)
        for entity, ids in other.changed.items():
            for i in ids:
                self.change(entity, i)
        self.calls |= other.calls

    def __len__(self) -> int:
        return (
            sum(len(v) for v in self.changed.values())
            + sum(len(v) for v in self.deleted.values())
            + len(self.calls)
        )

    def __bool__(self) -> bool:
        return len(self) > 0

    def as_dict(self) -> dict[str, object]:
        """For logs and the run's message: sorted lists."""
        return {
            "changed": {k: sorted(v) for k, v in self.changed.items() if v},
            "deleted": {k: sorted(v) for k, v in self.deleted.items() if v},
            "calls": sorted(self.calls),
        }
