"""crm.item.list's view of a classic record: camelCase names and typed values.

Mapping from BITRIX24_API.md §3; names not listed there follow Bitrix24's
rule (UPPER_SNAKE -> lowerCamel, ``UF_CRM_X`` -> ``ufCrmX``).
"""

from __future__ import annotations

import re
from typing import Any

from rop.emulator.data import Record, Table

# entityTypeId -> our kind (crm.enum.ownertype)
ENTITY_KINDS = {1: "lead", 2: "deal", 3: "contact", 4: "company"}

_SPECIAL = {
    "CREATED_BY_ID": "createdBy",
    "MODIFY_BY_ID": "updatedBy",
    "DATE_CREATE": "createdTime",
    "DATE_MODIFY": "updatedTime",
    "MOVED_BY_ID": "movedBy",
    "BEGINDATE": "begindate",
    "CLOSEDATE": "closedate",
    "LAST_ACTIVITY_BY": "lastActivityBy",
}
_LEAD_SPECIAL = {"STATUS_ID": "stageId", "STATUS_SEMANTIC_ID": "stageSemanticId"}
# *_ID fields that hold codes, not numbers: they stay strings.
_CODE_FIELDS = frozenset(
    {
        "STAGE_ID",
        "STATUS_ID",
        "TYPE_ID",
        "SOURCE_ID",
        "CURRENCY_ID",
        "ORIGIN_ID",
        "ORIGINATOR_ID",
        "STAGE_SEMANTIC_ID",
        "STATUS_SEMANTIC_ID",
        "COMPANY_TYPE",
        "LOCATION_ID",
    }
)
_NUMBER_FIELDS = frozenset({"OPPORTUNITY", "PROBABILITY", "TAX_VALUE", "REVENUE"})
_INT_RE = re.compile(r"^-?\d+$")


def camel(name: str, kind: str) -> str:
    if kind == "lead" and name in _LEAD_SPECIAL:
        return _LEAD_SPECIAL[name]
    if name in _SPECIAL:
        return _SPECIAL[name]
    parts = name.lower().split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def typed(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _NUMBER_FIELDS:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and name == "PROBABILITY" else number
    if (
        (name == "ID" or name.endswith("_ID") or name.endswith("_BY"))
        and name not in _CODE_FIELDS
        and _INT_RE.match(value)
    ):
        return int(value)
    return value


def to_item(record: Record, kind: str, original_uf: bool) -> Record:
    out: Record = {}
    for name, value in record.items():
        key = name if (original_uf and name.startswith("UF_")) else camel(name, kind)
        out[key] = typed(name, value)
    if kind == "deal" and "contactId" in out:
        contact = out["contactId"]
        out["contactIds"] = [contact] if contact not in (None, "", 0) else []
    return out


class ItemNames:
    """camelCase (or original UF) name -> the classic field of a table."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.kind = table.kind
        self._size = -1
        self._map: dict[str, str] = {}

    def resolve(self, name: str) -> str | None:
        if self._size != len(self.table.fields):
            self._map = {}
            for field in self.table.fields:
                self._map[camel(field, self.kind).lower()] = field
                self._map[field.lower()] = field
            self._size = len(self.table.fields)
        return self._map.get(name.lower())
