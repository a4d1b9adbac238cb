"""Users, structure, the caller's profile, app and server info."""

from __future__ import annotations

from dataclasses import dataclass

from rop.emulator.data import Record
from rop.emulator.filters import compile_filter
from rop.emulator.listing import parse_start, run_list
from rop.emulator.params import as_dict, get
from rop.emulator.registry import Call, Reply, classic, lenient, method

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
    compiled = compile_filter(spec, lenient, call.portal.clock.zone)
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
    if user.get("ACTIVE") in (False, "N"):
        return Reply({})  # profile.md: an empty object for inactive users
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
    # department-get.md: filter fields are top-level keys, SORT among them, and
    # the sort field is the "sort" parameter ({"sort": "NAME", "PARENT": 1}):
    # only an upper-case SORT filters.
    spec = {
        k: v
        for k, v in call.params.items()
        if str(k).upper() in ("ID", "NAME", "PARENT", "UF_HEAD") or str(k) == "SORT"
    }
    spec.update(as_dict(get(call.params, "filter"), "filter"))
    compiled = compile_filter(spec, classic(table), call.portal.clock.zone)
    sort = next(
        (v for k, v in call.params.items() if str(k).lower() == "sort" and k != "SORT"), None
    )
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
    code, version, installed = "local.emulator", 1, True
    app = call.host.app if call.host is not None else None
    # With an app's token: that app (app-info.md); a webhook keeps the old answer.
    if call.via_app and app is not None and app.settings is not None:
        code, version, installed = app.settings.client_id, app.version, app.installed
    return Reply(
        {
            "ID": 1,
            "CODE": code,
            "VERSION": version,
            "STATUS": "L",
            "INSTALLED": installed,
            "PAYMENT_EXPIRED": "N",
            "DAYS": None,
            "LANGUAGE_ID": "ru",
            "LICENSE": f"ru_{family}",
            "LICENSE_TYPE": family,
            "LICENSE_FAMILY": family,
        }
    )


@method("server.time")
def server_time(call: Call) -> Reply:
    return Reply(call.portal.clock.iso())
