"""The method registry: a :class:`Call` in, a :class:`Reply` out.

Method names are registered lower-case; the engine lower-cases what clients
send (Bitrix24 matches names case-insensitively). The modules ``crm``,
``directories`` and ``people`` register the methods; ``methods`` imports them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rop.emulator.data import Portal, Table
from rop.emulator.filters import Resolver, compile_filter
from rop.emulator.listing import Cost, Page, parse_order, parse_start, run_list
from rop.emulator.params import Params, as_dict, get
from rop.emulator.visibility import Scope


@dataclass
class Call:
    portal: Portal
    user_id: int
    scope: Scope
    params: Params
    cost: Cost = field(default_factory=Cost)
    license_family: str = "project"
    # The app host (apphost.AppHost) and whether the caller came with an app's
    # OAuth token (Bitrix24's "application context") rather than a webhook.
    host: Any = None
    via_app: bool = False


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


def classic(table: Table) -> Resolver:
    def resolve(name: str) -> str | None:
        upper = name.upper()
        return upper if upper in table.fields else None

    return resolve


def lenient(name: str) -> str | None:
    return name.upper()


def list_page(
    call: Call,
    table: Table,
    params: Params,
    resolve: Resolver,
    *,
    strict: bool = True,
    default_order: list[tuple[str, bool]] | None = None,
    **kw: Any,
) -> Page:
    spec = as_dict(get(params, "filter"), "filter")
    compiled = compile_filter(spec, resolve, call.portal.clock.zone, strict=strict, **kw)
    order = parse_order(get(params, "order"), resolve, strict) or list(default_order or [])
    return run_list(
        call.portal,
        table,
        compiled,
        order,
        parse_start(get(params, "start")),
        call.scope,
        call.cost,
    )
