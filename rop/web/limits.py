"""Slow and abusive clients: a deadline for sending a request, a cap on bodies.

uvicorn closes a connection that idles *between* requests
(``timeout_keep_alive``), but not one that never finishes a request: a client
that connects and sends nothing, or sends headers a byte at a time, or
announces a body and never sends it, holds a connection (and its memory)
forever. ``deadline_protocol`` is uvicorn's own h11 protocol with one addition:
from the moment a connection opens (or a response ends) the client has
``ROP_REQUEST_TIMEOUT`` seconds to deliver the whole next request, headers and
body; then it gets 408 and the connection is closed. Once a request has fully
arrived the route may take as long as it needs (``rop sync`` waits for a whole
sync).

``BodyLimit`` refuses a body over ``ROP_MAX_BODY_BYTES`` with 413: at once when
Content-Length says so, or as soon as a chunked body grows past it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rop.web.security import refuse, say_limit

CLOSE = [(b"connection", b"close")]


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            # Refused unread; "close" so the server does not read it to skip it.
            await refuse(scope, send, 413, say_limit(scope, self.max_bytes), CLOSE)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await refuse(scope, send, 413, say_limit(scope, self.max_bytes), CLOSE)
        except ClientDisconnect:
            pass  # the client left (or was timed out) while sending: nobody to answer


def deadline_protocol(request_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request takes longer
    than ``request_timeout`` seconds to arrive (headers and body)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    message = f"the request did not arrive within {request_timeout:g} s\n".encode()
    timed_out = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\ncontent-length: " + str(len(message)).encode() + b"\r\n\r\n"
    ) + message

    class DeadlineH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline: asyncio.TimerHandle | None = None
            self._waiting_after: Any = None  # the cycle that was current when armed

        def _arm(self) -> None:
            self._disarm()
            self._waiting_after = self.cycle
            self._deadline = self.loop.call_later(request_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            cycle = self.cycle
            if cycle is not None and cycle is not self._waiting_after and not cycle.more_body:
                self._disarm()  # the whole request is here

        def on_response_complete(self) -> None:
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets the same time
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _too_slow(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            import h11

            cycle = self.cycle
            between = cycle is None or cycle.response_complete
            # Say 408 where an answer fits: no request yet (or the next one
            # half-sent), or one whose answer has not begun; a client still
            # owing the body of a request already answered is just closed.
            if (between and self.conn.their_state is h11.IDLE) or (
                not between and not cycle.response_started
            ):
                self.transport.write(timed_out)
            self.transport.close()

    return DeadlineH11Protocol
