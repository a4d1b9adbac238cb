"""Run the app with uvicorn in a background thread (tests, demo, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

# How long to wait for the server to bind before giving up.
START_TIMEOUT_SECONDS = 20.0


@contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` on host:port (0 = a free port); yields ``http://host:port``."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bitrix24-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"emulator did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen first, so the real port is known before serving.

    Listening before the URL is announced means a client that reads it and
    connects at once is queued instead of refused while uvicorn starts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_forever(app: ASGIApp, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve on an already bound socket until interrupted (the CLI)."""
    config = uvicorn.Config(app, log_level=log_level, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
