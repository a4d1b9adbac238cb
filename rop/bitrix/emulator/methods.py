"""The REST methods: each takes a :class:`Call` and returns a :class:`Reply`.

Method names are registered lower-case; the app lower-cases what clients
send (Bitrix24 matches names case-insensitively).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rop.bitrix.emulator.data import Portal, Record, Table
from rop.bitrix.emulator.errors import ApiError, access_denied, invalid_arg, not_found
from rop.bitrix.emulator.filters import Group, Resolver, compile_filter, compile_group
from rop.bitrix.emulator.items import ENTITY_KINDS, ItemNames, to_item
from rop.bitrix.emulator.listing import (
    Cost,
    Page,
    parse_order,
    parse_start,
    projector,
    run_list,
    sort_key,
)
from rop.bitrix.emulator.params import Params, as_dict, as_int, as_list, get
from rop.bitrix.emulator.visibility import Scope, visible


@dataclass
class Call:
    portal: Portal
    user_id: int
    scope: Scope
    params: Params
    cost: Cost = field(default_factory=Cost)
    license_family: str = "project"


@dataclass
class Reply:
    result: Any
    total: int | None = None
    next: int | None = None


Handler = Callable[[Call], Reply]
METHODS: dict[str, Handler] = {}


def method(*names: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        for name in names:
            METHODS[name.lower()] = func
        return func

    return register


def _classic(table: Table) -> Resolver:
    def resolve(name: str) -> str | None:
        upper = name.upper()
        return upper if upper in table.fields else None

    return resolve


def _lenient(name: str) -> str | None:
    return name.upper()


def _list_page(call: Call, table: Table, params: Params, resolve: Resolver, **kw: Any) -> Page:
    spec = as_dict(get(params, "filter"), "filter")
    compiled = compile_filter(spec, resolve, call.portal.clock.zone, **kw)
    order = parse_order(get(params, "order"), resolve)
    return run_list(
        call.portal,
        table,
        compiled,
        order,
        parse_start(get(params, "start")),
        call.scope,
        call.cost,
    )


# -- classic CRM lists and gets ------------------------------------------------


def _crm_list(kind: str) -> Handler:
    def handler(call: Call) -> Reply:
        table = call.portal.tables[kind]
        params = dict(call.params)
        spec = as_dict(get(params, "filter"), "filter")
        if kind == "activity":
            spec = _bindings(spec)
        params["filter"] = spec
        page = _list_page(call, table, params, _classic(table))
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


for _kind in ("deal", "lead", "company", "contact", "activity"):
    METHODS[f"crm.{_kind}.list"] = _crm_list(_kind)
    METHODS[f"crm.{_kind}.get"] = _crm_get(_kind)


# -- crm.item.* (universal, camelCase, typed) ----------------------------------


def _item_kind(params: Params) -> str:
    type_id = as_int(get(params, "entityTypeId"), "entityTypeId", default=0)
    kind = ENTITY_KINDS.get(type_id)
    if kind is None:
        raise invalid_arg(f"Smart process or entity type {type_id} is not supported")
    return kind


@method("crm.item.list")
def item_list(call: Call) -> Reply:
    kind = _item_kind(call.params)
    table = call.portal.tables[kind]
    names = ItemNames(table)
    page = _list_page(call, table, call.params, names.resolve)
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
    reply = _crm_get(kind)(call)
    return Reply({"item": to_item(reply.result, kind, False)})


# -- stage history ---------------------------------------------------------------

_HISTORY_KINDS = {1: "lead_history", 2: "deal_history"}


@method("crm.stagehistory.list")
def stagehistory_list(call: Call) -> Reply:
    type_id = as_int(get(call.params, "entityTypeId"), "entityTypeId", default=0)
    kind = _HISTORY_KINDS.get(type_id)
    if kind is None:
        raise ApiError("ENTITY_TYPE_NOT_SUPPORTED", f"Entity type {type_id} is not supported", 400)
    table = call.portal.tables[kind]
    page = _list_page(call, table, call.params, _classic(table))
    project = projector(table, get(call.params, "select"))
    return Reply({"items": [project(r) for r in page.rows]}, page.total, page.next)


# -- directories -----------------------------------------------------------------


@method("crm.category.list")
def category_list(call: Call) -> Reply:
    type_id = as_int(get(call.params, "entityTypeId"), "entityTypeId", default=0)
    rows = [c for c in call.portal.categories if int(c.get("entityTypeId", 2) or 2) == type_id]
    rows.sort(key=lambda c: (sort_key(c.get("sort")), sort_key(c.get("id"))))
    return Reply({"categories": rows}, len(rows))


def _match_all(rows: list[Record], spec: dict[str, Any], zone: Any) -> list[Record]:
    group: Group = compile_group(spec, _lenient, zone, frozenset())
    return [r for r in rows if group.matches(r)]


@method("crm.status.list")
def status_list(call: Call) -> Reply:
    spec = as_dict(get(call.params, "filter"), "filter")
    rows = _match_all(call.portal.statuses, spec, call.portal.clock.zone)
    order = parse_order(get(call.params, "order"), _lenient) or [("SORT", False)]
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
    table = call.portal.tables["call"]
    params: Params = {
        "filter": get(call.params, "FILTER"),
        "start": get(call.params, "start"),
    }
    sort = get(call.params, "SORT")
    if sort:
        params["order"] = {str(sort): str(get(call.params, "ORDER", "ASC"))}
    page = _list_page(call, table, params, _classic(table))
    return Reply(list(page.rows), page.total, page.next)


# -- users and structure -----------------------------------------------------------

_USER_PARAMS = frozenset(
    {"SORT", "ORDER", "START", "SELECT", "ADMIN_MODE", "IMAGE_RESIZE", "FILTER"}
)


@method("user.get")
def user_get(call: Call) -> Reply:
    table = call.portal.tables["user"]
    spec = dict(as_dict(get(call.params, "FILTER"), "FILTER"))
    for key, value in call.params.items():
        if str(key).upper() not in _USER_PARAMS and str(key).upper() != "AUTH":
            spec[key] = value
    name_search = next((spec.pop(k) for k in list(spec) if str(k).upper() == "NAME_SEARCH"), None)
    compiled = compile_filter(spec, _lenient, call.portal.clock.zone)
    if name_search:
        needle = str(name_search).lower()
        compiled.rest.items.append(_NameSearch(needle))  # type: ignore[arg-type]
    sort = get(call.params, "sort")
    order = (
        [(str(sort).upper(), str(get(call.params, "order", "ASC")).upper() == "DESC")]
        if sort
        else []
    )
    page = run_list(
        call.portal, table, compiled, order, parse_start(get(call.params, "start")), None, call.cost
    )
    return Reply(list(page.rows), page.total, page.next)


@dataclass
class _NameSearch:
    needle: str

    def matches(self, record: Record) -> bool:
        names = " ".join(str(record.get(k) or "") for k in ("NAME", "LAST_NAME", "SECOND_NAME"))
        return self.needle in names.lower()


def _user(call: Call) -> Record:
    user = call.portal.tables["user"].rows.get(call.user_id)
    return dict(user) if user else {"ID": str(call.user_id)}


@method("user.current")
def user_current(call: Call) -> Reply:
    return Reply(_user(call))


@method("user.admin")
def user_admin(call: Call) -> Reply:
    return Reply(call.user_id in call.portal.admins)


@method("profile")
def profile(call: Call) -> Reply:
    user = _user(call)
    return Reply(
        {
            "ID": str(call.user_id),
            "ADMIN": call.user_id in call.portal.admins,
            "NAME": user.get("NAME"),
            "LAST_NAME": user.get("LAST_NAME"),
            "PERSONAL_GENDER": user.get("PERSONAL_GENDER", ""),
            "PERSONAL_PHOTO": user.get("PERSONAL_PHOTO"),
            "TIME_ZONE": user.get("TIME_ZONE", ""),
            "TIME_ZONE_OFFSET": 0,
        }
    )


@method("department.get")
def department_get(call: Call) -> Reply:
    table = call.portal.tables["department"]
    spec = {
        k: v
        for k, v in call.params.items()
        if str(k).upper() in ("ID", "NAME", "SORT", "PARENT", "UF_HEAD")
    }
    spec.update(as_dict(get(call.params, "filter"), "filter"))
    compiled = compile_filter(spec, _classic(table), call.portal.clock.zone)
    sort = get(call.params, "sort")
    order = (
        [(str(sort).upper(), str(get(call.params, "order", "ASC")).upper() == "DESC")]
        if sort
        else []
    )
    page = run_list(
        call.portal, table, compiled, order, parse_start(get(call.params, "START")), None, call.cost
    )
    return Reply(list(page.rows), page.total, page.next)


# -- misc ---------------------------------------------------------------------------


@method("app.info")
def app_info(call: Call) -> Reply:
    family = str(call.portal.info.get("license_family") or call.license_family)
    return Reply(
        {
            "ID": 1,
            "CODE": "local.emulator",
            "VERSION": 1,
            "STATUS": "L",
            "INSTALLED": True,
            "PAYMENT_EXPIRED": "N",
            "DAYS": None,
            "LICENSE": f"ru_{family}",
            "LICENSE_TYPE": family,
            "LICENSE_FAMILY": family,
        }
    )


@method("server.time")
def server_time(call: Call) -> Reply:
    return Reply(call.portal.clock.iso())
