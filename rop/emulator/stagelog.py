"""The stage history row Bitrix24 writes when a deal or lead is created or moves.

crm-stage-history-list.md: ``TYPE_ID`` 1 creation, 2 move to an intermediate stage,
3 move to a final stage, 5 move to another pipeline; deals carry ``CATEGORY_ID``,
``STAGE_ID``, ``STAGE_SEMANTIC_ID``, leads ``STATUS_ID``, ``STATUS_SEMANTIC_ID``.
The emulator writes them only when asked (``history=True``), so the older tests
that add history rows by hand keep their counts.
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

# kind -> (stage field, semantic field)
_STAGE = {"deal": ("STAGE_ID", "STAGE_SEMANTIC_ID"), "lead": ("STATUS_ID", "STATUS_SEMANTIC_ID")}


def _semantic(kind: str, before: Record | None, after: Record, statuses: list[Record]) -> str:
    """The stage's semantics: crm.status.list's SEMANTICS, else what the change set,
    else by name (WON/CONVERTED succeed, LOSE/JUNK fail)."""
    stage_field, semantic_field = _STAGE[kind]
    stage = str(after.get(stage_field) or "")
    prefix = "DEAL_STAGE" if kind == "deal" else "STATUS"
    for status in statuses:
        entity = str(status.get("ENTITY_ID") or "")
        same = entity.startswith(prefix) and str(status.get("STATUS_ID")) == stage
        if same and status.get("SEMANTICS"):
            return str(status["SEMANTICS"])
    given = after.get(semantic_field)
    if given and (before is None or before.get(semantic_field) != given):
        return str(given)
    return {"WON": "S", "CONVERTED": "S", "LOSE": "F", "JUNK": "F"}.get(stage.split(":")[-1], "P")


def history_row(
    kind: str, before: Record | None, after: Record, now: str, statuses: list[Record]
) -> Record | None:
    """The row to add for this change, or None (not a deal/lead, or the stage stayed)."""
    if kind not in _STAGE:
        return None
    stage_field, semantic_field = _STAGE[kind]
    semantic = _semantic(kind, before, after, statuses)
    if before is None:
        type_id = 1
    elif kind == "deal" and str(before.get("CATEGORY_ID") or "0") != str(
        after.get("CATEGORY_ID") or "0"
    ):
        type_id = 5
    elif before.get(stage_field) == after.get(stage_field):
        return None
    else:
        type_id = 3 if semantic in ("S", "F") else 2
    row: Record = {
        "TYPE_ID": type_id,
        "OWNER_ID": int(after["ID"]),
        "CREATED_TIME": now,
        stage_field: after.get(stage_field),
        semantic_field: semantic,
    }
    if kind == "deal":
        row["CATEGORY_ID"] = int(after.get("CATEGORY_ID") or 0)
    return row
