"""Server mode's web processes sync nothing on a timer: the workers' re-scan does.

Behind a reverse proxy several `rop serve` processes share one PostgreSQL
store; each running ROP_SYNC_INTERVAL_MINUTES' timer would sync the same
portal once per process. On a DuckDB file the one server keeps its timer.
"""

from __future__ import annotations

import pytest

from rop.config import Settings
from rop.web import create_app
from tests.conftest import ENGINES, store_target
from tests.web_client import page_client


@pytest.mark.parametrize("engine", ENGINES)
def test_only_the_file_store_server_syncs_on_a_timer(engine, tmp_path, request):
    settings = Settings(
        db=store_target(engine, tmp_path, request),
        webhook="https://a.example/rest/1/tok/",
        sync_interval_minutes=60,
    )
    app = create_app(settings, cache_size=0)
    with page_client(app):  # the lifespan runs: timers start here
        timer = app.state.scheduler._thread
        assert (timer is not None and timer.is_alive()) == (engine == "duckdb")
