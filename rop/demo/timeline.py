"""Time-ordered output: stage history and calls get their IDs in the order they happened.

Deals and leads are generated in creation order and plan their future
events (stage moves, calls) at once. Those events wait in a heap and are
written only when no record still to come can produce an earlier one, i.e.
once the next record's creation time has passed them. So history and call
IDs grow with time, as Bitrix24's do, while memory holds only the events of
records that are still "alive" (a few hundred thousand for a million deals).
"""

from __future__ import annotations

import heapq
from pathlib import Path

from rop.demo.clock import Clock
from rop.demo.jsonfile import ArrayWriter
from rop.demo.lifecycle import LEAD_SEMANTICS, SEMANTICS
from rop.demo.telephony import CALL_CODES, Call, activity_record, call_record
from rop.demo.todo import Todo, todo_record

DEAL_HISTORY, LEAD_HISTORY, CALL, TODO = 0, 1, 2, 3

# A pending event is one int: moment, then a push counter (keeps ties in push
# order), then the packed payload. An int costs ~50 bytes where a tuple of
# tuples cost ~220; with a short window the heap holds millions of events.
_PAYLOAD_BITS = 112
_SEQ_BITS = 32
_PAYLOAD_MASK = (1 << _PAYLOAD_BITS) - 1
_MOMENT_SHIFT = _PAYLOAD_BITS + _SEQ_BITS

_STAGES = sorted(SEMANTICS)
_STAGE_INDEX = {stage: i for i, stage in enumerate(_STAGES)}
_STATUSES = sorted(LEAD_SEMANTICS)
_STATUS_INDEX = {status: i for i, status in enumerate(_STATUSES)}
_CODE_INDEX = {code: i for i, code in enumerate(CALL_CODES)}
_ENTITIES = (None, "LEAD", "CONTACT", "COMPANY")
_ENTITY_INDEX = {entity: i for i, entity in enumerate(_ENTITIES)}

FILES = {
    "deals": "crm.deal.list.json",
    "leads": "crm.lead.list.json",
    "deal_history": "crm.stagehistory.list.2.json",
    "lead_history": "crm.stagehistory.list.1.json",
    "calls": "voximplant.statistic.get.json",
    "activities": "crm.activity.list.json",
}


class Timeline:
    """The open output files of the time-ordered entities and the pending events."""

    def __init__(self, folder: Path, clock: Clock) -> None:
        self.clock = clock
        self.out: dict[str, ArrayWriter] = {}
        try:
            for name, file_name in FILES.items():
                self.out[name] = ArrayWriter(folder / file_name)
        except BaseException:
            self.abort()
            raise
        self._heap: list[int] = []
        self._seq = 0

    def deal_event(self, moment: int, owner: int, type_id: int, category: int, stage: str) -> None:
        payload = type_id << 2 | category << 5 | _STAGE_INDEX[stage] << 9 | owner << 17
        self._push(moment, payload | DEAL_HISTORY)

    def lead_event(self, moment: int, owner: int, type_id: int, status: str) -> None:
        self._push(moment, type_id << 2 | _STATUS_INDEX[status] << 5 | owner << 13 | LEAD_HISTORY)

    def call(self, moment: int, call: Call) -> None:
        user, call_type, code, duration, entity, entity_id, number, activity = call
        payload = (
            CALL
            | call_type << 2
            | _CODE_INDEX[code] << 5
            | activity << 9
            | _ENTITY_INDEX[entity] << 10
            | duration << 12
            | user << 24
            | (entity_id or 0) << 40
            | int(number) << 68
        )
        self._push(moment, payload)

    def todo(self, moment: int, todo: Todo) -> None:
        user, type_id, completed, minutes, deal_id = todo
        payload = TODO | type_id << 2 | completed << 5 | user << 6 | minutes << 22 | deal_id << 37
        self._push(moment, payload)

    def _push(self, moment: int, payload: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, moment << _MOMENT_SHIFT | self._seq << _PAYLOAD_BITS | payload)

    def flush(self, until: int | None = None) -> None:
        """Write every pending event at or before ``until`` (all of them if None)."""
        heap = self._heap
        iso = self.clock.iso
        deal_history = self.out["deal_history"]
        lead_history = self.out["lead_history"]
        # Keys at or before ``until`` are exactly those below this bound.
        bound = None if until is None else (until + 1) << _MOMENT_SHIFT
        while heap and (bound is None or heap[0] < bound):
            key = heapq.heappop(heap)
            moment = key >> _MOMENT_SHIFT
            payload = key & _PAYLOAD_MASK
            kind = payload & 3
            if kind == DEAL_HISTORY:
                stage = _STAGES[payload >> 9 & 0xFF]
                # Every value here comes from code (IDs, stage codes), so plain
                # formatting is safe JSON and much faster than an encoder.
                deal_history.add_raw(
                    f'{{"ID":{deal_history.count + 1},"TYPE_ID":{payload >> 2 & 7},'
                    f'"OWNER_ID":{payload >> 17},"CREATED_TIME":"{iso(moment)}",'
                    f'"CATEGORY_ID":{payload >> 5 & 15},'
                    f'"STAGE_SEMANTIC_ID":"{SEMANTICS[stage]}","STAGE_ID":"{stage}"}}'
                )
            elif kind == LEAD_HISTORY:
                status = _STATUSES[payload >> 5 & 0xFF]
                lead_history.add_raw(
                    f'{{"ID":{lead_history.count + 1},"TYPE_ID":{payload >> 2 & 7},'
                    f'"OWNER_ID":{payload >> 13},"CREATED_TIME":"{iso(moment)}",'
                    f'"STATUS_SEMANTIC_ID":"{LEAD_SEMANTICS[status]}","STATUS_ID":"{status}"}}'
                )
            elif kind == TODO:
                todo: Todo = (
                    payload >> 6 & 0xFFFF,
                    payload >> 2 & 7,
                    bool(payload >> 5 & 1),
                    payload >> 22 & 0x7FFF,
                    payload >> 37 & 0xFFFFFFF,
                )
                activities = self.out["activities"]
                activities.add(todo_record(self.clock, activities.count + 1, moment, todo))
            else:
                entity = _ENTITIES[payload >> 10 & 3]
                call: Call = (
                    payload >> 24 & 0xFFFF,
                    payload >> 2 & 7,
                    CALL_CODES[payload >> 5 & 15],
                    payload >> 12 & 0xFFF,
                    entity,
                    (payload >> 40 & 0xFFFFFFF) if entity else None,
                    str(payload >> 68),
                    bool(payload >> 9 & 1),
                )
                self._write_call(moment, call)

    def _write_call(self, moment: int, call: Call) -> None:
        activity_id = None
        if call[7]:
            activities = self.out["activities"]
            activity_id = activities.count + 1
            activities.add(activity_record(self.clock, activity_id, moment, call))
        calls = self.out["calls"]
        calls.add(call_record(self.clock, calls.count + 1, activity_id, moment, call))

    def close(self) -> None:
        self.flush()
        for writer in self.out.values():
            writer.close()

    def abort(self) -> None:
        for writer in self.out.values():
            writer.abort()
