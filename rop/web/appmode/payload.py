"""Bitrix24's requests to the app, read: the frame's fields and event bodies.

A frame (app page, placement, install page) is POSTed with ``DOMAIN``,
``PROTOCOL``, ``LANG``, ``APP_SID`` in the query string and ``AUTH_ID``,
``REFRESH_ID``, ``AUTH_EXPIRES``, ``SERVER_ENDPOINT``, ``APPLICATION_TOKEN``,
``member_id``, ``PLACEMENT``, ``PLACEMENT_OPTIONS`` in the form body
(widgets/_includes/widget_data.md). Events come as a form with PHP-style
nested keys: ``auth[member_id]``, ``data[FIELDS][ID]`` (events/index.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

_KEY = re.compile(r"[^\[\]]+|\[\]")


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``[("data[FIELDS][ID]", "5")]`` -> ``{"data": {"FIELDS": {"ID": "5"}}}``."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = [p.strip("[]") if p != "[]" else "" for p in _KEY.findall(key)] or [key]
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            part = part or str(len(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return out


async def fields(request: Request) -> dict[str, str]:
    """Query and form fields together (Bitrix24 splits them; a GET has only the query)."""
    merged = {k: v for k, v in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        merged.update({k: str(v) for k, v in form.multi_items() if isinstance(v, str)})
    return merged


@dataclass(frozen=True)
class Frame:
    domain: str
    member_id: str
    auth_id: str
    refresh_id: str
    auth_expires: int
    server_endpoint: str
    application_token: str
    placement: str
    lang: str
    placement_options: str = ""  # a JSON string (widget_data.md): a link's params[...]

    @classmethod
    def read(cls, got: dict[str, str]) -> Frame | None:
        """The frame's fields; None when the request is not a frame from Bitrix24 at all."""
        domain = got.get("DOMAIN", "").strip()
        member = got.get("member_id", "").strip()
        auth = got.get("AUTH_ID", "").strip()
        server = got.get("SERVER_ENDPOINT", "").strip()
        if not (domain and member and auth and server):
            return None
        expires = got.get("AUTH_EXPIRES", "")
        return cls(
            domain=domain,
            member_id=member,
            auth_id=auth,
            refresh_id=got.get("REFRESH_ID", "").strip(),
            auth_expires=int(expires) if expires.isdigit() else 3600,
            server_endpoint=server,
            application_token=got.get("APPLICATION_TOKEN", "").strip(),
            placement=got.get("PLACEMENT", "DEFAULT") or "DEFAULT",
            lang="en" if got.get("LANG", "ru") == "en" else "ru",
            placement_options=got.get("PLACEMENT_OPTIONS", ""),
        )
