"""The JSON object a settings page POSTs (plans, digests, the app's access page).

One reading for every such route, so each gets the same clear 400 for a body
that is too big, not JSON, or not an object; the size cap is the route's own
(an imported plan file is megabytes, an access change a few bytes).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from rop.web.errors import BadInput


async def json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request's body as a JSON object, at most ``max_bytes`` long."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise BadInput("the body is too large")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise BadInput("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadInput("the body is not a JSON object")
    return data
