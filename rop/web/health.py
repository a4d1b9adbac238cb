"""Health (the process answers) and readiness (the store answers) for a load balancer."""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


async def healthz(request: Request) -> Response:
    """Alive: the process serves requests. Touches nothing else, so it stays cheap."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready: the store answers and its schema is the one this code knows."""
    from rop.store.migrations import MIGRATIONS

    def check() -> str | None:
        try:
            store = request.app.state.pool.get()
            done = {r[0] for r in store.query("SELECT version FROM schema_migrations")}
        except Exception as exc:  # any store failure means "not ready", never a 500
            return f"store unavailable: {type(exc).__name__}"
        missing = {m[0] for m in MIGRATIONS} - done
        return f"schema needs migrations {sorted(missing)}" if missing else None

    problem = await anyio.to_thread.run_sync(check)
    if problem:
        return JSONResponse({"status": "unavailable", "problem": problem}, status_code=503)
    return JSONResponse({"status": "ready"})
