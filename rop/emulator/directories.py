"""Directories (pipelines, statuses, currencies) and telephony statistics."""

from __future__ import annotations

from typing import Any

from rop.emulator.data import Record
from rop.emulator.errors import ApiError, invalid_arg
from rop.emulator.filters import Group, compile_group
from rop.emulator.listing import parse_order, sort_key
from rop.emulator.params import Params, as_dict, as_int, get
from rop.emulator.registry import Call, Reply, classic, lenient, list_page, method

# -- directories -----------------------------------------------------------------


# Types with funnels on every portal: deals, contacts, companies, quotes, invoices.
_FUNNEL_TYPES = frozenset({2, 3, 4, 7, 31})


@method("crm.category.list")
def category_list(call: Call) -> Reply:
    type_id = as_int(get(call.params, "entityTypeId"), "entityTypeId", default=0)
    rows = [c for c in call.portal.categories if int(c.get("entityTypeId", 2) or 2) == type_id]
    # crm-category-list.md: a type without funnels is ENTITY_TYPE_NOT_SUPPORTED,
    # an unknown one NOT_FOUND "Smart process not found".
    if type_id == 1:
        raise ApiError("ENTITY_TYPE_NOT_SUPPORTED", "Entity type LEAD is not supported", 400)
    if not rows and type_id not in _FUNNEL_TYPES:
        raise ApiError("NOT_FOUND", "Smart process not found", 400)
    rows.sort(key=lambda c: (sort_key(c.get("sort")), sort_key(c.get("id"))))
    return Reply({"categories": rows}, len(rows))


def _match_all(rows: list[Record], spec: dict[str, Any], zone: Any) -> list[Record]:
    group: Group = compile_group(spec, lenient, zone, frozenset())
    return [r for r in rows if group.matches(r)]


@method("crm.status.list")
def status_list(call: Call) -> Reply:
    spec = as_dict(get(call.params, "filter"), "filter")
    rows = _match_all(call.portal.statuses, spec, call.portal.clock.zone)
    order = parse_order(get(call.params, "order"), lenient) or [("SORT", False)]
    for name, desc in reversed(order):
        rows.sort(key=lambda r, n=name: sort_key(r.get(n)), reverse=desc)  # type: ignore[misc]
    return Reply(rows, len(rows))


@method("crm.status.entity.items")
def status_entity_items(call: Call) -> Reply:
    entity = str(get(call.params, "entityId", "") or "")
    if not entity:
        raise invalid_arg("Parameter 'entityId' is required")
    rows = [r for r in call.portal.statuses if str(r.get("ENTITY_ID")) == entity]
    rows.sort(key=lambda r: sort_key(r.get("SORT")))
    return Reply([{k: r.get(k) for k in ("NAME", "SORT", "STATUS_ID")} for r in rows])


@method("crm.currency.list")
def currency_list(call: Call) -> Reply:
    rows = sorted(call.portal.currencies, key=lambda r: sort_key(r.get("SORT")))
    return Reply(rows, len(rows))


@method("crm.currency.base.get")
def currency_base(call: Call) -> Reply:
    return Reply(call.portal.base_currency)


# -- telephony -------------------------------------------------------------------


@method("voximplant.statistic.get")
def call_statistics(call: Call) -> Reply:
    # voximplant-statistic-get.md: a user without the "Call Statistics - View"
    # permission gets 403 ACCESS_DENIED "Access denied!". portal.json lists such
    # users in "call_statistics_denied" (there are no roles to read it from).
    denied = call.portal.info.get("call_statistics_denied") or []
    if call.user_id in {int(u) for u in denied}:
        raise ApiError("ACCESS_DENIED", "Access denied!", 403)
    table = call.portal.tables["call"]
    params: Params = {
        "filter": get(call.params, "FILTER"),
        "start": get(call.params, "start"),
    }
    sort = get(call.params, "SORT")
    if sort:
        params["order"] = {str(sort): str(get(call.params, "ORDER", "ASC"))}
    page = list_page(call, table, params, classic(table))
    return Reply(list(page.rows), page.total, page.next)
