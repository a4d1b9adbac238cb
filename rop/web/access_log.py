"""One structured log line per request (logger ``rop.access``), with the portal served."""

from __future__ import annotations

import logging
import time
from typing import Any

ACCESS_LOG = logging.getLogger("rop.access")


class AccessLog:
    """ASGI middleware: method, path, status, duration and the portal of each request.

    The query string is left out (filters may carry names); the portal is the
    app's pinned one (ROP_PORTAL), else the one the store handle last served.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = {"code": 500}

        async def note(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, note)
        finally:
            app = scope.get("app")
            state = getattr(app, "state", None)
            settings = getattr(state, "settings", None)
            ACCESS_LOG.info(
                "%s %s %s",
                scope.get("method"),
                scope.get("path"),
                status["code"],
                extra={
                    "event": "request",
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status["code"],
                    "ms": round((time.monotonic() - started) * 1000, 1),
                    "portal": getattr(settings, "portal", None),
                },
            )
