"""Bitrix24 as an application platform: who is calling, and what the app binds.

- ``app_info``: ``app.info`` on the **authorization server** (never on the
  portal, which could be a self-hosted one that lies: settings/oauth/simple-way.md).
  Its ``install`` block names the portal (``member_id``, ``domain``) the
  token was issued for, ``client_id`` the app, ``user_id`` the user.
- ``profile``: the viewer behind a frame token (``ID``, ``ADMIN``).
- ``bind_app``: placements and event handlers, bound again on every install
  and update (Bitrix24 removes them on update: event-bind.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from rop.bitrix.client import BitrixClient
from rop.bitrix.errors import BitrixError

# REST_APP_URI: a digest's link /marketplace/view/<code>/?params[...] opens the
# app at /app with the params as PLACEMENT_OPTIONS (widgets/universal/app-url.md).
PLACEMENTS = ("LEFT_MENU", "CRM_ANALYTICS_MENU", "REST_APP_URI")
# What changes the report (issue 10 item 4), plus the app's own life cycle.
EVENTS = (
    "ONAPPUPDATE",
    "ONAPPUNINSTALL",
    *(
        f"ONCRM{entity}{action}"
        for entity in ("DEAL", "LEAD", "COMPANY", "CONTACT")
        for action in ("ADD", "UPDATE", "DELETE")
    ),
    "ONCRMDEALMOVETOCATEGORY",
    "ONVOXIMPLANTCALLEND",
)
TITLE = {"ru": "Отчёт РОПа", "en": "Sales head report"}


@dataclass(frozen=True)
class AppInfo:
    client_id: str
    user_id: int | None
    member_id: str
    domain: str
    installed: bool
    client_endpoint: str


def auth_host(server_endpoint: str) -> str:
    return urlsplit(server_endpoint).netloc.lower()


async def app_info(
    server_endpoint: str, auth: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> AppInfo:
    """Ask the auth server whose token ``auth`` is. Raises BitrixError when it refuses."""
    url = server_endpoint if server_endpoint.endswith("/") else server_endpoint + "/"
    url += "app.info"
    async with httpx.AsyncClient(transport=transport, timeout=20.0, follow_redirects=False) as http:
        try:
            # In a form body, not the query: httpx logs request URLs at INFO,
            # and a token must never reach a log.
            reply = await http.post(url, data={"auth": auth})
        except httpx.HTTPError as exc:
            raise BitrixError("app.info", "CONNECT", f"auth server unreachable: {exc}") from None
    try:
        data: Any = reply.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BitrixError("app.info", "", "the auth server's answer is not JSON", reply.status_code)
    if data.get("error"):
        raise BitrixError(
            "app.info",
            str(data["error"]),
            str(data.get("error_description") or ""),
            reply.status_code,
        )
    result = data.get("result")
    install = result.get("install") if isinstance(result, dict) else None
    if not isinstance(result, dict) or not isinstance(install, dict):
        raise BitrixError("app.info", "", "the answer has no install block", reply.status_code)
    user = result.get("user_id")
    return AppInfo(
        client_id=str(result.get("client_id") or ""),
        user_id=int(str(user)) if str(user or "").isdigit() else None,
        member_id=str(install.get("member_id") or ""),
        domain=str(install.get("domain") or ""),
        installed=install.get("installed") in (True, "Y", 1, "1", "true"),
        client_endpoint=str(install.get("client_endpoint") or ""),
    )


@dataclass(frozen=True)
class Viewer:
    user_id: int
    admin: bool
    name: str


async def profile(client: BitrixClient) -> Viewer:
    """The user behind the client's token (``profile``: scope basic)."""
    reply = await client.call("profile")
    result = reply.result if isinstance(reply.result, dict) else {}
    raw = str(result.get("ID") or "")
    if not raw.isdigit():
        # An inactive user gets an empty object (profile.md).
        raise BitrixError("profile", "NO_USER", "the token belongs to no active user", 403)
    name = " ".join(str(result.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()
    return Viewer(int(raw), result.get("ADMIN") in (True, "Y", 1, "1", "true"), name)


def _already(error: BitrixError) -> bool:
    # Binding twice is not a failure: the handler is there (placement-bind.md,
    # event-bind.md answer "Handler already binded").
    text = f"{error.code} {error.description}".lower()
    return "already" in text or "max_count" in text


# The app's own life cycle is always bound online: it has no offline form worth
# polling (an uninstalled app cannot call event.offline.get anyway).
LIFECYCLE = ("ONAPPUPDATE", "ONAPPUNINSTALL")


async def bind_app(
    client: BitrixClient, app_url: str, events_url: str, lang: str = "ru", *, offline: bool = False
) -> dict[str, list[str]]:
    """Bind the placements and the event handlers; returns what was bound.

    ``offline``: the CRM events go to the portal's offline queue
    (``event_type=offline``, no handler: offline-events.md), which the server
    polls, for a server Bitrix24 cannot reach."""
    done: dict[str, list[str]] = {"placements": [], "events": []}
    titles = {code: {"TITLE": title} for code, title in TITLE.items()}
    for placement in PLACEMENTS:
        try:
            await client.call(
                "placement.bind",
                {
                    "PLACEMENT": placement,
                    "HANDLER": app_url,
                    "TITLE": TITLE.get(lang, TITLE["ru"]),
                    "LANG_ALL": titles,
                },
            )
        except BitrixError as error:
            if not _already(error):
                raise
        done["placements"].append(placement)
    for event in EVENTS:
        params = (
            {"event": event, "event_type": "offline"}
            if offline and event not in LIFECYCLE
            else {"event": event, "handler": events_url}
        )
        try:
            await client.call("event.bind", params)
        except BitrixError as error:
            if not _already(error):
                raise
        done["events"].append(event)
    return done
