"""CRM methods: classic lists and gets, crm.item.*, stage history."""

from __future__ import annotations

from typing import Any

from rop.emulator.errors import ApiError, access_denied, not_found
from rop.emulator.items import ENTITY_KINDS, ItemNames, to_item
from rop.emulator.listing import projector
from rop.emulator.params import Params, as_dict, as_int, as_list, get
from rop.emulator.registry import METHODS, Call, Handler, Reply, classic, list_page, method
from rop.emulator.visibility import visible

# -- classic CRM lists and gets ------------------------------------------------


def _crm_list(kind: str) -> Handler:
    def handler(call: Call) -> Reply:
        table = call.portal.tables[kind]
        params = dict(call.params)
        spec = as_dict(get(params, "filter"), "filter")
        if kind == "activity":
            spec = _bindings(spec)
        params["filter"] = spec
        # crm-activity-list.md: "By default, the results are sorted in ascending
        # order by the value of the START_TIME field" (ID breaks ties).
        default = [("START_TIME", False), ("ID", False)] if kind == "activity" else None
        page = list_page(call, table, params, classic(table), strict=False, default_order=default)
        project = projector(table, get(params, "select"))
        return Reply([project(r) for r in page.rows], page.total, page.next)

    return handler


def _bindings(spec: dict[str, Any]) -> dict[str, Any]:
    """crm.activity.list's BINDINGS filter -> an OR group over the activity's owner."""
    spec = dict(spec)
    key = next((k for k in spec if str(k).upper() == "BINDINGS"), None)
    if key is None:
        return spec
    group: dict[str, Any] = {"LOGIC": "OR"}
    for i, binding in enumerate(as_list(spec.pop(key))):
        if isinstance(binding, dict):
            group[str(i)] = {str(k).upper(): v for k, v in binding.items()}
    spec["__bindings"] = group
    return spec


def _crm_get(kind: str) -> Handler:
    def handler(call: Call) -> Reply:
        rid = as_int(get(call.params, "id"), "id", default=-1)
        record = call.portal.tables[kind].rows.get(rid)
        if record is None:
            raise not_found()
        if not visible(call.portal, kind, record, call.scope):
            raise access_denied()
        call.cost.returned += 1
        return Reply(dict(record))

    return handler


for _kind in ("deal", "lead", "company", "contact", "activity", "requisite"):
    METHODS[f"crm.{_kind}.list"] = _crm_list(_kind)
    METHODS[f"crm.{_kind}.get"] = _crm_get(_kind)


# -- crm.item.* (universal, camelCase, typed) ----------------------------------


# Types crm.item.* serves that a snapshot never holds (7 quote, 31 invoice):
# they list as empty instead of failing.
_EMPTY_ITEM_TYPES = frozenset({7, 31})


def _item_kind(params: Params) -> str | None:
    type_id = as_int(get(params, "entityTypeId"), "entityTypeId", default=0)
    kind = ENTITY_KINDS.get(type_id)
    if kind is None and type_id not in _EMPTY_ITEM_TYPES:
        # crm-item-list.md: an invalid entityTypeId is 400 NOT_FOUND.
        raise ApiError("NOT_FOUND", "Smart process not found", 400)
    return kind


@method("crm.item.list")
def item_list(call: Call) -> Reply:
    kind = _item_kind(call.params)
    if kind is None:
        return Reply({"items": []}, 0)
    table = call.portal.tables[kind]
    names = ItemNames(table)
    page = list_page(call, table, call.params, names.resolve)
    original_uf = str(get(call.params, "useOriginalUfNames", "N")).upper() == "Y"
    select = [s for s in as_list(get(call.params, "select")) if str(s).strip()]
    chosen = ["*"] + (["UF_*"] if not select else [])
    for name in select:
        text = str(name).strip()
        if text in ("*", "UF_*", "uf_*"):
            chosen.append(text.upper())
        elif (resolved := names.resolve(text)) is not None:
            chosen.append(resolved)
    if select and "*" not in [str(s).strip() for s in select]:
        chosen.remove("*")
    project = projector(table, chosen)
    items = [to_item(project(r), kind, original_uf) for r in page.rows]
    return Reply({"items": items}, page.total, page.next)


@method("crm.item.get")
def item_get(call: Call) -> Reply:
    kind = _item_kind(call.params)
    if kind is None:
        raise not_found()
    reply = _crm_get(kind)(call)
    return Reply({"item": to_item(reply.result, kind, False)})


# -- stage history ---------------------------------------------------------------

_HISTORY_KINDS = {1: "lead_history", 2: "deal_history"}
# crm-stage-history-list.md also serves 5 (old invoices) and 31 (invoices);
# a snapshot holds none of them, so they list as empty.
_EMPTY_HISTORY_TYPES = frozenset({5, 31})


@method("crm.stagehistory.list")
def stagehistory_list(call: Call) -> Reply:
    type_id = as_int(get(call.params, "entityTypeId"), "entityTypeId", default=0)
    kind = _HISTORY_KINDS.get(type_id)
    if kind is None and type_id in _EMPTY_HISTORY_TYPES:
        return Reply({"items": []}, 0)
    if kind is None:
        raise ApiError("ENTITY_TYPE_NOT_SUPPORTED", f"Entity type {type_id} is not supported", 400)
    table = call.portal.tables[kind]
    page = list_page(call, table, call.params, classic(table))
    project = projector(table, get(call.params, "select"))
    return Reply({"items": [project(r) for r in page.rows]}, page.total, page.next)
