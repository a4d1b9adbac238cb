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
from typing import Any

from rop.demo.clock import Clock
from rop.demo.jsonfile import ArrayWriter
from rop.demo.lifecycle import LEAD_SEMANTICS, SEMANTICS
from rop.demo.telephony import Call, activity_record, call_record

DEAL_HISTORY, LEAD_HISTORY, CALL = 0, 1, 2

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
        self._heap: list[tuple[int, int, int, Any]] = []
        self._seq = 0

    def deal_event(self, moment: int, owner: int, type_id: int, category: int, stage: str) -> None:
        self._push(moment, DEAL_HISTORY, (owner, type_id, category, stage))

    def lead_event(self, moment: int, owner: int, type_id: int, status: str) -> None:
        self._push(moment, LEAD_HISTORY, (owner, type_id, status))

    def call(self, moment: int, call: Call) -> None:
        self._push(moment, CALL, call)

    def _push(self, moment: int, kind: int, data: Any) -> None:
        # The sequence number keeps ties in push order and never compares payloads.
        self._seq += 1
        heapq.heappush(self._heap, (moment, self._seq, kind, data))

    def flush(self, until: int | None = None) -> None:
        """Write every pending event at or before ``until`` (all of them if None)."""
        heap = self._heap
        iso = self.clock.iso
        deal_history = self.out["deal_history"]
        lead_history = self.out["lead_history"]
        while heap and (until is None or heap[0][0] <= until):
            moment, _, kind, data = heapq.heappop(heap)
            if kind == DEAL_HISTORY:
                owner, type_id, category, stage = data
                # Every value here comes from code (IDs, stage codes), so plain
                # formatting is safe JSON and much faster than an encoder.
                deal_history.add_raw(
                    f'{{"ID":{deal_history.count + 1},"TYPE_ID":{type_id},"OWNER_ID":{owner},'
                    f'"CREATED_TIME":"{iso(moment)}","CATEGORY_ID":{category},'
                    f'"STAGE_SEMANTIC_ID":"{SEMANTICS[stage]}","STAGE_ID":"{stage}"}}'
                )
            elif kind == LEAD_HISTORY:
                owner, type_id, status = data
                lead_history.add_raw(
                    f'{{"ID":{lead_history.count + 1},"TYPE_ID":{type_id},"OWNER_ID":{owner},'
                    f'"CREATED_TIME":"{iso(moment)}",'
                    f'"STATUS_SEMANTIC_ID":"{LEAD_SEMANTICS[status]}","STATUS_ID":"{status}"}}'
                )
            else:
                self._write_call(moment, data)

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
