"""The web report for a process manager: gunicorn with uvicorn workers (server mode).

    ROP_DB=postgresql://rop_app@db/rop ROP_PORTAL=a.bitrix24.ru \\
        gunicorn -w 2 -k uvicorn_worker.UvicornWorker 'rop.web.asgi:from_env()'

Each worker process builds its own app from the ROP_ settings when gunicorn
calls :func:`from_env` (nothing happens at import). Every piece of state the
report needs is in the store, so any number of processes can serve behind a
reverse proxy; this needs a PostgreSQL store (a DuckDB file admits one
writing process: use `rop serve` for it). Keep ``ROP_SYNC_INTERVAL_MINUTES``
at 0 here: each process would otherwise schedule its own syncs.
"""

from __future__ import annotations

from starlette.applications import Starlette


def from_env() -> Starlette:
    from rop.config import load_settings
    from rop.logs import configure
    from rop.web.app import create_app

    settings = load_settings()
    configure(settings.log_format, settings.rest_log, settings.rest_log_days)
    return create_app(settings)
